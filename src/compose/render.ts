import { formatDuration } from '../duration.js';
import type { RestartPolicy, RunOptions } from '../runtime/options.js';
import { SERVICE_LABEL, SPEC_LABEL, REVISION_LABEL } from './labels.js';
import { stringifyYaml } from '../yaml.js';
import { readComposeFile, type ComposeReadOptions } from './file.js';
import type { App, AppService } from './model.js';
import { escapeDollars, renderTopLevel } from './render-top.js';

/**
 * The app model written back as a compose document, as `docker compose config` prints one: every
 * service with its values normalized (argv lists, environment and labels as mappings, sizes in bytes,
 * durations in compose's spelling, paths cleaned, device permissions spelled out) and berth's defaults
 * filled in (restart, read_only, healthcheck timings, the update policy). Volumes and devices keep the
 * short syntax, the only one berth reads yet, so the output is itself a file berth accepts (and
 * normalizes to the same document). What is shown is what runs: a CMD-SHELL healthcheck as the CMD it
 * execs (`/bin/sh -c …`), stop_grace_period in the whole seconds berth waits. berth's own labels are
 * left out: they are not the user's to write.
 */

const restart = (r: RestartPolicy): string => (r.name === 'on-failure' && r.maxRetries !== undefined ? `on-failure:${r.maxRetries}` : r.name);

const OWN_LABELS = new Set([SERVICE_LABEL, SPEC_LABEL, REVISION_LABEL]);

function environment(env: readonly string[]): Record<string, string> {
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

function service(s: AppService): Record<string, unknown> {
  const o: RunOptions = s.run;
  const labels = Object.fromEntries(Object.entries(o.labels).filter(([k]) => !OWN_LABELS.has(k)));
  const h = s.healthcheck;
  return {
    image: s.image,
    ...(o.entrypoint && { entrypoint: [...o.entrypoint] }),
    ...(o.cmd && { command: [...o.cmd] }),
    ...(o.env.length > 0 && { environment: environment(o.env) }),
    ...(o.memory !== undefined && { mem_limit: o.memory }),
    ...(o.memoryReservation !== undefined && { mem_reservation: o.memoryReservation }),
    ...(o.memorySwap !== undefined && { memswap_limit: o.memorySwap }),
    ...(o.cpus !== undefined && { cpus: o.cpus }),
    ...(o.cpuShares !== undefined && { cpu_shares: o.cpuShares }),
    ...(o.pidsLimit !== undefined && { pids_limit: o.pidsLimit }),
    restart: restart(o.restart),
    ...(o.volumes.length > 0 && { volumes: o.volumes.map((v) => `${v.source}:${v.target}${v.readOnly ? ':ro' : ''}`) }),
    ...(o.devices.length > 0 && { devices: o.devices.map((d) => `${d.hostPath}:${d.containerPath}:${d.permissions}`) }),
    // `private` (its own namespace) is berth's default and compose has no word for it.
    ...(o.network !== 'private' && { network_mode: o.network }),
    read_only: o.readOnly,
    ...(o.user !== undefined && { user: o.user }),
    ...(o.workdir !== undefined && { working_dir: o.workdir }),
    ...(o.stopTimeout !== undefined && { stop_grace_period: formatDuration(o.stopTimeout * 1000) }),
    ...(h && {
      healthcheck: {
        test: ['CMD', ...h.argv], interval: formatDuration(h.intervalMs), timeout: formatDuration(h.timeoutMs), retries: h.retries, start_period: formatDuration(h.startPeriodMs),
      },
    }),
    ...(Object.keys(labels).length > 0 && { labels }),
  };
}

/** The normalized compose document for `app` (a plain object, ready for YAML or JSON). */
export function composeDocument(app: App): Record<string, unknown> {
  const { strategy, healthWindowMs, onFailure } = app.update;
  return escapeDollars({
    name: app.name,
    services: Object.fromEntries([...app.services].map(([name, s]) => [name, service(s)])),
    ...renderTopLevel(app),
    'x-berth': { update: { strategy, health_window: formatDuration(healthWindowMs), on_failure: onFailure } },
  }) as Record<string, unknown>;
}

/**
 * `berth compose config FILE`: reads (with `opts`, as `berth deploy` would), checks and normalizes the
 * file; resolves with the normalized document as YAML, or with '' when `quiet` (only validating).
 * Throws the file's first problem.
 */
export async function composeConfig(file: string, opts: ComposeReadOptions = {}, quiet = false): Promise<string> {
  const app = await readComposeFile(file, opts);
  return quiet ? '' : stringifyYaml(composeDocument(app));
}
