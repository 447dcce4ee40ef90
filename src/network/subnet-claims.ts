import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { processAlive } from '../host/process.js';
import { parseCidr } from './ipv4.js';
import type { TakenSubnet } from './ipam.js';
import { parseCidr6, type TakenSubnet6 } from './ipv6.js';

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
 * and both bridges would route it. A claim is a file named after the subnet, naming its owner's store.
 * It appears whole or not at all: written to a private temporary file first, then hard-linked to its
 * name (link(2) fails if the name exists, so one root wins). An O_EXCL create followed by a write let
 * a racing root read the empty file, take it for a dead claimant's, delete it and claim the subnet
 * too (seen in CI: three agents deploying one app at once). On tmpfs (/run): a reboot clears them, and
 * each root claims its networks again when it brings them up (and at agent start). A claim whose
 * owner's store no longer exists (a deleted root) is stale and taken over. IPv6 subnets are claimed
 * the same way (the file name has the canonical compressed form, `fd00::_64`): an explicit one must not
 * be routed by two roots, and a random ULA /64 is claimed too, so even an unlikely draw of the same
 * prefix is caught.
 */
export class SubnetClaims {
  /** `dir`: the claims directory (/run/berth/network/subnets); `owner`: this root's database file. */
  constructor(readonly dir: string, readonly owner: string) {}

  private file(subnet: string): string {
    return path.join(this.dir, subnet.replace('/', '_'));
  }

  /** The claim at `file` and its inode; `claim` undefined when the file is unreadable (corrupt). */
  private read(file: string): { claim: Claim | undefined; ino: number } | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    try {
      const ino = fs.fstatSync(fd).ino;
      try {
        return { claim: JSON.parse(fs.readFileSync(fd, 'utf8')) as Claim, ino };
      } catch (err) {
        // Claims appear whole (see the class comment): a file that does not parse was damaged, not half-made.
        if (err instanceof SyntaxError) return { claim: undefined, ino };
        throw err;
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  private static isTemp(name: string): boolean {
    return name.startsWith('.');
  }

  /** The live claims of other owners, IPv4 and IPv6 alike: the subnet (as claimed) and who holds it. */
  private others(): Array<{ subnet: string; owner: string }> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    return names.flatMap((n) => {
      if (SubnetClaims.isTemp(n)) {
        // A claimant killed between writing its temporary file and removing it left it behind.
        const pid = Number(n.split('.').at(-2));
        if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) fs.rmSync(path.join(this.dir, n), { force: true });
        return [];
      }
      const c = this.read(path.join(this.dir, n))?.claim;
      if (!c || c.owner === this.owner || !fs.existsSync(c.owner)) return [];
      return [{ subnet: n.replace('_', '/'), owner: `network "${c.name}" of the berth state root ${path.dirname(c.owner)}` }];
    });
  }

  /** Other owners' live IPv4 claims, as subnets the IPAM must avoid. */
  taken(): TakenSubnet[] {
    return this.others().filter((c) => !c.subnet.includes(':')).map((c) => ({ cidr: parseCidr(c.subnet, 'claimed subnet'), owner: c.owner }));
  }

  /** Other owners' live IPv6 claims (explicit subnets and random ULA /64s alike), as prefixes a new v6 subnet must avoid. */
  taken6(): TakenSubnet6[] {
    return this.others().filter((c) => c.subnet.includes(':')).map((c) => ({ cidr: parseCidr6(c.subnet, 'claimed IPv6 subnet'), owner: c.owner }));
  }

  /**
   * Claims `subnet` for network `networkId` of this owner: true when it is ours now (newly or already),
   * false when another live owner holds it. A stale claim is replaced.
   */
  claim(subnet: string, networkId: string, name: string): boolean {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(subnet);
    const mine: Claim = { owner: this.owner, networkId, name };
    const temp = path.join(this.dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
    fs.writeFileSync(temp, JSON.stringify(mine), { flag: 'wx', mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(temp, file);
          return true;
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        const held = this.read(file);
        if (!held) continue; // released between our link and our read: race for it again
        if (held.claim && held.claim.owner === this.owner && held.claim.networkId === networkId) return true;
        if (held.claim && fs.existsSync(held.claim.owner)) return false;
        if (!this.removeStale(file, held.ino)) return false;
      }
      return false;
    } finally {
      fs.rmSync(temp, { force: true });
    }
  }

  /**
   * Removes the stale claim `file` if it is still the inode `ino` that was read as stale. Moved aside
   * first (rename is atomic, so of two roots taking it over one moves it), then checked: if a fresh
   * claim had replaced the stale one in between, it is put back and the takeover lost (false).
   */
  private removeStale(file: string, ino: number): boolean {
    const aside = path.join(this.dir, `.stale.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(file, aside);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return true; // another root moved it: race for the name again
      throw err;
    }
    try {
      if (fs.statSync(aside).ino === ino) return true;
      try {
        fs.linkSync(aside, file);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      return false;
    } finally {
      fs.rmSync(aside, { force: true });
    }
  }

  /** {@link claim} or a `conflict` naming the other owner: the network's subnet must not be routed twice. */
  assertClaim(subnet: string, networkId: string, name: string): void {
    if (this.claim(subnet, networkId, name)) return;
    const held = this.read(this.file(subnet))?.claim;
    throw new BerthError('conflict', `network ${name}'s subnet ${subnet} is in use by ${held ? `network "${held.name}" of the berth state root ${path.dirname(held.owner)}` : 'another berth state root'}`, {
      hint: `remove one of the two networks, or recreate ${name} with another --subnet`,
    });
  }

  /** Drops this owner's claim of `subnet` (after its network is removed); another's is left. */
  release(subnet: string, networkId: string): void {
    const file = this.file(subnet);
    const held = this.read(file)?.claim;
    if (held && held.owner === this.owner && held.networkId === networkId) fs.rmSync(file, { force: true });
  }
}
