import fs from 'node:fs';
import path from 'node:path';
import { DirWatch } from '../host/dir-watch.js';
import { LOG_FILE } from './monitor.js';

export interface LogRecord {
  readonly time: string;
  readonly stream: 'stdout' | 'stderr';
  /** False for a piece of a longer line (CRI tag P): no newline follows it. */
  readonly complete: boolean;
  readonly text: string;
}

/**
 * Parses one CRI log line: `<RFC3339Nano> <stream> <P|F> <text>`. Malformed lines are skipped. The text
 * may hold a carriage return (a terminal's lines end in \r\n): `s`, so that `.` takes it too.
 */
export function parseCriLine(line: string): LogRecord | undefined {
  const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as 'stdout' | 'stderr', complete: m[3] === 'F', text: m[4]! };
}

/** The log files of a container, oldest first (`container.log.N` … `container.log.1`, `container.log`). */
export function logFiles(stateDir: string): string[] {
  const rotated = fs
    .readdirSync(stateDir)
    .map((n) => new RegExp(`^${LOG_FILE.replace('.', '\\.')}\\.(\\d+)$`).exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => path.join(stateDir, m[0]));
  const live = path.join(stateDir, LOG_FILE);
  return fs.existsSync(live) ? [...rotated, live] : rotated;
}

/** All records in order, or the last `tail` complete lines' worth. */
export function readLogs(stateDir: string, tail?: number): LogRecord[] {
  const records: LogRecord[] = [];
  for (const f of logFiles(stateDir)) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const r = parseCriLine(line);
      if (r) records.push(r);
    }
  }
  return tail === undefined ? records : tailRecords(records, tail);
}

/** The last `tail` complete lines' worth of records (a long line is several P records and one F). */
export function tailRecords(records: readonly LogRecord[], tail: number): LogRecord[] {
  let lines = 0;
  let i = records.length;
  while (i > 0 && lines < tail) {
    i--;
    if (records[i]!.complete) lines++;
    while (i > 0 && !records[i - 1]!.complete) i--;
  }
  return tail === 0 ? [] : records.slice(i);
}

/** A record's time in ms since the epoch (its RFC3339Nano stamp cut to milliseconds). */
export function recordTime(r: LogRecord): number {
  return Date.parse(r.time.replace(/(\.\d{3})\d+/, '$1'));
}

/** docker logs --since/--until: the records written in [since, until] (ms since the epoch; absent = open). */
export function withinTime(r: LogRecord, window: { readonly since?: number; readonly until?: number }): boolean {
  const t = recordTime(r);
  return (window.since === undefined || t >= window.since) && (window.until === undefined || t <= window.until);
}

/**
 * Follows the live log from its current end (or its start): yields new records until `done()` says the container has
 * exited and the file has been read to its end, or `signal` is aborted. Survives rotation (the live file is replaced).
 * Wakes on changes in the state dir (log writes, the monitor's exit record), with a slow poll as a safety net.
 */
export async function* followLogs(stateDir: string, done: () => boolean, signal?: AbortSignal, fromStart = false): AsyncGenerator<LogRecord> {
  const live = path.join(stateDir, LOG_FILE);
  const watch = new DirWatch(stateDir);
  try {
    yield* follow(live, watch, done, signal, fromStart);
  } finally {
    watch.close();
  }
}

async function* follow(live: string, watch: DirWatch, done: () => boolean, signal: AbortSignal | undefined, fromStart: boolean): AsyncGenerator<LogRecord> {
  let ino = -1;
  let offset = 0;
  let partial = '';
  let exiting = false;
  try {
    const st = fs.statSync(live);
    ino = st.ino;
    offset = fromStart ? 0 : st.size;
  } catch {
    // not written yet
  }
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(live);
    } catch {
      st = undefined;
    }
    if (st && (st.ino !== ino || st.size < offset)) {
      ino = st.ino;
      offset = 0;
      partial = '';
    }
    if (st && st.size > offset) {
      const fd = fs.openSync(live, 'r');
      const buf = Buffer.alloc(st.size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = st.size;
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        const r = parseCriLine(l);
        if (r) yield r;
      }
      continue;
    }
    // Once the container is gone, read once more: the last lines may have landed after the size check.
    if (exiting || signal?.aborted) return;
    if (done()) {
      exiting = true;
      continue;
    }
    await watch.wait(signal);
  }
}
