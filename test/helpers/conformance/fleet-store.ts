import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FleetStore, NewRollout } from '../../../src/fleet/service/store.js';

/**
 * The FleetStore contract (src/fleet/service/store.ts), run against each implementation: SQLite in
 * test/unit/fleet-store.test.ts, PostgreSQL (a real server) in test/integration/fleet-store.test.ts.
 * `open` must give a fresh, empty, migrated store each time; `reopen` the same database again.
 */
export function fleetStoreConformance(
  name: string, open: () => Promise<{ store: FleetStore; reopen: () => Promise<FleetStore> }>,
  /** Several connections in one process (PostgreSQL); SQLite's single writer races within one store. */
  multiConnection: boolean,
): void {
  describe(`FleetStore conformance: ${name}`, () => {
    let store: FleetStore;
    let reopen: () => Promise<FleetStore>;
    const extra: FleetStore[] = [];
    beforeEach(async () => {
      ({ store, reopen } = await open());
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
    });

    const rollout = (id: string, createdAt = 1000): NewRollout => ({
      id, name: `app-${id}`, state: 'running', createdAt, createdBy: 'tok', policy: { minDevices: 1, timeoutMs: 60_000 },
      images: { web: 'reg/web@sha256:' + 'a'.repeat(64) }, body: '{"services":{}}',
    });

    it('upserts devices field by field, and last_seen only moves forward', async () => {
      await store.upsertDevice('d1', { online: true, lastSeen: 5000, status: { online: true } });
      await store.upsertDevice('d1', { reported: { revision: 3, status: 'applied' }, lastSeen: 1000 });
      await store.upsertDevice('d0', {});
      const d1 = await store.getDevice('d1');
      expect(d1).toMatchObject({ id: 'd1', online: true, lastSeen: 5000, status: { online: true }, reported: { revision: 3, status: 'applied' } });
      await store.upsertDevice('d1', { online: false, phase: 'pull', desiredRevision: 4, lastSeen: 6000 });
      expect(await store.getDevice('d1')).toMatchObject({ online: false, phase: 'pull', desiredRevision: 4, lastSeen: 6000 });
      await store.upsertDevice('d1', { phase: null });
      expect((await store.getDevice('d1'))!.phase).toBeUndefined();
      expect((await store.listDevices()).map((d) => d.id)).toEqual(['d0', 'd1']);
      expect(await store.deviceIds()).toEqual(['d0', 'd1']);
      expect((await store.devicesByIds(['d1', 'nope', 'd0'])).map((d) => [d.id, d.online])).toEqual([['d0', false], ['d1', false]]);
      expect(await store.devicesByIds([])).toEqual([]);
      expect(await store.getDevice('nope')).toBeUndefined();
    });

    it('keeps raw telemetry and per-minute averages, and prunes by age and by budget', async () => {
      const t0 = 10 * 60_000;
      await store.addTelemetry([
        { device: 'd1', time: t0, cpuPercent: 10, memoryUsedBytes: 100, temperatureC: 40 },
        { device: 'd1', time: t0 + 30_000, cpuPercent: 30, memoryUsedBytes: 300 },
        { device: 'd1', time: t0 + 60_000, cpuPercent: 50 },
        { device: 'd2', time: t0, cpuPercent: 99 },
      ]);
      const raw = await store.telemetry('d1', t0, t0 + 60_000, 'raw');
      expect(raw.map((p) => p.cpuPercent)).toEqual([10, 30, 50]);
      expect(raw[1]).toEqual({ time: t0 + 30_000, cpuPercent: 30, memoryUsedBytes: 300 });
      const minutes = await store.telemetry('d1', t0, t0 + 120_000, 'minute');
      expect(minutes).toEqual([
        { time: t0, cpuPercent: 20, memoryUsedBytes: 200, temperatureC: 40 },
        { time: t0 + 60_000, cpuPercent: 50 },
      ]);
      const before = await store.telemetryBytes();
      expect(before).toBeGreaterThan(0);
      // Raw kept for 45 s at now = t0 + 60 s: the first sample goes, its minute stays.
      expect(await store.pruneTelemetry({ rawMs: 45_000, minuteMs: 3600_000, budgetBytes: 1e9 }, t0 + 60_000)).toBe(2);
      expect((await store.telemetry('d1', 0, t0 * 2, 'raw')).length).toBe(2);
      expect((await store.telemetry('d1', 0, t0 * 2, 'minute')).length).toBe(2);
      // A budget of nothing: every raw sample and then every minute goes.
      await store.pruneTelemetry({ rawMs: 3600_000, minuteMs: 3600_000, budgetBytes: 0 }, t0 + 60_000);
      expect(await store.telemetryBytes()).toBe(0);
    });

    it('appends events with increasing seq and pages them newest first', async () => {
      const a = await store.addEvent({ time: 1, device: 'd1', type: 'online', data: {} });
      const b = await store.addEvent({ time: 2, device: 'd2', type: 'deploy-failed', data: { revision: 3 } });
      const c = await store.addEvent({ time: 3, rollout: 'r1', type: 'rollout-created', data: {} });
      expect(a.seq < b.seq && b.seq < c.seq).toBe(true);
      expect((await store.events({ limit: 10 })).map((e) => e.type)).toEqual(['rollout-created', 'deploy-failed', 'online']);
      expect(await store.events({ device: 'd2', limit: 10 })).toEqual([{ seq: b.seq, time: 2, device: 'd2', type: 'deploy-failed', data: { revision: 3 } }]);
      expect((await store.events({ before: c.seq, limit: 1 })).map((e) => e.seq)).toEqual([b.seq]);
    });

    it('stores a rollout with its devices, counts outcomes and lists newest first', async () => {
      const r = await store.createRollout(rollout('r1'), [{ device: 'b', revision: 2 }, { device: 'a', revision: 7 }]);
      expect(r).toMatchObject({ id: 'r1', state: 'running', counts: { total: 2, pending: 2, sent: 0 }, images: rollout('r1').images, policy: { minDevices: 1, timeoutMs: 60_000 } });
      expect(r.finishedAt).toBeUndefined();
      await store.createRollout(rollout('r2', 2000), []);
      expect((await store.listRollouts(10)).map((x) => x.id)).toEqual(['r2', 'r1']);
      expect((await store.rolloutDevices('r1')).map((d) => [d.device, d.seq, d.revision, d.outcome])).toEqual([['b', 0, 2, 'pending'], ['a', 1, 7, 'pending']]);
      expect(await store.unfinishedRollouts()).toEqual(['r1', 'r2']);
      await expect(store.createRollout(rollout('r1'), [])).rejects.toThrow();
    });

    it('pages a rollout\'s devices in sending order, with or without an outcome', async () => {
      await store.createRollout(rollout('r1'), ['e', 'd', 'c', 'b', 'a'].map((device) => ({ device, revision: 1 })));
      await store.stepRollout('r1', 'i', 1, 5, () => ({ send: ['d', 'b'] }));
      const ids = (rows: Array<{ device: string }>) => rows.map((d) => d.device);
      expect(ids(await store.rolloutDevices('r1', undefined, { after: -1, limit: 2 }))).toEqual(['e', 'd']);
      expect(ids(await store.rolloutDevices('r1', undefined, { after: 1, limit: 2 }))).toEqual(['c', 'b']);
      expect(ids(await store.rolloutDevices('r1', undefined, { after: 3, limit: 2 }))).toEqual(['a']);
      expect(await store.rolloutDevices('r1', undefined, { after: 4, limit: 2 })).toEqual([]);
      expect(ids(await store.rolloutDevices('r1', 'sent', { after: 1, limit: 5 }))).toEqual(['b']);
      expect(ids(await store.rolloutDevices('r1', 'pending', { after: -1, limit: 2 }))).toEqual(['e', 'c']);
      // Only the rows asked for, in sending order; devices not in the rollout are left out.
      expect((await store.rolloutDevicesOf('r1', ['a', 'zz', 'd'])).map((d) => [d.device, d.outcome])).toEqual([['d', 'sent'], ['a', 'pending']]);
      expect(await store.rolloutDevicesOf('r1', [])).toEqual([]);
      expect((await store.rolloutDevicesOf('r1', Array.from({ length: 1200 }, (_, i) => (i === 1100 ? 'b' : `x${i}`)))).map((d) => d.device)).toEqual(['b']);
    });

    it('steps a rollout atomically: sends only pending devices once, finishes, changes state', async () => {
      await store.createRollout(rollout('r1'), ['a', 'b', 'c'].map((device) => ({ device, revision: 1 })));
      const first = await store.stepRollout('r1', 'i1', 100, 2, (r, view) => {
        expect(r.state).toBe('running');
        expect(r.sentCount).toBe(0);
        expect(view).toEqual({ next: ['a', 'b'], expired: [] });
        return { send: ['a', 'b'] };
      });
      expect(first).toEqual([{ device: 'a', revision: 1 }, { device: 'b', revision: 1 }]);
      // A stale decision naming a sent device sends nothing twice.
      expect(await store.stepRollout('r1', 'i2', 200, 5, (r, view) => {
        expect(r).toMatchObject({ sentCount: 2, startedAt: 100 });
        expect(view).toEqual({ next: ['c'], expired: [], oldestInFlightAt: 100 });
        return { send: ['a', 'c'] };
      })).toEqual([{ device: 'c', revision: 1 }]);
      expect(await store.getRollout('r1')).toMatchObject({ sentCount: 3, startedAt: 100 });
      const rows = await store.rolloutDevices('r1');
      expect(rows.map((d) => [d.device, d.outcome, d.sentAt, d.sentBy])).toEqual([['a', 'sent', 100, 'i1'], ['b', 'sent', 100, 'i1'], ['c', 'sent', 200, 'i2']]);
      expect(await store.sentTo('a')).toEqual([{ rollout: 'r1', revision: 1 }]);
      // The same for several devices in one read; a device with no sent row is left out.
      expect(await store.sentToEach(['a', 'zz', 'c'])).toEqual(new Map([['a', [{ rollout: 'r1', revision: 1 }]], ['c', [{ rollout: 'r1', revision: 1 }]]]));
      expect(await store.settleDevice('r1', 'a', 'applied', 300)).toBe(true);
      expect(await store.settleDevice('r1', 'a', 'failed', 301)).toBe(false);
      await store.setDevicePhase('r1', 'b', 'pull');
      // Sent at 100 with a 60 s timeout: expired at 60 100, not before.
      await store.stepRollout('r1', 'i1', 60_099, 5, (_r, view) => ((expect(view.expired).toEqual([])), {}));
      await store.stepRollout('r1', 'i1', 60_100, 5, (_r, view) => ((expect(view).toEqual({ next: [], expired: ['b'], oldestInFlightAt: 100 })), {}));
      await store.stepRollout('r1', 'i1', 400, 5, () => ({ finish: [{ device: 'b', outcome: 'timed-out' }, { device: 'c', outcome: 'failed', error: 'boom' }], state: { state: 'completed', finished: true } }));
      const done = await store.getRollout('r1');
      expect(done).toMatchObject({ state: 'completed', finishedAt: 400, counts: { total: 3, applied: 1, 'timed-out': 1, failed: 1, sent: 0 } });
      expect((await store.rolloutDevices('r1')).find((d) => d.device === 'b')).toMatchObject({ phase: 'pull', outcome: 'timed-out', finishedAt: 400 });
      expect((await store.rolloutDevices('r1')).find((d) => d.device === 'c')).toMatchObject({ error: 'boom' });
      expect(await store.unfinishedRollouts()).toEqual([]);
      // A finished rollout is never stepped again.
      let called = false;
      expect(await store.stepRollout('r1', 'i1', 500, 5, () => ((called = true), {}))).toEqual([]);
      expect(called).toBe(false);
    });

    it('supersedes a device\'s pending rows in older rollouts, and reports open revisions', async () => {
      await store.createRollout(rollout('r1'), [{ device: 'a', revision: 3 }, { device: 'b', revision: 4 }]);
      await store.stepRollout('r1', 'i', 1, 5, () => ({ send: ['b'] }));
      expect(await store.openRevisions()).toEqual(new Map([['a', 3], ['b', 4]]));
      await store.createRollout(rollout('r2', 2000), [{ device: 'a', revision: 5 }, { device: 'b', revision: 5 }]);
      expect((await store.rolloutDevices('r1')).map((d) => [d.device, d.outcome])).toEqual([['a', 'superseded'], ['b', 'sent']]);
      expect(await store.openRevisions()).toEqual(new Map([['a', 5], ['b', 5]]));
    });

    it('creates and steps a rollout of more devices than one statement takes, atomically for readers', async () => {
      // 1,234 devices: over two of the writes' 500-row chunks (sql-rollout-writes.ts), boundaries included.
      const ids = Array.from({ length: 1234 }, (_, i) => `d${String(1233 - i).padStart(4, '0')}`); // sent in reverse id order
      await store.createRollout(rollout('r0'), [{ device: ids[0]!, revision: 9 }, { device: ids[499]!, revision: 9 }, { device: ids[500]!, revision: 9 }, { device: ids[1233]!, revision: 9 }]);
      await store.stepRollout('r0', 'i', 1, 5, () => ({ send: [ids[500]!] }));
      // Readers see no half rollout while it is created (and are answered meanwhile, not after it).
      let creating = true;
      const seen: Array<number | undefined> = [];
      let answeredMeanwhile = 0;
      const reads = (async () => {
        while (creating) {
          await new Promise((r) => setImmediate(r));
          seen.push((await store.getRollout('r1'))?.counts.total);
          if (creating) answeredMeanwhile++;
        }
      })();
      const created = await store.createRollout(rollout('r1', 2000), ids.map((device) => ({ device, revision: 2 })));
      creating = false;
      await reads;
      expect(seen.filter((n) => n !== undefined && n !== 1234)).toEqual([]);
      expect(answeredMeanwhile).toBeGreaterThan(0);
      expect(created.counts).toMatchObject({ total: 1234, pending: 1234 });
      const rows = await store.rolloutDevices('r1');
      expect(rows.map((d) => d.device)).toEqual(ids);
      expect(rows.map((d) => d.seq)).toEqual(ids.map((_, i) => i));
      // Raised above what r0 holds, across chunks; the rest as planned.
      expect(rows.filter((d) => d.revision !== 2).map((d) => [d.device, d.revision])).toEqual([ids[0], ids[499], ids[500], ids[1233]].map((d) => [d, 10]));
      expect((await store.rolloutDevices('r0')).map((d) => [d.device, d.outcome])).toEqual([[ids[0], 'superseded'], [ids[499], 'superseded'], [ids[500], 'sent'], [ids[1233], 'superseded']]);
      // One step sends them all in order, a stale name among them sent by nobody; then finishes of several kinds.
      const sent = await store.stepRollout('r1', 'i', 3000, 2000, (_r, view) => ({ send: ['nope', ...view.next] }));
      expect(sent.map((s) => s.device)).toEqual(ids);
      expect(sent[500]).toEqual({ device: ids[500], revision: 10 });
      expect(await store.stepRollout('r1', 'j', 3001, 2000, () => ({ send: ids }))).toEqual([]);
      const finish = ids.map((device, i) => (i % 3 === 0 ? { device, outcome: 'timed-out' as const } : { device, outcome: 'failed' as const, error: i % 3 === 1 ? 'one' : 'two' }));
      await store.stepRollout('r1', 'i', 4000, 5, () => ({ finish }));
      const done = await store.rolloutDevices('r1');
      expect(done.map((d) => [d.outcome, d.error, d.finishedAt])).toEqual(finish.map((f) => [f.outcome, f.error, 4000]));
      expect(await store.getRollout('r1')).toMatchObject({ sentCount: 1234, counts: { 'timed-out': 412, failed: 822, sent: 0 } });
    });

    it('transitions state by compare-and-set; cancelling turns pending devices into not-sent', async () => {
      await store.createRollout(rollout('r1'), ['a', 'b'].map((device) => ({ device, revision: 1 })));
      await store.stepRollout('r1', 'i', 1, 5, () => ({ send: ['a'] }));
      expect((await store.transitionRollout('r1', ['running'], 'paused', 2))!.state).toBe('paused');
      expect(await store.transitionRollout('r1', ['running'], 'paused', 3)).toBeUndefined();
      expect(await store.transitionRollout('nope', ['running'], 'paused', 3)).toBeUndefined();
      const c = await store.transitionRollout('r1', ['running', 'paused'], 'cancelled', 4);
      expect(c).toMatchObject({ state: 'cancelled', counts: { sent: 1, 'not-sent': 1, pending: 0 } });
    });

    it('restarts the pace at a resume, counting what was sent by then', async () => {
      await store.createRollout(rollout('r1'), ['a', 'b', 'c'].map((device) => ({ device, revision: 1 })));
      await store.stepRollout('r1', 'i', 100, 5, () => ({ send: ['a'] }));
      expect((await store.getRollout('r1'))!.pace).toBeUndefined();
      await store.transitionRollout('r1', ['running'], 'paused', 200);
      expect(await store.transitionRollout('r1', ['paused'], 'running', 600_000)).toMatchObject({ state: 'running', pace: { at: 600_000, sent: 1 }, sentCount: 1, startedAt: 100 });
    });

    it('gives two rollouts created at once for one device distinct revisions: the one committed last supersedes', async () => {
      await store.createRollout(rollout('r0'), [{ device: 'a', revision: 3 }]);
      await store.stepRollout('r0', 'i', 1, 5, () => ({ send: ['a'] }));
      const other = multiConnection ? await reopen() : store;
      if (other !== store) extra.push(other);
      // Both planned from the same view of the device (revision 3 sent, not yet echoed): revision 4 each.
      await Promise.all([store.createRollout(rollout('r1', 2000), [{ device: 'a', revision: 4 }]), other.createRollout(rollout('r2', 2000), [{ device: 'a', revision: 4 }])]);
      const rows = [...await store.rolloutDevices('r1'), ...await store.rolloutDevices('r2')].sort((x, y) => x.revision - y.revision);
      expect(rows.map((d) => [d.revision, d.outcome])).toEqual([[4, 'superseded'], [5, 'pending']]);
      // A plan below what a rollout holds (a stale view) is raised above it too.
      await store.createRollout(rollout('r3', 3000), [{ device: 'a', revision: 2 }]);
      expect((await store.rolloutDevices('r3'))[0]).toMatchObject({ revision: 6, outcome: 'pending' });
      expect((await store.rolloutDevices('r0', 'sent')).map((d) => d.device)).toEqual(['a']);
      expect(await store.rolloutDevices('r0', 'pending')).toEqual([]);
    });

    it.runIf(multiConnection)('wakes the other processes on the database when a rollout changes, never itself', async () => {
      const other = await reopen();
      extra.push(other);
      const heard: string[] = [];
      const firstHeard: string[] = [];
      let arrived!: () => void;
      const more = new Promise<void>((resolve) => (arrived = resolve));
      const unwatch = await other.watchRollouts((id) => {
        heard.push(id);
        if (heard.length === 3) arrived();
      });
      const unwatchFirst = await store.watchRollouts((id) => firstHeard.push(id));
      await store.createRollout(rollout('r1'), [{ device: 'a', revision: 1 }]);
      await store.stepRollout('r1', 'i', 1, 5, () => ({ send: ['a'] }));
      expect(await store.settleDevice('r1', 'a', 'applied', 2)).toBe(true);
      await Promise.race([more, new Promise((_, reject) => setTimeout(() => reject(new Error(`heard only ${heard.join(', ')}`)), 5000))]);
      expect(heard).toEqual(['r1', 'r1', 'r1']);
      expect(firstHeard).toEqual([]);
      // A step that changes nothing tells nobody.
      await store.stepRollout('r1', 'i', 3, 5, () => ({}));
      await other.transitionRollout('r1', ['running'], 'paused', 4);
      await new Promise((r) => setTimeout(r, 300));
      expect(heard.length).toBe(3);
      expect(firstHeard).toEqual(['r1']);
      await unwatch();
      await unwatchFirst();
    });

    it('batches device writes in one transaction: its own reads see them, others only after the commit, none after a throw', async () => {
      await store.createRollout(rollout('r1'), [{ device: 'a', revision: 1 }, { device: 'b', revision: 1 }]);
      await store.stepRollout('r1', 'i', 1, 5, (_r, view) => ({ send: view.next }));
      let inside: Array<{ rollout: string; revision: number }> = [];
      let outsideMid: unknown;
      const seq = await store.batch(async (w) => {
        await w.upsertDevice('a', { online: true, reported: { revision: 1, status: 'applied' }, lastSeen: 10 });
        expect(await w.settleDevice('r1', 'a', 'applied', 10)).toBe(true);
        inside = await w.sentTo('a');
        await w.setDevicePhase('r1', 'b', 'pull');
        await w.addTelemetry([{ device: 'a', time: 60_000, cpuPercent: 5 }]);
        const e = await w.addEvent({ time: 10, device: 'a', type: 'online', data: {} });
        // Another reader does not see the batch before its commit (PostgreSQL: another connection; SQLite: the reader).
        outsideMid = await store.getDevice('a');
        return e.seq;
      });
      expect(inside).toEqual([]); // the batch's own settle is visible to its own read
      expect(outsideMid).toBeUndefined();
      expect(await store.getDevice('a')).toMatchObject({ online: true, reported: { revision: 1, status: 'applied' } });
      expect((await store.rolloutDevices('r1')).map((d) => [d.device, d.outcome, d.phase])).toEqual([['a', 'applied', undefined], ['b', 'sent', 'pull']]);
      expect((await store.events({ limit: 5 }))[0]).toMatchObject({ seq, type: 'online', device: 'a' });
      expect(await store.telemetry('a', 0, 120_000, 'raw')).toHaveLength(1);
      // A batch that throws leaves nothing: not the device, not the settle before the throw.
      await expect(store.batch(async (w) => {
        await w.upsertDevice('c', { online: true });
        expect(await w.settleDevice('r1', 'b', 'failed', 20)).toBe(true);
        throw new Error('boom');
      })).rejects.toThrow('boom');
      expect(await store.getDevice('c')).toBeUndefined();
      expect((await store.rolloutDevices('r1', 'sent')).map((d) => d.device)).toEqual(['b']);
    });

    it('keeps tokens by hash and sessions until they expire', async () => {
      await store.addToken({ id: 't1', name: 'ci', scope: 'deploy', hash: 'h1', createdAt: 5 });
      expect(await store.tokenByHash('h1')).toEqual({ id: 't1', name: 'ci', scope: 'deploy', hash: 'h1', createdAt: 5 });
      expect(await store.tokenByHash('h2')).toBeUndefined();
      await store.addSession({ hash: 's1', tokenId: 't1', scope: 'deploy', csrf: 'c', expiresAt: 1000 });
      expect(await store.sessionByHash('s1', 999)).toMatchObject({ tokenId: 't1', csrf: 'c' });
      expect(await store.sessionByHash('s1', 1000)).toBeUndefined();
      await store.deleteSession('s1');
      expect(await store.sessionByHash('s1', 0)).toBeUndefined();
    });

    it('lists tokens oldest first with their last use; deleting one ends its sessions', async () => {
      await store.addToken({ id: 't2', name: 'late', scope: 'admin', hash: 'h2', createdAt: 9 });
      await store.addToken({ id: 't1', name: 'ci', scope: 'read', hash: 'h1', createdAt: 5 });
      await store.touchToken('t1', 42);
      expect(await store.listTokens()).toEqual([
        { id: 't1', name: 'ci', scope: 'read', hash: 'h1', createdAt: 5, lastUsedAt: 42 },
        { id: 't2', name: 'late', scope: 'admin', hash: 'h2', createdAt: 9 },
      ]);
      await store.addSession({ hash: 's1', tokenId: 't1', scope: 'read', csrf: 'c', expiresAt: 1000 });
      await store.addSession({ hash: 's2', tokenId: 't2', scope: 'admin', csrf: 'c', expiresAt: 1000 });
      expect(await store.deleteToken('t1')).toBe(true);
      expect(await store.deleteToken('t1')).toBe(false);
      expect(await store.tokenByHash('h1')).toBeUndefined();
      expect(await store.sessionByHash('s1', 0)).toBeUndefined();
      expect(await store.sessionByHash('s2', 0)).toMatchObject({ tokenId: 't2' });
      expect((await store.listTokens()).map((t) => t.id)).toEqual(['t2']);
    });

    it('persists across a reopen, and a second connection sees the first one\'s writes', async () => {
      await store.upsertDevice('d1', { online: true });
      await store.createRollout(rollout('r1'), [{ device: 'd1', revision: 1 }]);
      const other = await reopen();
      extra.push(other);
      expect((await other.getDevice('d1'))!.online).toBe(true);
      expect((await other.getRollout('r1'))!.counts.total).toBe(1);
    });

    /** A rollout's counts on its row against a count over its device rows. */
    const countsMatchRows = async (s: FleetStore, id: string): Promise<void> => {
      const counted: Record<string, number> = {};
      for (const d of await s.rolloutDevices(id)) counted[d.outcome] = (counted[d.outcome] ?? 0) + 1;
      const { counts, sentCount } = (await s.getRollout(id))!;
      for (const [outcome, n] of Object.entries(counts)) if (outcome !== 'total') expect([id, outcome, n]).toEqual([id, outcome, counted[outcome] ?? 0]);
      expect(counts.total).toBe(Object.values(counted).reduce((a, b) => a + b, 0));
      expect(sentCount).toBe((await s.rolloutDevices(id)).filter((d) => d.sentAt !== undefined).length);
    };

    it('keeps each rollout\'s counts equal to a count over its rows through every kind of write', async () => {
      const devices = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ device: `d${from + i}`, revision: 1 }));
      await store.createRollout(rollout('r1'), devices(30));
      await store.stepRollout('r1', 'i', 2000, 12, (_r, v) => ({ send: v.next }));
      expect((await store.getRollout('r1'))!).toMatchObject({ counts: { pending: 18, sent: 12, total: 30 }, sentCount: 12, startedAt: 2000 });
      // Settles in one statement: the compare-and-set on `sent` counts only those still sent.
      const settled = await store.settleDevices([
        { rollout: 'r1', device: 'd0', outcome: 'applied', at: 3000 }, { rollout: 'r1', device: 'd1', outcome: 'failed', at: 3000, error: 'boom' },
        { rollout: 'r1', device: 'd20', outcome: 'applied', at: 3000 }, // pending: not settled
      ]);
      expect(settled.map((x) => x.device).sort()).toEqual(['d0', 'd1']);
      await store.setDevicePhases([{ rollout: 'r1', device: 'd2', phase: 'pull' }]);
      await store.stepRollout('r1', 'i', 4000, 5, () => ({ finish: [{ device: 'd3', outcome: 'timed-out' }] }));
      await countsMatchRows(store, 'r1');
      // A second rollout supersedes r1's pending rows for the devices it takes.
      await store.createRollout(rollout('r2', 5000), devices(10, 25));
      await countsMatchRows(store, 'r1');
      await countsMatchRows(store, 'r2');
      expect((await store.getRollout('r1'))!.counts.superseded).toBe(5);
      await store.transitionRollout('r1', ['running'], 'cancelled', 6000);
      await countsMatchRows(store, 'r1');
      expect((await store.getRollout('r1'))!.counts).toMatchObject({ pending: 0, 'not-sent': 13, applied: 1, failed: 1, 'timed-out': 1, sent: 9 });
      await countsMatchRows(await reopen().then((s) => (extra.push(s), s)), 'r2');
    });

    it('writes many devices, events, phases and telemetry samples in one call each', async () => {
      await store.upsertDevices([
        { id: 'a', patch: { online: true, lastSeen: 10 } }, { id: 'b', patch: { phase: 'pull' } }, { id: 'c', patch: { online: false, lastSeen: 5 } },
      ]);
      await store.upsertDevices([{ id: 'a', patch: { lastSeen: 3, desiredRevision: 4 } }]);
      expect(await store.getDevice('a')).toMatchObject({ online: true, lastSeen: 10, desiredRevision: 4 });
      expect(await store.getDevice('b')).toMatchObject({ phase: 'pull' });
      expect(await store.getDevice('c')).toMatchObject({ online: false, lastSeen: 5 });
      const events = await store.addEvents([1, 2, 3].map((t) => ({ time: t, device: 'a', type: `e${t}`, data: { t } })));
      expect(events.map((e) => e.type)).toEqual(['e1', 'e2', 'e3']);
      expect(events[0]!.seq < events[1]!.seq && events[1]!.seq < events[2]!.seq).toBe(true);
      expect((await store.events({ limit: 3 })).map((e) => [e.seq, e.type])).toEqual([...events].reverse().map((e) => [e.seq, e.type]));
      // Two samples of one device in one minute, in one call: summed into one minute row.
      const t0 = 60_000;
      await store.addTelemetry([{ device: 'a', time: t0, cpuPercent: 10 }, { device: 'a', time: t0 + 1000, cpuPercent: 30 }, { device: 'b', time: t0, cpuPercent: 5 }]);
      expect(await store.telemetry('a', t0, t0 + 59_000, 'minute')).toEqual([{ time: t0, cpuPercent: 20 }]);
      expect((await store.telemetry('a', t0, t0 + 59_000, 'raw')).length).toBe(2);
    });

    it('serializes concurrent steps: racing instances never send one device twice', async () => {
      await store.createRollout(rollout('r1'), Array.from({ length: 40 }, (_, i) => ({ device: `d${i}`, revision: 1 })));
      const other = multiConnection ? await reopen() : store;
      if (other !== store) extra.push(other);
      // Each instance sends the first 5 devices it sees pending, as a rollout step does.
      const step = (s: FleetStore, who: string) => s.stepRollout('r1', who, 1, 5, (_r, view) => ({ send: view.next }));
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => step(i % 2 === 0 ? store : other, `i${i % 2}`)));
      const sent = results.flat().map((s) => s.device);
      expect(sent.length).toBe(40);
      expect(new Set(sent).size).toBe(40);
    });
  });
}
