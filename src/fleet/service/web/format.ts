// How numbers and times read on the page: one place, so the table, the device page and the charts agree.

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function percent(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : `${n.toFixed(n < 10 ? 1 : 0)} %`;
}

export function celsius(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : `${n.toFixed(1)} °C`;
}

/** "12 s ago", "5 min ago", … relative to `now` (ms). */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function clock(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '–';
}
