import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { readCgroupLayout } from '../../src/cgroup/layout.js';
import { networkKernelCheck, networkToolsCheck } from '../../src/doctor/network-checks.js';
import type { DoctorContext } from '../../src/doctor/types.js';
import { variantHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function ctxWith(files: Record<string, string | Buffer>, searchPath = ''): DoctorContext {
  const h = variantHost(undefined, files);
  cleanups.push(h.cleanup);
  return { host: h.host, root: os.tmpdir(), searchPath, layout: readCgroupLayout(h.host) };
}

const ALL = ['CONFIG_BRIDGE=m', 'CONFIG_VETH=m', 'CONFIG_NF_TABLES=m', 'CONFIG_NETFILTER_XTABLES=y', 'CONFIG_NF_NAT=m', 'CONFIG_NETFILTER_XT_TARGET_MASQUERADE=m'];

describe('doctor: kernel networking', () => {
  it('reads /proc/config.gz (y or m) and names what is missing with the config option to set', () => {
    expect(networkKernelCheck(ctxWith({ 'proc/config.gz': zlib.gzipSync(ALL.join('\n') + '\n') }))).toMatchObject({ status: 'ok' });
    const r = networkKernelCheck(ctxWith({ 'proc/config.gz': zlib.gzipSync([...ALL.slice(0, 1), '# CONFIG_VETH is not set', ...ALL.slice(2)].join('\n')) }));
    expect(r).toMatchObject({ status: 'warn', detail: 'the kernel lacks veth: bridge networking cannot work', fix: expect.stringContaining('CONFIG_VETH=y or =m') });
  });

  it('without config.gz, takes built-in or loaded features from /proc/kallsyms and loadable ones from modules.dep', () => {
    const kallsyms = ['ffffffff8219e2c0 T br_dev_xmit', 'ffffffff81dfee30 t veth_xmit', 'ffffffff81fb4770 T nft_do_chain', 'ffffffff81ff75e0 T xt_register_match'].join('\n');
    const dep = 'kernel/net/netfilter/nf_nat.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz\nkernel/net/netfilter/xt_MASQUERADE.ko.xz: kernel/net/netfilter/nf_nat.ko.xz\n';
    const files = { 'proc/kallsyms': kallsyms, 'proc/sys/kernel/osrelease': '6.1.0-rpi7\n', 'lib/modules/6.1.0-rpi7/modules.dep': dep };
    expect(networkKernelCheck(ctxWith(files))).toMatchObject({ status: 'ok' });
    expect(networkKernelCheck(ctxWith({ ...files, 'lib/modules/6.1.0-rpi7/modules.dep': '' }))).toMatchObject({ status: 'warn', detail: 'the kernel lacks NAT, masquerade: bridge networking cannot work' });
    expect(networkKernelCheck(ctxWith({}))).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^cannot tell/), fix: 'modprobe configs, then run berth doctor again' });
  });
});

describe('doctor: network tools', () => {
  function pathWith(names: string[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-path-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    for (const n of names) fs.writeFileSync(path.join(dir, n), '#!/bin/sh\n', { mode: 0o755 });
    return dir;
  }

  it('finds netavark and aardvark-dns in podman helper dirs or on PATH, and gives the install line when missing', () => {
    const helpers = pathWith(['netavark', 'aardvark-dns']);
    const bin = pathWith(['iptables', 'ip', 'flock']);
    expect(networkToolsCheck([helpers])(ctxWith({}, bin))).toMatchObject({ status: 'ok', detail: `${helpers}/netavark, ${helpers}/aardvark-dns, ${bin}/iptables, ${bin}/ip, ${bin}/flock` });
    const r = networkToolsCheck([])(ctxWith({}, bin));
    expect(r).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^netavark, aardvark-dns not found/), fix: expect.stringContaining('apt-get install netavark aardvark-dns iptables') });
    expect(networkToolsCheck([helpers])(ctxWith({}, pathWith(['iptables', 'flock'])))).toMatchObject({ status: 'warn', fix: 'apt-get install iproute2' });
    expect(networkToolsCheck([helpers])(ctxWith({}, pathWith(['iptables', 'ip'])))).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^flock not found/), fix: 'apt-get install util-linux' });
  });
});
