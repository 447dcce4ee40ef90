import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/dist.js';

describe('generated validators', () => {
  it('are up to date with their schemas (run `npm run gen` after editing a schema)', async () => {
    const gen = (await import(path.join(REPO, 'scripts/gen-validators.mjs'))) as { SCHEMAS: Array<[string, string]>; generate(f: string): string };
    for (const [schema, name] of gen.SCHEMAS) {
      const onDisk = fs.readFileSync(path.join(REPO, 'src/generated', `${name}.validate.js`), 'utf8');
      expect(onDisk, `src/generated/${name}.validate.js is stale`).toBe(gen.generate(schema));
    }
  });
});
