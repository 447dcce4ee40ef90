import fs from 'node:fs';
import path from 'node:path';
import type { App } from './model.js';

/**
 * Where an app's own files live on the device. A desired state carries configs and secrets as bytes
 * (the device has no compose file beside it); before its services start they are written here and
 * bind-mounted read-only (service.ts builds the mounts from {@link appFilePath}, the deployer calls
 * {@link writeAppFiles}). Relative bind sources of a fleet deploy resolve under the same directory.
 */

/** The app's data directory: `<stateRoot>/apps/<app>`. */
export function appDataDir(stateRoot: string, app: string): string {
  return path.join(stateRoot, 'apps', app);
}

/** The host file a config or secret is mounted from: `<dataDir>/configs/<name>` or `<dataDir>/secrets/<name>`. */
export function appFilePath(dataDir: string, kind: 'configs' | 'secrets', name: string): string {
  return path.join(dataDir, kind, name);
}

/**
 * Writes every config and secret of `app` to its {@link appFilePath}, mode 0444 as compose mounts
 * them (any container user may read them; the secrets folder itself is 0700, so other host users
 * cannot). A file whose bytes changed is replaced by a rename, never rewritten in place: a container of
 * the previous revision keeps the bytes it started with. Unchanged files are left alone.
 */
export function writeAppFiles(app: App): void {
  for (const kind of ['configs', 'secrets'] as const) {
    if (app[kind].size === 0) continue;
    const dir = path.join(app.dataDir, kind);
    fs.mkdirSync(dir, { recursive: true, mode: kind === 'secrets' ? 0o700 : 0o755 });
    for (const file of app[kind].values()) {
      const target = appFilePath(app.dataDir, kind, file.name);
      const bytes = Buffer.from(file.content, 'base64');
      if (sameBytes(target, bytes)) continue;
      const tmp = `${target}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, bytes, { mode: 0o444 });
      fs.renameSync(tmp, target);
    }
  }
}

function sameBytes(file: string, bytes: Buffer): boolean {
  try {
    return fs.readFileSync(file).equals(bytes);
  } catch {
    return false;
  }
}
