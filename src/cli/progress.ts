import type { PullEvent, PullResult } from '../image/pull/pull.js';
import type { BerthRoot } from '../root.js';
import { formatBytes } from './format.js';

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * Renders pull events. On a terminal: one line per layer, redrawn in place at most 10 times a second.
 * Otherwise (logs, CI, pipes): a plain line per phase change, nothing redrawn.
 */
export class PullProgress {
  private readonly order: string[] = [];
  private readonly state = new Map<string, { phase: string; bytes: number; total: number }>();
  private drawn = 0;
  private lastDraw = 0;

  constructor(private readonly out: NodeJS.WriteStream | NodeJS.WritableStream, private readonly tty: boolean, private readonly quiet: boolean) {}

  handle = (e: PullEvent): void => {
    if (this.quiet && e.type !== 'warning') return;
    switch (e.type) {
      case 'resolved':
        this.out.write(`${e.name}: ${e.platform}, manifest ${e.manifestDigest}${e.indexDigest ? ` (from index ${e.indexDigest})` : ''}\n`);
        for (const l of e.layers) {
          this.order.push(l.digest);
          this.state.set(l.digest, { phase: 'waiting', bytes: 0, total: l.size });
        }
        break;
      case 'layer': {
        const prev = this.state.get(e.digest);
        this.state.set(e.digest, { phase: e.phase, bytes: e.bytes, total: e.total });
        if (this.tty) this.draw(e.phase === 'done');
        else if (prev?.phase !== e.phase) this.out.write(`${short(e.digest)}: ${e.phase} ${formatBytes(e.total)}\n`);
        break;
      }
      case 'retry':
        if (!this.tty) this.out.write(`${short(e.digest)}: retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)} s (${e.reason})\n`);
        break;
      case 'warning':
        this.clear();
        this.out.write(`warning: ${e.message}\n`);
        break;
      case 'done':
        if (this.tty) this.draw(true);
        this.out.write(`pulled ${e.name} (${formatBytes(e.downloadedBytes)} downloaded)\n`);
        break;
    }
  };

  private line(digest: string): string {
    const s = this.state.get(digest)!;
    const width = 24;
    const frac = s.total > 0 ? Math.min(1, s.bytes / s.total) : 1;
    const bar = s.phase === 'downloading' || s.phase === 'unpacking' ? ` [${'='.repeat(Math.round(frac * width)).padEnd(width)}]` : '';
    return `${short(digest)}: ${s.phase.padEnd(11)}${bar} ${formatBytes(s.bytes)}/${formatBytes(s.total)}`;
  }

  private clear(): void {
    if (this.tty && this.drawn > 0) {
      this.out.write(`\x1b[${this.drawn}A\x1b[J`);
      this.drawn = 0;
    }
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.clear();
    this.out.write(this.order.map((d) => `${this.line(d)}\n`).join(''));
    this.drawn = this.order.length;
  }
}

/**
 * The root's pull for this board with progress on `out` (redrawn on a terminal, plain lines otherwise).
 * Shared by `pull` and by `run`/`create`.
 */
export async function pullWithProgress(
  root: BerthRoot,
  ref: string,
  opts: { platform?: string | undefined; tlsVerify: boolean; out: NodeJS.WriteStream; quiet: boolean; signal?: AbortSignal },
): Promise<PullResult> {
  const progress = new PullProgress(opts.out, opts.out.isTTY === true && !opts.quiet, opts.quiet);
  return root.pull(ref, { platform: opts.platform, tlsVerify: opts.tlsVerify, ...(opts.signal && { signal: opts.signal }), onEvent: progress.handle });
}
