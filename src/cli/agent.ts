import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_GOVERNOR } from '../agent/governor/policy.js';
import { DEFAULT_BACKOFF } from '../agent/restart-policy.js';
import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import { packageRoot, packageVersion, type CliContext } from './context.js';
import { withEngine } from './engine.js';


function parsePercent(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0 && n <= 100)) throw new BerthError('usage', `${flag} takes a percentage in (0, 100], not "${text}"`);
  return n;
}

interface AgentFlags {
  broker?: string;
  deviceId?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
  config?: string;
  telemetryInterval?: string;
  insecure?: boolean;
  backoffBase: string;
  backoffMax: string;
  healthyAfter: string;
  governor: boolean;
  pressureHigh: string;
  pressureLow: string;
  escalateAfter: string;
  resumeAfter: string;
}

export function registerAgent(program: Command, context: () => CliContext): void {
  program
    .command('agent')
    .description('run the device agent: deploys from the fleet over MQTT, telemetry, restart policies, the pressure governor (local-only without a broker)')
    .option('--backoff-base <duration>', 'first restart delay, doubling per restart in a row', '10s')
    .option('--backoff-max <duration>', 'longest restart delay', '300s')
    .option('--healthy-after <duration>', 'uptime after which the backoff starts over', '10m')
    .option('--no-governor', 'do not shed best-effort containers under memory pressure')
    .option('--pressure-high <percent>', 'memory stall share (PSI some, over 5 s) at which best-effort containers are frozen, then stopped', String(DEFAULT_GOVERNOR.highPct))
    .option('--pressure-low <percent>', 'stall share below which pressure counts as calm', String(DEFAULT_GOVERNOR.lowPct))
    .option('--escalate-after <duration>', 'a frozen container is stopped when pressure stays high this long', `${DEFAULT_GOVERNOR.escalateAfterMs / 1000}s`)
    .option('--resume-after <duration>', 'calm time before a shed container is brought back, one at a time', `${DEFAULT_GOVERNOR.resumeAfterMs / 1000}s`)
    .option('--broker <url>', 'MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT (env BERTH_BROKER); without one the agent runs local-only')
    .option('--device-id <id>', 'this device\'s id: its topics are berth/v1/<id>/… (env BERTH_DEVICE_ID)')
    .option('--username <name>', 'MQTT user name (default: the device id when a password is given)')
    .option('--password-file <file>', 'file holding the MQTT password (or env BERTH_MQTT_PASSWORD)')
    .option('--ca <file>', 'CA certificate (PEM) the broker\'s certificate is checked against')
    .option('--cert <file>', 'client certificate (PEM) for mutual TLS')
    .option('--key <file>', 'client key (PEM) for mutual TLS')
    .option('--config <file>', 'YAML file with any of: broker, deviceId, username, password, ca, cert, key, telemetryInterval, insecure, fleetKey, allowUnsigned, deployPolicy; flags win (default /etc/berth/agent.yaml when present, or env BERTH_CONFIG)')
    .option('--insecure', 'accept a plain mqtt:// broker on another machine with a password (refused otherwise)')
    .option('--telemetry-interval <duration>', 'how often telemetry is sampled and sent (default: from the board profile\'s storage class)')
    .action(async (opts: AgentFlags) => {
      const ctx = context();
      const backoff = {
        ...DEFAULT_BACKOFF,
        baseMs: parseDuration(opts.backoffBase, '--backoff-base'),
        maxMs: parseDuration(opts.backoffMax, '--backoff-max'),
        healthyAfterMs: parseDuration(opts.healthyAfter, '--healthy-after'),
      };
      const governorConfig = {
        highPct: parsePercent(opts.pressureHigh, '--pressure-high'),
        lowPct: parsePercent(opts.pressureLow, '--pressure-low'),
        escalateAfterMs: parseDuration(opts.escalateAfter, '--escalate-after'),
        resumeAfterMs: parseDuration(opts.resumeAfter, '--resume-after'),
      };
      if (governorConfig.lowPct >= governorConfig.highPct) throw new BerthError('usage', '--pressure-low must be below --pressure-high');
      // Imported here, not at the top: agent/config.js reaches the desired-state validator (~550 KiB of
      // generated code), which no other verb needs, and every verb loads this file (scripts/bundle.mjs).
      const { resolveAgentConfig } = await import('../agent/config.js');
      const conn = await resolveAgentConfig(opts, ctx.env);
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // One JSON object per line: journald keeps them, and each names the numbers behind the decision.
      const log = (event: string, detail: Record<string, unknown>, container?: string): void => {
        ctx.out.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...(container !== undefined && { container }), ...detail })}\n`);
      };
      const [{ runAgent }, { upgradeContextFromEnv, Trial }, { childPull }] = await Promise.all([import('../agent/run.js'), import('../agent/upgrade/trial.js'), import('../agent/pull-child/parent.js')]);
      // Started by the launcher (docs/upgrade.md): maybe on trial after an upgrade.
      const upgrade = upgradeContextFromEnv(ctx.env);
      // A card flashed before the launcher: converted to its layout on the first upgrade (src/agent/upgrade/migrate.ts).
      const flat = upgrade ? undefined : (await import('../agent/upgrade/migrate.js')).flatUpgradeFromEnv(ctx.env, packageRoot(), packageVersion(), log);
      const install = upgrade ?? flat?.context;
      const trialLauncher = upgrade?.trialLauncher;
      const trial = upgrade && trialLauncher !== undefined ? new Trial({ ...upgrade, trialLauncher }, conn.broker !== undefined, (pid, sig) => process.kill(pid, sig), log) : undefined;
      await withEngine(ctx, async ({ root, engine, images, board }) => {
        const telemetryIntervalMs = conn.telemetryInterval !== undefined ? parseDuration(conn.telemetryInterval, '--telemetry-interval') : board.storage.class === 'sd' ? 60_000 : 30_000;
        log('agent-started', {
          pid: process.pid, root: ctx.root, profile: board.profile, runtime: engine.runtime.name, limits: engine.runtime.limitsNote,
          mode: conn.broker ? 'mqtt' : 'local-only', ...(upgrade?.running !== undefined && { installed: upgrade.running, onTrial: trial !== undefined }), ...(conn.broker && { broker: conn.broker.url, deviceId: conn.broker.deviceId }), backoff, telemetryIntervalMs,
        });
        // Installed with the launcher: a desired state's agent bundle can replace this version (docs/upgrade.md).
        const upgrader = install && await makeUpgrader(install.layout, ctx, board.platforms, conn.trialWindowS, flat?.prepare, () => {
          // systemd (Restart=always) starts the launcher again; 75 (EX_TEMPFAIL) says why in the journal.
          process.exitCode = 75;
          abort.abort();
        }, log);
        // Pulls run in a child process with full JIT: this one runs in V8's lite mode (bin/berth).
        const pull = childPull({ launcher: path.join(packageRoot(), 'bin', 'berth'), root: ctx.root, host: ctx.host, version: packageVersion(), board, snapshotMode: root.options.snapshotMode, env: ctx.env });
        await runAgent({
          engine, images, board, parts: root, host: ctx.host, pull, stateRoot: ctx.root, version: packageVersion(), backoff, governor: opts.governor ? governorConfig : false,
          ...(conn.broker && { broker: conn.broker }), ...(conn.security && { security: conn.security }), telemetryIntervalMs, log, allowPower: conn.allowPower === true,
          ...(trial && { trial }), ...(install && { upgrades: { context: install, upgrader } }),
        }, abort.signal);
        log('agent-stopped', { containers: 'left running under their monitors' });
      });
    });
}

/** The upgrader for this board: its platforms, berth's registry credentials and CAs, statfs. */
async function makeUpgrader(
  layout: import('../agent/upgrade/layout.js').InstallLayout, ctx: CliContext, platforms: readonly string[], windowS: number | undefined, prepare: (() => Promise<void>) | undefined, restart: () => void,
  log: (event: string, detail: Record<string, unknown>) => void,
): Promise<import('../agent/upgrade/upgrader.js').Upgrader> {
  const [{ Upgrader }, { statfsFree }, { openRegistryClient }, { parsePlatform }] = await Promise.all([
    import('../agent/upgrade/upgrader.js'), import('../agent/upgrade/fetch.js'), import('../image/registry/open.js'), import('../image/platform.js'),
  ]);
  return new Upgrader({
    layout, platforms: platforms.map(parsePlatform), freeBytes: statfsFree, restart, log, ...(windowS !== undefined && { windowS }), ...(prepare && { prepare }),
    client: (ref) => openRegistryClient({ root: ctx.root, env: ctx.env }, ref, true),
  });
}
