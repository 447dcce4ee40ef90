import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthOn, httpGet, inspections, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { freePort } from '../helpers/services/ports.js';

// Published ports on the host's IPv6 loopback ([::1]:P:C), which the kernel cannot DNAT: berth-monitor
// forwards them in user space (native/proxy.c). Traffic only between the host's loopback and berth's
// containers on networks this file makes (ULA fd42:…/64 and IPv4 from berth's pool); nothing else.

// Echo servers busybox lacks. UDP on argv[1] replies "<peer address> <payload>", so the test sees where
// the proxy connects from; TCP on argv[2] echoes each connection until its end of file, then closes
// (a process per connection, backlog 256: busybox httpd's backlog of 9 resets a burst of connections,
// with or without the proxy). Static, bind-mounted into the container.
const ECHO_SRC = `
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
static int listen_on(int type, int port) {
	int fd = socket(AF_INET6, type, 0), zero = 0, one = 1;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || (type == SOCK_STREAM && listen(fd, 256) < 0)) { perror("echo"); exit(1); }
	return fd;
}
int main(int argc, char **argv) {
	if (argc < 3) return 2;
	signal(SIGCHLD, SIG_IGN);
	if (fork() == 0) {
		int l = listen_on(SOCK_STREAM, atoi(argv[2]));
		for (;;) {
			int c = accept(l, NULL, NULL);
			if (c >= 0 && fork() == 0) {
				char buf[4096];
				ssize_t n;
				while ((n = read(c, buf, sizeof buf)) > 0) write(c, buf, (size_t)n);
				_exit(0);
			}
			close(c);
		}
	}
	int fd = listen_on(SOCK_DGRAM, atoi(argv[1]));
	for (;;) {
		char buf[2048], out[2200], ip[64];
		struct sockaddr_in6 from;
		socklen_t len = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
		if (n < 0) continue;
		buf[n] = 0;
		inet_ntop(AF_INET6, &from.sin6_addr, ip, sizeof ip);
		int m = snprintf(out, sizeof out, "%s %s", ip, buf);
		sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&from, len);
	}
}
`;

let t: NetTestRoot;
let tools: string;

beforeAll(async () => {
  t = await openNetTestRoot('npx');
  tools = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-npx-tools-'));
  fs.writeFileSync(path.join(tools, 'echo.c'), ECHO_SRC);
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(tools, 'echo'), path.join(tools, 'echo.c')]);
}, 180_000);
afterAll(async () => {
  await t?.close();
  if (tools) fs.rmSync(tools, { recursive: true, force: true });
});

const berth = berthOn(() => t.root);
const { netInspect, ipOf } = inspections(berth);
const tag = crypto.randomBytes(4).toString('hex');
const subnet = `fd42:${tag.slice(0, 4)}:${tag.slice(4)}::/64`;

/** httpd serving `text` at /, 2 MiB of random bytes at /big (their sha256 at /big.sum); the echo servers on 5353/udp and 7/tcp. */
const servers = (text: string) => ['-v', `${tools}/echo:/echo:ro`, t.img, 'sh', '-c',
  `mkdir -p /www && echo ${text} > /www/index.html && head -c 2097152 /dev/urandom > /www/big && sha256sum /www/big > /www/big.sum && httpd -p 80 -h /www && exec /echo 5353 7`];

/** One UDP datagram to [::1]:port and its answer (retried: the server may not be up yet). */
async function udpAsk(port: number, payload: string): Promise<{ text: string; from: string }> {
  for (let i = 0; ; i++) {
    const sock = dgram.createSocket({ type: 'udp6' });
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no UDP answer from [::1]:${port}`)), 500);
        sock.once('message', (msg, rinfo) => {
          clearTimeout(timer);
          resolve({ text: msg.toString(), from: `[${rinfo.address}]:${rinfo.port}` });
        });
        sock.send(payload, port, '::1');
      });
    } catch (err) {
      if (i >= 20) throw err;
    } finally {
      sock.close();
    }
  }
}

/**
 * `count` connections to the TCP echo on [::1]:port at once, each sending its number and then its end
 * of file (a half-close the proxy passes on); what each got back before the echo's end of file.
 */
function concurrentEchoes(port: number, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '::1', port }, () => s.end(`${i}\n`));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  })));
}

/** Resolves true when something accepts TCP on [::1]:port. */
const tcpOpen = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = net.connect({ host: '::1', port }, () => {
    s.destroy();
    resolve(true);
  });
  s.on('error', () => resolve(false));
});

/** The port can be bound on ::1 again (TCP and UDP): nothing holds it. */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const srv = net.createServer().once('error', () => resolve(false));
    srv.listen({ host: '::1', port, ipv6Only: true }, () => srv.close(() => resolve(true)));
  });
  const udp = await new Promise<boolean>((resolve) => {
    const s = dgram.createSocket({ type: 'udp6', ipv6Only: true }).once('error', () => resolve(false));
    s.bind(port, '::1', () => s.close(() => resolve(true)));
  });
  return tcp && udp;
}

const ok = (r: { code: number | null; stderr: string }): void => expect(r.code, r.stderr).toBe(0);
const monitorPid = (name: string): number => {
  const id = (JSON.parse(berth('inspect', name).stdout) as Array<{ Id: string }>)[0]!.Id;
  return (JSON.parse(fs.readFileSync(path.join(t.root, 'containers', id, 'state', 'monitor.pid'), 'utf8')) as { pid: number }).pid;
};

describe('published ports on [::1] (berth-monitor\'s port proxy)', () => {
  it('forwards TCP and UDP to the container\'s IPv6 address after the CLI exited, keeps them over a restart, frees them at stop and rm; 127.0.0.1 still goes through DNAT', async () => {
    ok(berth('network', 'create', '--ipv6', '--subnet', subnet, 'pxa'));
    const [tcpPort, udpPort, echoPort, v4Port] = [await freePort('::1'), await freePort('::1'), await freePort('::1'), await freePort()];
    // `run -d` returns and its process is gone before the first byte: the monitor holds the ports.
    const run = berth('run', '-d', '--name', 'pxsrv', '--network', 'pxa', '-p', `[::1]:${tcpPort}:80`, '-p', `[::1]:${udpPort}:5353/udp`, '-p', `[::1]:${echoPort}:7`, '-p', `127.0.0.1:${v4Port}:80`, ...servers('hello-proxy'));
    ok(run);
    expect(await httpGet('[::1]', tcpPort)).toBe('hello-proxy\n');
    expect(await httpGet('127.0.0.1', v4Port)).toBe('hello-proxy\n');

    // UDP: the answer comes back from [::1]:udpPort; the container saw the network's IPv6 gateway (the
    // host side of the bridge): the proxy connects from the host namespace to the IPv6 address.
    const gateway6 = netInspect('pxa').IPAM.Config[1].Gateway as string;
    expect(await udpAsk(udpPort, 'ping')).toEqual({ text: `${gateway6} ping`, from: `[::1]:${udpPort}` });

    // A 2 MiB body spliced through intact, and more connections at once than the proxy's cap (64),
    // each half-closed by its client: the rest wait in the listener's backlog, none is refused.
    const sum = (await (await fetch(`http://[::1]:${tcpPort}/big.sum`)).text()).split(' ')[0];
    const big = Buffer.from(await (await fetch(`http://[::1]:${tcpPort}/big`)).arrayBuffer());
    expect(big.length).toBe(2097152);
    expect(crypto.createHash('sha256').update(big).digest('hex')).toBe(sum);
    expect(await concurrentEchoes(echoPort, 80)).toEqual(Array.from({ length: 80 }, (_, i) => `${i}\n`));

    const pid = monitorPid('pxsrv');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    console.log(`[port proxy] monitor VmRSS ${/^VmRSS:\s+(\d+)/m.exec(status)![1]} kB, VmHWM ${/^VmHWM:\s+(\d+)/m.exec(status)![1]} kB after 2 MiB + 80 connections + UDP`);

    // A restart is a new monitor with the same ports.
    ok(berth('restart', '-t', '1', 'pxsrv'));
    expect(monitorPid('pxsrv')).not.toBe(pid);
    expect(await httpGet('[::1]', tcpPort)).toBe('hello-proxy\n');
    expect((await udpAsk(udpPort, 'again')).text).toBe(`${gateway6} again`);

    // Stopped, it holds no port; one taken meanwhile fails the next start, naming its holder.
    ok(berth('stop', '-t', '1', 'pxsrv'));
    expect(await bindable(udpPort)).toBe(true);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: '::1', port: tcpPort, ipv6Only: true }, resolve));
    const blocked = berth('start', 'pxsrv');
    await new Promise((resolve) => squatter.close(resolve));
    expect(blocked.stderr).toContain(`host port ${tcpPort}/tcp (-p [::1]:${tcpPort}->80/tcp) is already in use by pid ${process.pid}`);
    ok(berth('start', 'pxsrv'));
    expect(await httpGet('[::1]', tcpPort)).toBe('hello-proxy\n');

    ok(berth('rm', '-f', 'pxsrv'));
    expect(await tcpOpen(tcpPort)).toBe(false);
    expect(await bindable(tcpPort)).toBe(true);
    expect(await bindable(udpPort)).toBe(true);
  });

  it('forwards to the IPv4 address on a network without IPv6 (any spelling of ::1)', async () => {
    ok(berth('network', 'create', 'pxb'));
    const port = await freePort('::1');
    ok(berth('run', '-d', '--name', 'pxv4', '--network', 'pxb', '-p', `[0:0:0:0:0:0:0:1]:${port}:5353/udp`, ...servers('v4')));
    const gateway = netInspect('pxb').IPAM.Config[0].Gateway as string;
    expect(ipOf('pxb', 'pxv4')).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect((await udpAsk(port, 'v4')).text).toBe(`::ffff:${gateway} v4`);
    ok(berth('rm', '-f', 'pxv4'));
    expect(await bindable(port)).toBe(true);
  });

  it('refuses a port already bound on ::1, naming the port and its user, and leaves nothing behind', async () => {
    const holder = net.createServer();
    const port = await new Promise<number>((resolve) => holder.listen({ host: '::1', port: 0, ipv6Only: true }, () => resolve((holder.address() as net.AddressInfo).port)));
    try {
      const r = berth('run', '-d', '--name', 'pxbusy', '--network', 'pxa', '-p', `[::1]:${port}:80`, t.img, 'sleep', '30');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`host port ${port}/tcp (-p [::1]:${port}->80/tcp) is already in use by pid ${process.pid}`);
      expect(berth('ps', '-a', '--json').stdout).not.toContain('pxbusy');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    // Published by another container: named too.
    const other = await freePort('::1');
    ok(berth('run', '-d', '--name', 'pxone', '--network', 'pxa', '-p', `[::1]:${other}:80`, t.img, 'sleep', '60'));
    const two = berth('run', '-d', '--name', 'pxtwo', '--network', 'pxa', '-p', `[::1]:${other}:81`, t.img, 'sleep', '60');
    expect(two.stderr).toContain(`is already published by container pxone`);
    ok(berth('rm', '-f', 'pxone'));
  });
});
