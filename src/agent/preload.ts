// A preloaded card's first start (issue 19): `berth flash --preload` (src/flash/preload.ts) leaves the
// app and its images in the state root; the agent loads the images and records the app as its initial
// deployment before it deploys anything, so a board with no network runs the app on first boot.
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../compose/model.js';
import { appFromMessage, atRevision } from '../compose/normalize.js';
import { toBerthError } from '../errors.js';
import type { ImageService } from '../image/service.js';
import { parsePlatform } from '../image/platform.js';
import type { DeploymentRecords } from './deployments.js';
import { checkDeployPolicy, type DeployPolicy } from './policy.js';

/**
 * The preload's place in the state root, as flash writes it: `preload/app.json` (a desired state, the
 * protocol's JSON; its revision is ignored) and `preload/images/` (an OCI image layout, `berth save
 * --format oci` unpacked, so the card holds the blobs once and nothing is unpacked on the board).
 */
export const PRELOAD_DIR = 'preload';
export const PRELOAD_APP_FILE = 'app.json';
export const PRELOAD_IMAGES_DIR = 'images';

/**
 * The preloaded app's revision: below every revision a fleet sends (desired.json's minimum is 1), so the
 * fleet's first deploy (its next revision is max(desired, reported) + 1 ≥ 1) is newer and replaces it as
 * any deploy replaces the one before; `reported` says 0, which reported.json allows ("before the first
 * deployment"). A preload can therefore never outrank or block what the fleet sends.
 */
export const PRELOAD_REVISION = 0;

export interface PreloadDeps {
  readonly stateRoot: string;
  readonly images: Pick<ImageService, 'loadLayout'>;
  readonly records: Pick<DeploymentRecords, 'latest' | 'receive'>;
  /** The board's platforms, most preferred first (a layout holds one platform per image anyway). */
  readonly platforms: readonly string[];
  /** A fleet agent's deploy policy: the preloaded app is held to it as a fleet deploy would be. */
  readonly policy?: DeployPolicy;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
}

export type PreloadOutcome = 'none' | 'adopted' | 'discarded' | 'failed';

/**
 * Adopts a preload once, before the agent resumes deployments: with no deployment recorded yet, loads
 * the layout's images (digests verified, as `berth load`) and records the app as revision
 * {@link PRELOAD_REVISION}, `applying`, which the agent's resume step then deploys like an interrupted
 * deploy. The preload directory is removed only after that record is committed.
 *
 * Crash safety (kill -9 anywhere): before the record, nothing but loaded images exists, and a load of an
 * image already present changes nothing, so the next start repeats the whole step; after the record, the
 * next start finds a deployment, only removes the directory, and the resume step finishes the deploy.
 * A device that already has a deployment (the fleet got there first) discards the preload unused.
 * A bad preload is logged (`preload-failed`) and left for the next start; it never stops the agent, so
 * the fleet can still reach the device and deploy over it.
 */
export async function adoptPreload(d: PreloadDeps): Promise<PreloadOutcome> {
  const dir = path.join(d.stateRoot, PRELOAD_DIR);
  if (!fs.existsSync(dir)) return 'none';
  if (d.records.latest() !== undefined) {
    d.log('preload-discarded', { dir, reason: 'the device already has a deployment' });
    fs.rmSync(dir, { recursive: true, force: true });
    return 'discarded';
  }
  let app: App;
  let loaded: string[];
  try {
    app = readPreloadApp(dir, d.stateRoot);
    if (d.policy) checkDeployPolicy(app, d.policy, d.stateRoot);
    d.log('preload-loading', { dir, app: app.name });
    loaded = await d.images.loadLayout(path.join(dir, PRELOAD_IMAGES_DIR), d.platforms.map(parsePlatform));
  } catch (err) {
    const e = toBerthError(err);
    d.log('preload-failed', { dir, error: e.message, ...(e.hint !== undefined && { hint: e.hint }) });
    return 'failed';
  }
  d.records.receive(app.source, Date.now());
  d.log('preload-adopted', { revision: PRELOAD_REVISION, app: app.name, services: [...app.services.keys()], images: loaded });
  fs.rmSync(dir, { recursive: true, force: true });
  return 'adopted';
}

/** The preload's app, checked and normalized as a received desired state is, at {@link PRELOAD_REVISION}. */
function readPreloadApp(dir: string, stateRoot: string): App {
  const file = path.join(dir, PRELOAD_APP_FILE);
  const app = appFromMessage(fs.readFileSync(file), { stateRoot });
  return atRevision(app, PRELOAD_REVISION);
}
