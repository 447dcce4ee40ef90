import type { Command } from 'commander';
import { isValidDeviceId } from '../protocol/topics.js';
import type { CommandAction, CommandRequest } from '../protocol/types.js';
import { parseDuration } from '../duration.js';
import { BerthError, ERROR_CATEGORIES } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import { parseRate } from '../fleet/rollout.js';
import type { FleetFlags } from '../fleet/session.js';
import { composeReadOptions, profileOption } from './compose.js';
import { serverOptions, type ServerFlags } from './fleet-client.js';
import { followDeviceLogs } from './fleet-logs.js';
import { deployViaServer, registerFleetServe } from './fleet-serve.js';
import { registerFleetToken } from './fleet-token.js';
import type { CliContext } from './context.js';
import { printJson, table } from './format.js';

const number = (text: string, flag: string, min: number, max: number): number => {
  const n = Number(text);
  if (!(n >= min && n <= max)) throw new BerthError('usage', `${flag} takes a number in [${min}, ${max}], not "${text}"`);
  return n;
};

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--broker <url>', 'MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT (env BERTH_BROKER)')
    .option('--username <name>', 'MQTT user name (the fleet user needs readwrite on berth/v1/#)')
    .option('--password-file <file>', 'file holding the MQTT password (or env BERTH_MQTT_PASSWORD)')
    .option('--ca <file>', 'CA certificate (PEM) the broker\'s certificate is checked against')
    .option('--cert <file>', 'client certificate (PEM) for mutual TLS')
    .option('--key <file>', 'client key (PEM) for mutual TLS')
    .option('--fleet-file <file>', 'fleet YAML with devices, groups and labels (env BERTH_FLEET_FILE; default ./fleet.yaml when present)')
    .option('--signing-key <file>', 'the fleet\'s private key (berth fleet keygen) that deploys and commands are signed with (env BERTH_SIGNING_KEY, or signingKey in the fleet file)')
    .option('--insecure', 'accept a plain mqtt:// broker on another machine with a password (refused otherwise)');
}

/** The flags of a staged rollout (fleet deploy, fleet upgrade). */
function rolloutOptions(cmd: Command, done: string): Command {
  return cmd
    .option('--device <id...>', 'these devices')
    .option('--group <name>', 'the devices of a group (fleet file groups, or profile:NAME / model:NAME from reports)')
    .option('--all', 'every device in the fleet file or known to the broker')
    .option('--rate <n/min>', 'devices per minute (default: all at once)')
    .option('--abort-after <percent>', 'stop sending when this share of finished devices failed')
    .option('--min-devices <m>', 'apply --abort-after only once this many devices finished', '1')
    .option('--timeout <duration>', `how long to wait for each device after sending until it has ${done}`, '10m')
    .option('--dry-run', 'show the devices and revisions, publish nothing')
    .option('--json', 'print the plan or the summary as JSON');
}

/**
 * Plans, signs and follows one staged rollout (src/fleet/deploy.ts executeDeploy) of `target` to the
 * selected devices, and prints its summary; `appliedLabel` names a device that finished well.
 */
async function runRollout(
  ctx: CliContext, opts: DeployFlags,
  target: (view: import('../fleet/view.js').FleetView, plan: readonly import('../fleet/deploy.js').DeployPlanEntry[], signer: import('../protocol/signing.js').FleetSigningKey) => import('../fleet/deploy.js').RolloutTarget,
  appliedLabel?: string,
): Promise<void> {
  const policy = {
    ...(opts.rate !== undefined && { ratePerMin: parseRate(opts.rate) }),
    ...(opts.abortAfter !== undefined && { abortAfterPct: number(opts.abortAfter.replace(/%$/, ''), '--abort-after', 0.001, 100) }),
    minDevices: number(opts.minDevices, '--min-devices', 1, Number.MAX_SAFE_INTEGER),
    timeoutMs: parseDuration(opts.timeout, '--timeout'),
  };
  const [{ openFleet, loadSigningKey }, { planDeploy, executeDeploy }, render] = await Promise.all([
    import('../fleet/session.js'), import('../fleet/deploy.js'), import('./fleet-render.js'),
  ]);
  const signer = opts.dryRun ? undefined : await loadSigningKey(opts, ctx.env);
  // events: a device that refuses the signed message itself says so only there (desired-rejected).
  const session = await openFleet(opts, ctx.env, ['progress', 'events']);
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  try {
    const plan = planDeploy(session.view, session.inventory.select({ ...(opts.device && { devices: opts.device }), ...(opts.group !== undefined && { group: opts.group }), all: opts.all === true }));
    if (signer === undefined) {
      if (opts.json) printJson(ctx.out, plan);
      else ctx.out.write(render.planTable(plan));
      return;
    }
    const made = target(session.view, plan, signer);
    const progress = await render.DeployProgress.create(process.stderr, plan.length);
    const summary = await executeDeploy(session.link, session.view, made, plan, { ...policy, signer }, progress.handle, abort.signal).finally(() => progress.stop());
    if (opts.json) printJson(ctx.out, summary);
    else ctx.out.write(render.summaryText(summary, appliedLabel));
    process.exitCode = render.deployExitCode(summary);
  } finally {
    process.off('SIGINT', onSignal);
    await session.close();
  }
}

/** `fleet upgrade REF`: the bundle index and its digest (a tag resolved once, so every device gets the same bytes). */
async function resolveBundle(ctx: CliContext, ref: string, tlsVerify: boolean): Promise<import('../protocol/types.js').AgentBundleRef> {
  const { resolveDigest } = await import('../fleet/resolve.js');
  const { name, tag, digest } = await resolveDigest({ root: ctx.root, env: ctx.env }, ref, tlsVerify);
  return { ref: tag !== undefined ? `${name}:${tag}` : name, digest };
}

interface DeployFlags extends FleetFlags {
  device?: string[];
  group?: string;
  all?: boolean;
  rate?: string;
  abortAfter?: string;
  minDevices: string;
  timeout: string;
  dryRun?: boolean;
  json?: boolean;
  profile?: string[];
}

export function registerFleet(program: Command, context: () => CliContext): void {
  const fleet = program.command('fleet').description('deploy to many boards over MQTT with staged rollouts, and show the fleet');
  registerFleetServe(fleet, context, connectionOptions);
  registerFleetToken(fleet, context);

  serverOptions(profileOption(rolloutOptions(connectionOptions(fleet.command('deploy')), 'applied')), 'deploy')
    .description('publish a compose file as each device\'s retained desired state, at a set pace, and follow the devices until they report')
    .argument('<file>', 'compose YAML, as for berth deploy (services: and x-berth: {update})')
    .option('--server <url>', 'create the rollout on a fleet service (berth fleet serve) instead: it runs there, outlives this command, and pins image tags to digests')
    .action(async (file: string, opts: DeployFlags & ServerFlags) => {
      const ctx = context();
      const [{ readComposeFile }, { appTarget }] = await Promise.all([import('../compose/file.js'), import('../fleet/deploy.js')]);
      // Normalized by the code every device runs, so a file they would refuse is refused here, before connecting.
      const app = await readComposeFile(file, composeReadOptions(ctx, opts.profile, 'fleet'));
      if (opts.server !== undefined) return deployViaServer(ctx, opts, app);
      await runRollout(ctx, opts, () => appTarget(app));
    });

  rolloutOptions(connectionOptions(fleet.command('upgrade')), 'upgraded or rolled back')
    .description('update the agent on each device to an agent bundle (scripts/bundle-push.mjs), staged like fleet deploy; a device that cannot confirm the new agent rolls back by itself (docs/upgrade.md)')
    .argument('<ref>', 'the bundle index: REGISTRY/REPOSITORY:TAG, or …@sha256:DIGEST (a tag is resolved to its digest here, once)')
    .option('--tls-verify <bool>', 'verify the registry\'s TLS certificate when resolving a tag', 'true')
    .action(async (ref: string, opts: DeployFlags & { tlsVerify: string }) => {
      const ctx = context();
      const bundle = await resolveBundle(ctx, ref, opts.tlsVerify !== 'false');
      const { currentApps, upgradeTarget } = await import('../fleet/upgrade.js');
      process.stderr.write(`agent bundle ${bundle.ref}@${bundle.digest}\n`);
      await runRollout(ctx, opts, (view, plan, signer) => upgradeTarget(bundle, currentApps(view, plan.map((p) => p.device), signer.publicKey)), 'UPGRADED');
    });

  connectionOptions(fleet.command('status'))
    .description('one row per device: online, revision, status, services up/total, CPU, memory, temperature, last seen')
    .option('--listen <duration>', 'also wait this long for live telemetry (CPU, memory, temperature are not retained)', '0s')
    .option('--group <name>', 'only the devices of this group')
    .option('--json', 'print the rows as JSON')
    .action(async (opts: FleetFlags & { listen: string; group?: string; json?: boolean }) => {
      const ctx = context();
      const listenMs = parseDuration(opts.listen, '--listen');
      const [{ openFleet }, { deviceRows, rowCells }] = await Promise.all([import('../fleet/session.js'), import('../fleet/status.js')]);
      const session = await openFleet(opts, ctx.env, listenMs > 0 ? ['telemetry'] : []);
      try {
        if (listenMs > 0) await new Promise((r) => setTimeout(r, listenMs));
        const rows = deviceRows(session.inventory, session.view, opts.group === undefined ? undefined : session.inventory.select({ group: opts.group }));
        if (opts.json) printJson(ctx.out, rows);
        else ctx.out.write(rows.length === 0 ? 'no devices\n' : table(rowCells(rows, Date.now())));
      } finally {
        await session.close();
      }
    });

  connectionOptions(fleet.command('watch'))
    .description('stream the fleet\'s changes: online/offline, revisions and deploy status, progress, events (Ctrl-C stops)')
    .option('--telemetry', 'also print each telemetry sample')
    .option('--share <group>', 'split live messages with other `berth fleet watch --share GROUP` processes (MQTT 5 shared subscriptions)')
    .option('--json', 'one JSON object per change')
    .action(async (opts: FleetFlags & { telemetry?: boolean; json?: boolean }) => {
      const ctx = context();
      const [{ openFleet }, { describeChange }] = await Promise.all([import('../fleet/session.js'), import('../fleet/watch.js')]);
      const session = await openFleet(opts, ctx.env, ['progress', 'events', 'telemetry'], true);
      const print = (line: string): void => void ctx.out.write(`${new Date().toISOString()} ${line}\n`);
      for (const d of session.view.devices.values()) {
        const snapshot = { device: d.id, online: d.online === true, revision: d.reported?.revision, status: d.reported?.status };
        if (opts.json) ctx.out.write(`${JSON.stringify({ time: new Date().toISOString(), kind: 'snapshot', ...snapshot })}\n`);
        else print(`${d.id}: ${snapshot.online ? 'online' : 'offline'}, revision ${snapshot.revision ?? '-'} ${snapshot.status ?? ''}`.trimEnd());
      }
      // Registered after openFleet's own handler has folded in the snapshot; compares before applying.
      const { FleetView } = await import('../fleet/view.js');
      const previous = new FleetView();
      for (const [id, d] of session.view.devices) Object.assign(previous.device(id), d);
      session.link.onChange((c) => {
        const line = describeChange(c, previous, opts.telemetry === true);
        previous.apply(c, Date.now());
        if (line === undefined) return;
        if (opts.json) ctx.out.write(`${JSON.stringify({ time: new Date().toISOString(), ...c })}\n`);
        else print(line);
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await session.close();
    });

  connectionOptions(fleet.command('cmd'))
    .description('send an agent command to one device and print its result')
    .argument('<device>', 'device id')
    .argument('<action>', 'ping | restart | stop | start | logs | prune | set-telemetry-interval | rotate-key')
    .argument('[service]', 'the service, for restart, stop, start and logs')
    .option('--tail <n>', 'logs: lines from the end')
    .option('-f, --follow', 'logs: then print new lines as they come until Ctrl-C, as berth fleet logs -f')
    .option('--interval <duration>', 'set-telemetry-interval: the new interval')
    .option('--new-key <file>', 'rotate-key: the fleet\'s next key (its .pub or .key file from berth fleet keygen); signed with the current --signing-key')
    .option('--timeout <duration>', 'how long to wait for the answer', '30s')
    .action(async (device: string, action: string, service: string | undefined, opts: FleetFlags & { tail?: string; follow?: boolean; interval?: string; newKey?: string; timeout: string }) => {
      if ((action === 'rotate-key') !== (opts.newKey !== undefined)) throw new BerthError('usage', action === 'rotate-key' ? 'rotate-key needs --new-key FILE' : '--new-key goes with rotate-key only');
      if (opts.follow === true) {
        if (action !== 'logs' || service === undefined) throw new BerthError('usage', '--follow goes with logs SERVICE only');
        return followDeviceLogs(context(), device, service, number(opts.tail ?? '100', '--tail', 1, 10_000), opts);
      }
      const { FleetPublicKey } = await import('../protocol/signing.js');
      const request: CommandRequest = {
        action: action as CommandAction,
        ...(service !== undefined && { service }),
        ...(opts.tail !== undefined && { tail: number(opts.tail, '--tail', 1, 10_000) }),
        ...(opts.interval !== undefined && { interval: opts.interval }),
        ...(opts.newKey !== undefined && { key: FleetPublicKey.fromPem(readNamedFile(opts.newKey, '--new-key'), opts.newKey).base64 }),
      };
      await runCommand(context(), device, request, opts, (result) => printJson(context().out, result));
    });

  fleet.command('keygen')
    .description('make the fleet\'s Ed25519 signing key: NAME.key (private, 0600: keep it off the devices) and NAME.pub (for berth flash and rotate-key)')
    .argument('[name]', 'file name without extension', 'fleet-key')
    .action(async (name: string) => {
      const ctx = context();
      const { writeKeyPair } = await import('../fleet/keygen.js');
      const made = writeKeyPair(name);
      ctx.out.write(`${made.privateFile} (private, 0600)\n${made.publicFile}\nkey id ${made.id}\nfleetKey: ${made.base64}\n`);
    });

  connectionOptions(fleet.command('logs'))
    .description('print the last log lines of a service on a device (the agent\'s logs command); with -f, then its new lines until Ctrl-C')
    .argument('<device>', 'device id')
    .argument('<service>', 'service name')
    .option('--tail <n>', 'lines from the end', '100')
    .option('-f, --follow', 'then print new lines as they come until Ctrl-C (resumed by itself after the agent restarts)')
    .option('--timeout <duration>', 'how long to wait for the answer', '30s')
    .action(async (device: string, service: string, opts: FleetFlags & { tail: string; follow?: boolean; timeout: string }) => {
      const ctx = context();
      const tail = number(opts.tail, '--tail', 1, 10_000);
      if (opts.follow === true) return followDeviceLogs(ctx, device, service, tail, opts);
      await runCommand(ctx, device, { action: 'logs', service, tail }, opts, (result) => {
        const lines = (result.data as { lines?: Array<{ time: string; stream: string; text: string }> } | undefined)?.lines ?? [];
        for (const l of lines) (l.stream === 'stderr' ? process.stderr : ctx.out).write(`${l.text}\n`);
      });
    });
}

async function runCommand(
  ctx: CliContext, device: string, request: CommandRequest, opts: FleetFlags & { timeout: string }, print: (r: import('../protocol/types.js').CommandResult) => void,
): Promise<void> {
  const timeoutMs = parseDuration(opts.timeout, '--timeout');
  const [{ openFleet, loadSigningKey }, { sendCommand, resultCategory }] = await Promise.all([import('../fleet/session.js'), import('../fleet/cmd.js')]);
  if (!isValidDeviceId(device)) throw new BerthError('usage', `invalid device id "${device}": use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
  const signer = await loadSigningKey(opts, ctx.env);
  const session = await openFleet(opts, ctx.env, [], false, [device]);
  try {
    if (session.view.devices.get(device)?.online !== true) process.stderr.write(`berth: ${device} is offline or unknown: the broker keeps the command for its session and it runs when the device connects\n`);
    const result = await sendCommand(session.link, device, request, timeoutMs, signer);
    const category = resultCategory(result);
    if (category === undefined) print(result);
    else {
      process.stderr.write(`berth: ${device}: ${result.status} (${result.result}): ${result.reason ?? ''}\n`);
      process.exitCode = ERROR_CATEGORIES[category].exit;
    }
  } finally {
    await session.close();
  }
}
