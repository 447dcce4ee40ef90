#!/usr/bin/env node
// Pushes agent bundles as one multi-arch OCI index (docs/upgrade.md §1) with berth's own registry client
// (credentials from `berth login`/Docker's config, CAs from <root>/certs.d, as for pulls):
//
//   node scripts/bundle-push.mjs REGISTRY/REPOSITORY:TAG [--dir PLATFORM=DIR]… [--arch arm64|arm|armv6]… [--root DIR] [--tls-verify=false]
//
// --dir takes a bundle directory already built (berth flash --build-bundle, or a test's; linux/amd64 is
// what lets a development machine test the whole path); --arch builds one from this checkout first
// (cross toolchains as for berth flash). Prints the index digest: what `berth fleet upgrade` sends.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { pushBundleIndex } = await import(path.join(root, 'dist/agent/upgrade/artifact.js'));
const { openRegistryClient } = await import(path.join(root, 'dist/image/registry/open.js'));
const { parseReference } = await import(path.join(root, 'dist/image/reference.js'));
const { buildBundle } = await import(path.join(root, 'dist/flash/bundle.js'));

// armv6: Debian armel's Node 18 for the Pi Zero, Zero W and Pi 1 (src/flash/bundle-armv6.ts); an ARMv7 board
// prefers linux/arm/v7 and a Zero W, whose profile lists arm/v6 first, finds its own.
const PLATFORM_OF = { arm64: 'linux/arm64', arm: 'linux/arm/v7', armv6: 'linux/arm/v6' };
const args = process.argv.slice(2);
let ref;
let stateRoot = process.env.BERTH_ROOT || '/var/lib/berth';
let tlsVerify = true;
const sources = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--dir') {
    const [platform, dir] = (args[++i] ?? '').split(/=(.*)/s);
    if (!platform || !dir) usage(`--dir takes PLATFORM=DIR, not "${args[i]}"`);
    sources.push({ platform, dir: path.resolve(dir) });
  } else if (a === '--arch') {
    const arch = args[++i];
    if (!(arch in PLATFORM_OF)) usage(`--arch takes arm64, arm or armv6, not "${arch}"`);
    const dir = await buildBundle({ arch, packageRoot: root, log: (l) => console.error(l) });
    sources.push({ platform: PLATFORM_OF[arch], dir });
  } else if (a === '--root') stateRoot = args[++i];
  else if (a === '--tls-verify=false') tlsVerify = false;
  else if (!a.startsWith('-') && ref === undefined) ref = a;
  else usage(`unknown argument "${a}"`);
}
if (ref === undefined || sources.length === 0) usage('a reference and at least one --dir or --arch are needed');
const parsed = parseReference(ref);
if (parsed.tag === undefined) usage(`${ref} needs a tag (the release, e.g. :0.4.0)`);
const client = openRegistryClient({ root: stateRoot, env: process.env }, ref, tlsVerify);
try {
  const pushed = await pushBundleIndex(client, parsed.repository, parsed.tag, sources);
  for (const p of pushed.platforms) console.error(`${p.platform}: berth ${p.version}, manifest ${p.manifest}`);
  console.log(`${parsed.registry}/${parsed.repository}:${parsed.tag}@${pushed.digest}`);
} catch (err) {
  console.error(`bundle-push: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`);
  process.exitCode = 1;
} finally {
  client.close();
}

function usage(message) {
  console.error(`bundle-push: ${message}\nusage: node scripts/bundle-push.mjs REGISTRY/REPOSITORY:TAG [--dir PLATFORM=DIR]… [--arch arm64|arm|armv6]… [--root DIR] [--tls-verify=false]`);
  process.exit(2);
}
