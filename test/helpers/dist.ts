import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BERTH_BIN = `${REPO}bin/berth`;

/** Integration tests exercise the compiled CLI, as installed; fail clearly when it was not built. */
export function requireBuilt(): void {
  if (!fs.existsSync(`${REPO}dist/bundle/berth.mjs`)) throw new Error('dist/ is missing: run `npm run build` before the integration tests');
}
