import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import type { FleetFlags } from '../fleet/session.js';
import type { App } from '../compose/model.js';
import type { CliContext } from './context.js';
import { openServiceClient, type ServerFlags } from './fleet-client.js';
import { printJson } from './format.js';

/**
 * The dashboard's files in the package: dist/web/, built by `npm run build` (scripts/bundle-web.mjs from
 * src/fleet/service/web/), served at / unless --web says otherwise. This module runs from dist/bundle/
 * (or dist/cli/ unbundled): either way dist/web/ is one level up.
 */
const PACKAGE_WEB_DIR = fileURLToPath(new URL('../web/', import.meta.url));
/** The MQTT 5 share group of every service instance: together they receive each live message once. */
const SHARE_GROUP = 'berth-fleet-service';

interface ServeFlags extends FleetFlags {
  listen: string;
  data: string;
  db?: string;
  tlsCert?: string;
  tlsKey?: string;
  web?: string;
  telemetryRaw: string;
  telemetryMinute: string;
  telemetryBudget: string;
  tlsVerify: string;
}

/**
 * `berth fleet deploy --server URL FILE`: the app as this command read it (its .env, configs and
 * relative paths settled here) and the rollout flags, sent to the service, which creates and runs the
 * rollout. Prints the rollout's id (or its record with --json).
 */
export async function deployViaServer(ctx: CliContext, opts: ServerFlags & { device?: string[]; group?: string; all?: boolean; rate?: string; abortAfter?: string; minDevices: string; timeout: string; json?: boolean; dryRun?: boolean }, app: App): Promise<void> {
  if (opts.dryRun) throw new BerthError('usage', '--dry-run does not go with --server: the service plans the rollout when it creates it');
  const client = await openServiceClient(ctx, opts, 'deploy');
  const { submitRollout, withAllDevices } = await import('../fleet/service/client.js');
  const { revision: _revision, ...desired } = app.source;
  const abortAfterPct = opts.abortAfter !== undefined ? Number(opts.abortAfter.replace(/%$/, '')) : undefined;
  const rollout = await submitRollout(client, {
    app: desired,
    ...(opts.device && { devices: opts.device }), ...(opts.group !== undefined && { group: opts.group }), ...(opts.all === true && { all: true }),
    ...(opts.rate !== undefined && { rate: opts.rate }), ...(abortAfterPct !== undefined && { abortAfterPct }),
    minDevices: Number(opts.minDevices), timeout: opts.timeout,
  });
  // The answer carries one page of devices; --json prints them all, as before the service paged it.
  if (opts.json) printJson(ctx.out, await withAllDevices(client, rollout));
  else ctx.out.write(`${rollout.id}: ${rollout.counts?.total ?? 0} devices, ${Object.entries(rollout.images ?? {}).map(([s, i]) => `${s}=${String(i)}`).join(' ')}\n`);
}

/**
 * `berth fleet serve`: flags to options, nothing more (tokens: fleet-token.ts); the service
 * lives in src/fleet/service/ (serve.ts wires it).
 */
export function registerFleetServe(fleet: Command, context: () => CliContext, connectionOptions: (cmd: Command) => Command): void {
  connectionOptions(fleet.command('serve'))
    .description('run the fleet service: rollouts as records that survive restarts, device state and telemetry history in a database, an HTTP API (docs/fleet-api.yaml), /metrics and the dashboard')
    .requiredOption('--listen <host:port>', 'address of the HTTP(S) API and dashboard, e.g. 127.0.0.1:8080')
    .requiredOption('--data <dir>', 'the service\'s data directory (the SQLite database fleet.db without --db)')
    .option('--db <url>', 'postgres://USER:PASSWORD@HOST:PORT/DB: a PostgreSQL database, which several instances can share')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'the certificate\'s private key (PEM)')
    .option('--web <dir>', 'serve the dashboard from this directory instead of the package\'s dist/web/')
    .option('--telemetry-raw <duration>', 'keep raw telemetry samples this long', '24h')
    .option('--telemetry-minute <duration>', 'keep per-minute telemetry averages this long', '720h')
    .option('--telemetry-budget <bytes>', 'telemetry may take at most about this much room (k, m, g suffixes); the oldest goes first', '1g')
    .option('--tls-verify <bool>', 'verify registries\' TLS certificates when resolving image tags', 'true')
    .action(async (opts: ServeFlags) => {
      const ctx = context();
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new BerthError('usage', '--tls-cert and --tls-key go together');
      const [{ brokerOptions, loadFleetFile, loadSigningKey }, { startFleetService }, { parseBytes }] = await Promise.all([
        import('../fleet/session.js'), import('../fleet/service/serve.js'), import('../runtime/options-parse.js'),
      ]);
      const fleetFile = await loadFleetFile(opts, ctx.env);
      const service = await startFleetService({
        listen: opts.listen,
        dataDir: opts.data,
        ...(opts.db !== undefined && { dbUrl: opts.db }),
        broker: brokerOptions({ ...opts, share: SHARE_GROUP }, ctx.env, fleetFile),
        signer: await loadSigningKey(opts, ctx.env),
        fleetFile,
        ...(opts.tlsCert !== undefined && { tls: { cert: readNamedFile(opts.tlsCert, '--tls-cert'), key: readNamedFile(opts.tlsKey!, '--tls-key') } }),
        webDir: opts.web ?? PACKAGE_WEB_DIR,
        registry: { root: ctx.root, env: ctx.env },
        tlsVerify: opts.tlsVerify !== 'false',
        retention: {
          rawMs: parseDuration(opts.telemetryRaw, '--telemetry-raw'),
          minuteMs: parseDuration(opts.telemetryMinute, '--telemetry-minute'),
          budgetBytes: parseBytes(opts.telemetryBudget, '--telemetry-budget'),
        },
        log: (line) => process.stderr.write(`berth fleet serve: ${line}\n`),
        ...(ctx.env.BERTH_FLEET_TRACE && { traceFile: ctx.env.BERTH_FLEET_TRACE }),
      });
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await service.close();
    });
}
