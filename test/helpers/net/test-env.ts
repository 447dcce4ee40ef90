/**
 * The variables the integration project's global setup (isolation-setup.ts) sets for berth's
 * networking: spawned bin/berth processes inherit them with process.env; an in-process BerthRoot,
 * whose env is given explicitly, must be given them too, or its containers' lookups could leave.
 */
export function netTestEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['BERTH_NETWORK_RUN_DIR', 'BERTH_RESOLV_CONF']) {
    const v = process.env[k];
    if (v) out[k] = v;
  }
  return out;
}
