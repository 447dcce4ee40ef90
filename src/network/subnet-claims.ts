import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { parseCidr } from './ipv4.js';
import type { TakenSubnet } from './ipam.js';

/** One claim file's content. */
interface Claim {
  /** The state store that owns the network (its database file). */
  readonly owner: string;
  readonly networkId: string;
  readonly name: string;
}

/**
 * Host-wide subnet claims, shared by every berth state root on the host (several agents, test runs,
 * `berth --root`). The host-route check of the IPAM sees another root's subnet only once its bridge is
 * up; two roots creating networks before either has a container would otherwise pick the same subnet
 * and both bridges would route it. A claim is a file named after the subnet, made with O_EXCL (so one
 * root wins), naming its owner's store. On tmpfs (/run): a reboot clears them, and each root claims its
 * networks again when it brings them up (and at agent start). A claim whose owner's store no longer
 * exists (a deleted root) is stale and taken over.
 */
export class SubnetClaims {
  /** `dir`: the claims directory (/run/berth/network/subnets); `owner`: this root's database file. */
  constructor(readonly dir: string, readonly owner: string) {}

  private file(subnet: string): string {
    return path.join(this.dir, subnet.replace('/', '_'));
  }

  private read(file: string): Claim | undefined {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as Claim;
    } catch (err) {
      // Absent, or half-written by a claimant that died between create and write: no claim.
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** The live claims of other owners, as subnets the IPAM must avoid. */
  taken(): TakenSubnet[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    return names.flatMap((n) => {
      const c = this.read(path.join(this.dir, n));
      if (!c || c.owner === this.owner || !fs.existsSync(c.owner)) return [];
      return [{ cidr: parseCidr(n.replace('_', '/'), 'claimed subnet'), owner: `network "${c.name}" of the berth state root ${path.dirname(c.owner)}` }];
    });
  }

  /**
   * Claims `subnet` for network `networkId` of this owner: true when it is ours now (newly or already),
   * false when another live owner holds it. A stale claim is replaced.
   */
  claim(subnet: string, networkId: string, name: string): boolean {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(subnet);
    const mine: Claim = { owner: this.owner, networkId, name };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx', mode: 0o600 });
        return true;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const held = this.read(file);
      if (held && held.owner === this.owner && held.networkId === networkId) return true;
      if (held && fs.existsSync(held.owner)) return false;
      // Stale (its root is gone) or unreadable: remove it and race for it again.
      fs.rmSync(file, { force: true });
    }
    return false;
  }

  /** {@link claim} or a `conflict` naming the other owner: the network's subnet must not be routed twice. */
  assertClaim(subnet: string, networkId: string, name: string): void {
    if (this.claim(subnet, networkId, name)) return;
    const held = this.read(this.file(subnet));
    throw new BerthError('conflict', `network ${name}'s subnet ${subnet} is in use by ${held ? `network "${held.name}" of the berth state root ${path.dirname(held.owner)}` : 'another berth state root'}`, {
      hint: `remove one of the two networks, or recreate ${name} with another --subnet`,
    });
  }

  /** Drops this owner's claim of `subnet` (after its network is removed); another's is left. */
  release(subnet: string, networkId: string): void {
    const file = this.file(subnet);
    const held = this.read(file);
    if (held && held.owner === this.owner && held.networkId === networkId) fs.rmSync(file, { force: true });
  }
}
