#!/usr/bin/env node
// Builds the fleet dashboard (src/fleet/service/web/) into dist/web/: one ES module bundle (Preact, htm,
// uPlot and our pages), one stylesheet (uPlot's plus ours) and index.html. `berth fleet serve` serves that
// directory as it is: no CDN, nothing fetched at run time. Run by `npm run build`, after tsc.
//
// The browser code is TypeScript checked by its own tsconfig (DOM library): esbuild only strips the types.
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = path.join(root, 'src/fleet/service/web');
const out = path.join(root, 'dist/web');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: [path.join(src, 'main.ts')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Phones a few years old: Safari 15 and Chrome 100 run this syntax without down-levelling.
  target: ['es2021', 'safari15', 'chrome100'],
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
// One stylesheet: uPlot's own rules first so ours can refine them.
const uplotCss = await readFile(path.join(root, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8');
const ownCss = await readFile(path.join(src, 'style.css'), 'utf8');
await writeFile(path.join(out, 'app.css'), `${uplotCss}\n${ownCss}`);
await copyFile(path.join(src, 'index.html'), path.join(out, 'index.html'));
