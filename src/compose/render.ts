import { formatDuration } from '../duration.js';
import { stringifyYaml } from '../yaml.js';
import { readComposeFile, type ComposeReadOptions } from './file.js';
import type { App } from './model.js';
import { renderService } from './render-service.js';
import { escapeDollars, renderTopLevel } from './render-top.js';

/**
 * The app model written back as a compose document, as `docker compose config` prints one: every
 * service with its values normalized (argv lists, environment and labels as mappings, sizes in bytes,
 * durations in compose's spelling, paths cleaned, device permissions spelled out) and berth's defaults
 * filled in (restart, read_only, healthcheck timings, the update policy); each service is written by
 * render-service.ts. The output is itself a file berth accepts (and normalizes to the same document).
 * What is shown is what runs: a CMD-SHELL healthcheck as the CMD it execs (`/bin/sh -c …`),
 * stop_grace_period in the whole seconds berth waits. berth's own labels are left out: they are not
 * the user's to write.
 */

/** The normalized compose document for `app` (a plain object, ready for YAML or JSON). */
export function composeDocument(app: App): Record<string, unknown> {
  const { strategy, healthWindowMs, onFailure } = app.update;
  return escapeDollars({
    name: app.name,
    services: Object.fromEntries([...app.services].map(([name, s]) => [name, renderService(s, app)])),
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
