/**
 * `berth fleet upgrade` (docs/upgrade.md §3): each device's retained app again, at its next revision,
 * with the agent bundle added, through the same staged rollout as `fleet deploy` (executeDeploy).
 * A device is done when its report says the bundle's upgrade ended: upgraded, rolled back or failed.
 */
import { BerthError } from '../errors.js';
import { parseDigest } from '../image/digest.js';
import type { FleetPublicKey } from '../protocol/signing.js';
import type { AgentBundleRef, ReportedState } from '../protocol/types.js';
import type { FinalResult } from './rollout.js';
import type { RolloutTarget } from './deploy.js';
import type { FleetView } from './view.js';

/**
 * The app each device runs now, from its retained desired state, for republishing with the bundle.
 * Only a desired state this fleet's key signed for that device is reused: anything else on the broker
 * (unsigned, another key, another device's) would be signed anew by this command, so it is refused,
 * naming the device. A device with no desired state gets an empty app.
 */
export function currentApps(view: FleetView, devices: readonly string[], key: FleetPublicKey): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const device of devices) {
    const raw = view.devices.get(device)?.desired;
    if (raw === undefined || raw === '') {
      out.set(device, { services: {} });
      continue;
    }
    let env: Record<string, unknown>;
    try {
      env = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      env = {};
    }
    const signed = typeof env.sig === 'string' && typeof env.body === 'string' && env.kind === 'desired' && env.device === device;
    if (!signed || !key.verify(env as unknown as Parameters<FleetPublicKey['verify']>[0])) {
      throw new BerthError('auth', `${device}: its retained desired state is not one this fleet key signed for it, so fleet upgrade will not sign it again`, {
        hint: `deploy to ${device} with berth fleet deploy first (or clear its retained berth/v1/${device}/desired)`,
      });
    }
    const { revision: _old, agent: _agent, ...app } = JSON.parse(env.body as string) as Record<string, unknown>;
    out.set(device, app);
  }
  return out;
}

/** The rollout target of an upgrade: each device's app plus `agent`; done when the bundle's upgrade ended. */
export function upgradeTarget(bundle: AgentBundleRef, apps: ReadonlyMap<string, Record<string, unknown>>): RolloutTarget {
  const suffix = `-${parseDigest(bundle.digest).hex.slice(0, 12)}`;
  return {
    restartsAgent: true,
    body: (device, revision) => JSON.stringify({ revision, ...apps.get(device), agent: bundle }),
    outcome: (r: ReportedState): FinalResult | undefined => {
      if (r.status === 'failed' || r.status === 'rejected') return r.status;
      const u = r.agent.upgrade;
      // The record of this bundle decides: `upgrading` while the new version is on trial, even though it
      // already runs (reports `installed`): it may still roll back.
      if (u?.digest === bundle.digest) return u.state === 'upgrading' ? undefined : u.state === 'upgraded' ? 'applied' : u.state;
      // Already on this bundle: nothing to do, and so no upgrade record of it.
      if (r.status === 'applied' && r.agent.installed?.endsWith(suffix)) return 'applied';
      return undefined;
    },
    // A rollback (or failure) of this bundle names its cause: the trial's, or why it was not retried.
    error: (r) => (r.agent.upgrade?.digest === bundle.digest && r.agent.upgrade.state !== 'upgraded' ? r.agent.upgrade.cause : undefined),
  };
}
