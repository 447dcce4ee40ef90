export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  /** Per-superblock options (for cgroup v1: the controllers bound to the hierarchy). */
  readonly superOptions: readonly string[];
  readonly majMin: string;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/self/mountinfo (proc(5)); malformed lines are skipped, as the kernel never writes them. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    if (pre.length < 6 || post.length < 3) continue;
    out.push({
      majMin: pre[2]!,
      mountPoint: unescape(pre[4]!),
      fsType: post[0]!,
      source: unescape(post[1]!),
      superOptions: post[2]!.split(','),
    });
  }
  return out;
}
