import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheFileName, runWithCodeCache } from '../../src/cli/code-cache.js';

/** A CommonJS file that uses what the CLI bundle uses: require from its own directory, __dirname, exports. */
function fixture(): { file: string; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-code-cache-'));
  fs.writeFileSync(path.join(root, 'dep.cjs'), 'module.exports = 41;\n');
  const file = path.join(root, 'cli.cjs');
  fs.writeFileSync(file, "'use strict';\nfunction answer() { return require('./dep.cjs') + 1; }\nmodule.exports = { answer: answer(), dir: __dirname, self: this === exports };\n");
  return { file, dir: path.join(root, 'cache') };
}

describe('the CLI runs with its compiled code cached (src/cli/code-cache.ts)', () => {
  it('compiles and writes the cache on the first run, and V8 takes it on the next', () => {
    const { file, dir } = fixture();
    const first = runWithCodeCache({ file, dir, build: 'aaaa', variant: 'run' });
    expect(first.exports).toEqual({ answer: 42, dir: path.dirname(file), self: true });
    expect(first.cached).toBe(false);
    first.save();
    const cacheFile = path.join(dir, cacheFileName('aaaa', 'run'));
    expect(fs.statSync(cacheFile).size).toBeGreaterThan(0);
    expect((fs.statSync(cacheFile).mode & 0o777).toString(8)).toBe('600');

    const second = runWithCodeCache({ file, dir, build: 'aaaa', variant: 'run' });
    expect(second.cached).toBe(true);
    expect(second.exports).toEqual(first.exports);
    const before = fs.statSync(cacheFile).mtimeMs;
    second.save(); // taken: nothing to write
    expect(fs.statSync(cacheFile).mtimeMs).toBe(before);
  });

  it('keeps one cache per verb, and drops the caches of another build when it writes', () => {
    const { file, dir } = fixture();
    runWithCodeCache({ file, dir, build: 'old', variant: 'run' }).save();
    runWithCodeCache({ file, dir, build: 'old', variant: 'ps' }).save();
    expect(fs.readdirSync(dir).sort()).toEqual([cacheFileName('old', 'ps'), cacheFileName('old', 'run')]);
    const next = runWithCodeCache({ file, dir, build: 'new', variant: 'run' });
    expect(next.cached).toBe(false);
    next.save();
    expect(fs.readdirSync(dir)).toEqual([cacheFileName('new', 'run')]);
  });

  it('compiles from source when the cache is torn or foreign, and replaces it', () => {
    const { file, dir } = fixture();
    fs.mkdirSync(dir);
    const cacheFile = path.join(dir, cacheFileName('b', 'run'));
    fs.writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    const run = runWithCodeCache({ file, dir, build: 'b', variant: 'run' });
    expect(run.cached).toBe(false);
    expect((run.exports as { answer: number }).answer).toBe(42);
    run.save();
    expect(runWithCodeCache({ file, dir, build: 'b', variant: 'run' }).cached).toBe(true);
  });

  it('runs uncached when the cache directory cannot be written', () => {
    const { file } = fixture();
    const blocker = path.join(path.dirname(file), 'not-a-dir');
    fs.writeFileSync(blocker, '');
    const run = runWithCodeCache({ file, dir: path.join(blocker, 'cache'), build: 'c', variant: 'run' });
    expect(() => run.save()).not.toThrow();
    expect(run.exports).toMatchObject({ answer: 42 });
  });
});

describe('where the CLI keeps its compiled code (src/cli/prelude.ts compileCacheDir)', () => {
  it('is under the state root only when that root exists: a cache never creates the root', async () => {
    const { compileCacheDir } = await import('../../src/cli/prelude.js');
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cache-dir-'));
    const missing = path.join(base, 'never-made');
    expect(compileCacheDir({ BERTH_ROOT: missing })).toBeUndefined();
    expect(fs.existsSync(missing)).toBe(false);
    expect(compileCacheDir({ BERTH_ROOT: base })).toBe(path.join(base, 'cache', 'compile'));
    expect(compileCacheDir({ BERTH_ROOT: missing, XDG_CACHE_HOME: base })).toBe(path.join(base, 'berth', 'compile'));
    expect(compileCacheDir({ BERTH_ROOT: missing, NODE_COMPILE_CACHE: base })).toBe(base);
  });
});
