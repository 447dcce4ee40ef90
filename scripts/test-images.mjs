#!/usr/bin/env node
// Builds the multi-arch busybox-static test image and pushes it to a registry, for poking at the
// puller by hand or benchmarking outside vitest:
//
//   node scripts/test-images.mjs --registry 127.0.0.1:PORT --repo NAME --tag TAG
//        [--big-mb N] [--docker] [--arches amd64,arm64,armhf,armel] [--compression gzip|none] [--user U:P]
//
// Prints the BuiltImage as JSON. Needs the .debs from `bash scripts/setup.sh`.
//
// The builder is TypeScript under test/helpers/images/ and is not compiled into dist/, so rather
// than duplicate it this script re-runs itself under vite-node (shipped with vitest), which
// imports .ts the same way the tests do.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

if (!process.env.BERTH_TEST_IMAGES_UNDER_VITE_NODE) {
  const viteNode = `${repoRoot}node_modules/.bin/vite-node`;
  const res = spawnSync(viteNode, ['--script', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    cwd: repoRoot, // vite's root: where it finds node_modules and no vite.config
    stdio: 'inherit',
    env: { ...process.env, BERTH_TEST_IMAGES_UNDER_VITE_NODE: '1' },
  });
  if (res.error) {
    console.error(`test-images: cannot run ${viteNode} (${res.error.message}); run \`npm ci\` first`);
    process.exit(1);
  }
  process.exit(res.status ?? 1);
}

const { values } = parseArgs({
  options: {
    registry: { type: 'string' },
    repo: { type: 'string' },
    tag: { type: 'string', default: 'latest' },
    'big-mb': { type: 'string' },
    docker: { type: 'boolean', default: false },
    arches: { type: 'string' },
    compression: { type: 'string', default: 'gzip' },
    user: { type: 'string' },
  },
});
if (!values.registry || !values.repo || !['gzip', 'none'].includes(values.compression)) {
  console.error('usage: node scripts/test-images.mjs --registry HOST:PORT --repo NAME [--tag TAG] [--big-mb N] [--docker] [--arches a,b] [--compression gzip|none] [--user U:P]');
  process.exit(2);
}
const url = /^https?:\/\//.test(values.registry) ? values.registry : `http://${values.registry}`;
const auth = values.user ? { username: values.user.split(':')[0], password: values.user.split(':').slice(1).join(':') } : undefined;

const { pushBusyboxImage } = await import('../test/helpers/images/build.ts');
const started = Date.now();
const image = await pushBusyboxImage({ url }, values.repo, values.tag, {
  docker: values.docker,
  compression: values.compression,
  ...(values['big-mb'] ? { bigLayerMB: Number(values['big-mb']) } : {}),
  ...(values.arches ? { arches: values.arches.split(',') } : {}),
  ...(auth ? { auth } : {}),
});
console.log(JSON.stringify({ ...image, ms: Date.now() - started }, null, 2));
