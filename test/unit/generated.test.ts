import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/dist.js';

type Generator = { SCHEMAS: Array<[string, string]>; generate(f: string): string };
const generator = async (): Promise<Generator> => (await import(path.join(REPO, 'scripts/gen-validators.mjs'))) as Generator;

describe('generated validators', () => {
  it('are up to date with their schemas (run `npm run gen` after editing a schema)', async () => {
    const gen = await generator();
    for (const [schema, name] of gen.SCHEMAS) {
      const onDisk = fs.readFileSync(path.join(REPO, 'src/generated', `${name}.validate.js`), 'utf8');
      expect(onDisk, `src/generated/${name}.validate.js is stale`).toBe(gen.generate(schema));
    }
  });

  it('src/generated holds only what the generator makes (and its README): no hand edits, no orphans', async () => {
    const gen = await generator();
    const expected = [...gen.SCHEMAS.map(([, name]) => `${name}.validate.js`), 'README.md'].sort();
    expect(fs.readdirSync(path.join(REPO, 'src/generated')).sort()).toEqual(expected);
  });
});
