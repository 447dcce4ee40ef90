import { BerthError } from '../errors.js';
import { parseIPv4 } from './ipv4.js';
import type { PortMapping } from './types.js';

/**
 * A bridge network's driver options (`network create -o K=V`, compose `driver_opts`): netavark's own
 * (`mtu`, `isolate`) and docker's bridge driver keys where netavark 1.4 can honour them. This module
 * says which are accepted and what they mean for berth; netavark.ts turns them into netavark's options.
 *
 * Refused, naming the key: `enable_icc: false` (netavark 1.4 has no rule to stop traffic between the
 * containers of one bridge) and `enable_ip_masquerade: false` (it masquerades every non-internal
 * network's outbound traffic; `internal` is the nearest, with no outbound at all). Their `true` is
 * docker's default and is accepted.
 */

export const BRIDGE_NAME = 'com.docker.network.bridge.name';
const MTU = 'com.docker.network.driver.mtu';
const ICC = 'com.docker.network.bridge.enable_icc';
const MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';
const HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';

/** Every key berth takes, for the refusal of the others. */
const KNOWN = ['mtu', MTU, 'isolate', BRIDGE_NAME, ICC, MASQUERADE, HOST_BINDING];

/** A Linux interface name (IFNAMSIZ: 15 characters; no '/', ':' or whitespace). */
const IFNAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

/**
 * Refuses (`invalid`) an option berth cannot honour or a bad value; `at(key)` names the flag or compose
 * key in the message (`--opt mtu`, `networks.lan.driver_opts.mtu`).
 */
export function validateBridgeOptions(options: Readonly<Record<string, string>>, at: (key: string) => string): void {
  for (const [k, v] of Object.entries(options)) {
    const bad = (why: string, hint?: string): BerthError => new BerthError('invalid', `${at(k)}=${v}: ${why}`, hint === undefined ? {} : { hint });
    switch (k) {
      case 'mtu':
      case MTU:
        if (!/^\d+$/.test(v) || Number(v) < 68 || Number(v) > 65535) throw bad('the MTU must be a number of 68…65535');
        break;
      case 'isolate':
        if (v !== 'true' && v !== 'false') throw bad('use true or false');
        break;
      case BRIDGE_NAME:
        if (!IFNAME.test(v)) throw bad('not an interface name (1–15 characters of [a-zA-Z0-9_.-], starting with a letter or digit)');
        break;
      case ICC:
      case MASQUERADE:
        if (v === 'true') break;
        if (v !== 'false') throw bad('use true or false');
        throw k === ICC
          ? bad('berth cannot stop traffic between the containers of one bridge (netavark has no such rule)', 'put containers that must not talk on different networks (networks are isolated from each other)')
          : bad('berth masquerades the outbound traffic of every network that has any (netavark has no switch for it)', 'use an internal network (internal: true, --internal) for no outbound traffic at all');
      case HOST_BINDING:
        parseIPv4(v, at(k));
        break;
      default:
        throw new BerthError('invalid', `${at(k)}: unknown bridge option`, { hint: `berth knows ${KNOWN.join(', ')}` });
    }
  }
}

/**
 * docker's host_binding_ipv4: ports without a host address are published on the container's first
 * network's binding address (the one its default route goes through, as docker's gateway endpoint).
 * Resolved at create, so `berth port` shows the address the port really has. `0.0.0.0` is docker's
 * default (every address), left as no address.
 */
export function withHostBinding(ports: readonly PortMapping[], options: Readonly<Record<string, string>>): PortMapping[] {
  const v = options[HOST_BINDING];
  return ports.map((p) => (p.hostIp === '' && v !== undefined && v !== '0.0.0.0' ? { ...p, hostIp: v } : p));
}
