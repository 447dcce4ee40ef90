import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ip = (...args: string[]) => execFileAsync('ip', args, { timeout: 10_000 });

/**
 * A "remote host" for network tests: a network namespace the test makes, joined to the host by a
 * veth pair with addresses of the 198.18.0.0/15 benchmark range (RFC 2544), chosen here. Traffic in
 * the tests goes only between the host, berth's containers and this namespace: nowhere else.
 */
export class RemoteNamespace {
  private servers: ChildProcess[] = [];

  /** IPv6 too (a ULA /64 of fd5e::/16 chosen here): `hostIp6` on the host's end, `remoteIp6` inside. */
  readonly hostIp6: string;
  readonly remoteIp6: string;

  private constructor(readonly name: string, readonly hostIf: string, readonly hostIp: string, readonly remoteIp: string, tag: string) {
    this.hostIp6 = `fd5e:${tag.slice(0, 4)}:${tag.slice(4)}::1`;
    this.remoteIp6 = `fd5e:${tag.slice(0, 4)}:${tag.slice(4)}::2`;
  }

  /**
   * Makes the namespace, the veth pair and the addresses; the remote's default route is the host.
   * `decoy`: a stand-in for "off the host" instead, for the isolation guard's own test: its host end is
   * named bxd… (not btr…, which the guard lets containers reach) and its addresses are in 198.51.100.0/24
   * (TEST-NET-2), so a container packet toward it is one the guard must count and drop.
   */
  static async create(kind: 'remote' | 'decoy' = 'remote'): Promise<RemoteNamespace> {
    const tag = crypto.randomBytes(3).toString('hex');
    const n = crypto.randomBytes(1)[0]!;
    const [hostIp, remoteIp] = kind === 'remote' ? [`198.18.${n}.1`, `198.18.${n}.2`] : [`198.51.100.${(n & 0xfc) + 1}`, `198.51.100.${(n & 0xfc) + 2}`];
    const r = new RemoteNamespace(`berth-test-${kind}-${tag}`, `${kind === 'remote' ? 'btr' : 'bxd'}${tag}`, hostIp, remoteIp, tag);
    try {
      await ip('netns', 'add', r.name);
      await ip('link', 'add', r.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', r.name);
      await ip('addr', 'add', `${r.hostIp}/30`, 'dev', r.hostIf);
      await ip('link', 'set', r.hostIf, 'up');
      await ip('-n', r.name, 'addr', 'add', `${r.remoteIp}/30`, 'dev', 'eth0');
      await ip('-n', r.name, 'link', 'set', 'eth0', 'up');
      await ip('-n', r.name, 'link', 'set', 'lo', 'up');
      await ip('-n', r.name, 'route', 'add', 'default', 'via', r.hostIp);
      // nodad: usable at once, without the second of duplicate address detection.
      await ip('-6', 'addr', 'add', `${r.hostIp6}/64`, 'dev', r.hostIf, 'nodad');
      await ip('-n', r.name, '-6', 'addr', 'add', `${r.remoteIp6}/64`, 'dev', 'eth0', 'nodad');
      await ip('-n', r.name, '-6', 'route', 'add', 'default', 'via', r.hostIp6);
    } catch (err) {
      await r.close();
      throw err;
    }
    return r;
  }

  /** Runs a command inside the namespace. */
  async exec(argv: readonly string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileAsync('ip', ['netns', 'exec', this.name, ...argv], { timeout: timeoutMs });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  /** An HTTP server inside the namespace on `port` answering `remote <client address>`; resolves once it listens. */
  async serveHttp(port: number): Promise<void> {
    const js = `require('http').createServer((q, s) => s.end('remote ' + q.socket.remoteAddress.replace('::ffff:', '') + '\\n')).listen(${port}, () => console.log('ready'))`;
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.servers.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server in ${this.name} exited with ${code}`)));
    });
  }

  /** Stops the servers and deletes the namespace (its veth end, hence the pair, goes with it). Never throws. */
  async close(): Promise<void> {
    for (const s of this.servers) s.kill('SIGKILL');
    await ip('netns', 'delete', this.name).catch(() => undefined);
    await ip('link', 'delete', this.hostIf).catch(() => undefined);
  }
}
