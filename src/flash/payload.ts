import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { authEntry } from '../image/registry/credentials.js';
import type { Ext4Install } from './ext4.js';
import type { DeviceCredentials, Fleet } from './fleet.js';
import { INSTALL_PREFIX, launcherPath } from './install-layout.js';

/** The paths berth flash writes around the agent bundle (which install-layout.ts places under /opt/berth). */
export const CONFIG_DIR = '/etc/berth';
export const AGENT_CONFIG = `${CONFIG_DIR}/agent.yaml`;
export const UNIT_NAME = 'berth-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
export const UNIT_LINK = `/etc/systemd/system/multi-user.target.wants/${UNIT_NAME}`;
const CMDLINE_ARG = 'cgroup_enable=memory';
/** The agent's state root on the board (the unit's BERTH_ROOT): registry CAs and logins go where it reads them. */
export const STATE_ROOT = '/var/lib/berth';

/** The rootfs entries for a bundle directory: its tree under `dest` (a version directory, install-layout.ts), files 0755 when executable, root-owned. */
export async function bundleEntries(bundleDir: string, dest: string): Promise<Ext4Install[]> {
  const out: Ext4Install[] = [{ kind: 'dir', path: dest, perm: 0o755 }];
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir(path.join(bundleDir, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, d.name);
      const host = path.join(bundleDir, r);
      const to = path.posix.join(dest, r);
      if (d.isDirectory()) {
        out.push({ kind: 'dir', path: to, perm: 0o755 });
        await walk(r);
      } else if (d.isSymbolicLink()) {
        out.push({ kind: 'symlink', path: to, target: await fs.readlink(host) });
      } else if (d.isFile()) {
        const { mode } = await fs.stat(host);
        out.push({ kind: 'file', path: to, perm: mode & 0o111 ? 0o755 : 0o644, source: host });
      }
    }
  };
  await walk('');
  return out;
}

/**
 * The systemd unit for the board: scripts/systemd/berth-agent.service with ExecStart pointing at the
 * launcher (docs/upgrade.md). Also turns a unit of a card flashed before the launcher (ExecStart=…/bin/berth
 * agent) into the launcher's: the agent's migration (src/agent/upgrade/migrate.ts) rewrites it with this.
 */
export function agentUnit(template: string, prefix = INSTALL_PREFIX): string {
  if (!EXEC_START.test(template) || !/^KillMode=process$/m.test(template) || !template.includes(`BERTH_ROOT=${STATE_ROOT}\n`)) {
    throw new BerthError('internal', `the berth-agent.service template lost its ExecStart=… berth agent, KillMode=process or BERTH_ROOT=${STATE_ROOT} line`);
  }
  return template.replace(EXEC_START, `ExecStart=${launcherPath(prefix)} agent`);
}

/** The unit's start line, old (…/bin/berth agent) or new (…/launch/berth-launch agent). */
const EXEC_START = /^ExecStart=\S+\/berth(?:-launch)? agent/m;

/** Entries every device of a fleet shares: the unit and its enable symlink, the CA, SSH access (the CLI link is install-layout.ts's). */
export async function commonEntries(fleet: Fleet, unitTemplate: string): Promise<Ext4Install[]> {
  const out: Ext4Install[] = [
    { kind: 'file', path: UNIT_PATH, perm: 0o644, source: Buffer.from(agentUnit(unitTemplate)) },
    // What `systemctl enable` does for WantedBy=multi-user.target.
    { kind: 'symlink', path: UNIT_LINK, target: UNIT_PATH },
    { kind: 'dir', path: CONFIG_DIR, perm: 0o755 },
  ];
  if (fleet.ca !== undefined) out.push({ kind: 'file', path: `${CONFIG_DIR}/ca.crt`, perm: 0o644, source: fleet.ca });
  out.push(...(await registryEntries(fleet)));
  if (fleet.ssh !== undefined) {
    const keys = await readFleetFile(fleet, fleet.ssh.authorizedKeys, 'ssh.authorizedKeys');
    if (!/^(ssh-|ecdsa-|sk-)/m.test(keys.toString())) throw new BerthError('invalid', `${fleet.ssh.authorizedKeys} holds no SSH public key`);
    // The user's home does not exist before Raspberry Pi OS's first boot creates it (userconf): sshd reads
    // the key from a root-owned path instead.
    out.push(
      { kind: 'file', path: '/etc/ssh/sshd_config.d/berth.conf', perm: 0o644, source: Buffer.from('# berth flash: fleet SSH keys\nAuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n') },
      { kind: 'dir', path: '/etc/ssh/authorized_keys', perm: 0o755 },
      { kind: 'file', path: `/etc/ssh/authorized_keys/${fleet.ssh.user}`, perm: 0o644, source: keys },
    );
  }
  return out;
}

/**
 * Private registries: each CA as `<state root>/certs.d/<registry>/ca.crt` (Docker's layout, which the
 * registry client reads) and the pull logins as `<state root>/auth.json` (0600, `berth login`'s file).
 */
async function registryEntries(fleet: Fleet): Promise<Ext4Install[]> {
  const regs = fleet.registries ?? [];
  if (regs.length === 0) return [];
  const out: Ext4Install[] = [{ kind: 'dir', path: STATE_ROOT, perm: 0o700 }];
  const auths: Record<string, { auth: string }> = {};
  for (const r of regs) {
    if (r.ca !== undefined) {
      const pem = await readFleetFile(fleet, r.ca, `registries.${r.registry}.ca`);
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new BerthError('invalid', `${r.ca} (registries.${r.registry}.ca) holds no PEM certificate`);
      if (!out.some((e) => e.path === `${STATE_ROOT}/certs.d`)) out.push({ kind: 'dir', path: `${STATE_ROOT}/certs.d`, perm: 0o755 });
      out.push({ kind: 'dir', path: `${STATE_ROOT}/certs.d/${r.registry}`, perm: 0o755 }, { kind: 'file', path: `${STATE_ROOT}/certs.d/${r.registry}/ca.crt`, perm: 0o644, source: pem });
    }
    if (r.login !== undefined) {
      const password = (await readFleetFile(fleet, r.login.passwordFile, `registries.${r.registry}.passwordFile`)).toString('utf8').replace(/\r?\n$/, '');
      if (password === '') throw new BerthError('invalid', `${r.login.passwordFile} (registries.${r.registry}.passwordFile) is empty`);
      auths[r.registry] = authEntry({ username: r.login.username, password });
    }
  }
  if (Object.keys(auths).length > 0) out.push({ kind: 'file', path: `${STATE_ROOT}/auth.json`, perm: 0o600, source: Buffer.from(`${JSON.stringify({ auths }, null, 2)}\n`) });
  return out;
}

/** The agent config for one device, in the keys resolveAgentConfig (src/agent/config.ts) reads. JSON strings are YAML. */
export function agentYaml(fleet: Fleet, id: string, creds: DeviceCredentials): string {
  const lines: Array<[string, string]> = [['broker', fleet.broker], ['deviceId', id]];
  if (creds.kind === 'password') lines.push(['username', id], ['password', creds.password]);
  if (fleet.ca !== undefined) lines.push(['ca', `${CONFIG_DIR}/ca.crt`]);
  if (creds.kind === 'cert') lines.push(['cert', `${CONFIG_DIR}/device.crt`], ['key', `${CONFIG_DIR}/device.key`]);
  if (fleet.telemetryInterval !== undefined) lines.push(['telemetryInterval', fleet.telemetryInterval]);
  const extra: Array<[string, unknown]> = [];
  if (fleet.fleetKey !== undefined) extra.push(['fleetKey', fleet.fleetKey.base64]);
  if (fleet.allowUnsigned === true) extra.push(['allowUnsigned', true]);
  if (fleet.insecure === true) extra.push(['insecure', true]);
  if (fleet.deployPolicy !== undefined) extra.push(['deployPolicy', fleet.deployPolicy]);
  return `# Written by berth flash for device ${id}.\n${[...lines, ...extra].map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n')}\n`;
}

/** A host name for a device id: ':' and '_' (valid in ids, not in host names) become '-', at most 63 characters. */
export function hostnameFor(id: string): string {
  return id.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63).replace(/[.-]+$/, '') || 'berth';
}

/** /etc/hosts with the 127.0.1.1 line naming the new host (Debian's convention for the own host name). */
export function patchHosts(hosts: string, hostname: string): string {
  const line = `127.0.1.1\t${hostname}`;
  const lines = hosts.split('\n');
  const i = lines.findIndex((l) => /^127\.0\.1\.1\s/.test(l));
  if (i >= 0) lines[i] = line;
  else lines.splice(lines[lines.length - 1] === '' ? lines.length - 1 : lines.length, 0, line);
  return lines.join('\n').replace(/\n*$/, '\n');
}

/** Per-device entries: agent.yaml and credentials (0600), host name. */
export function deviceEntries(fleet: Fleet, id: string, creds: DeviceCredentials, hosts: string): Ext4Install[] {
  const hostname = hostnameFor(id);
  const out: Ext4Install[] = [
    { kind: 'file', path: AGENT_CONFIG, perm: 0o600, source: Buffer.from(agentYaml(fleet, id, creds)) },
    { kind: 'file', path: '/etc/hostname', perm: 0o644, source: Buffer.from(`${hostname}\n`) },
    { kind: 'file', path: '/etc/hosts', perm: 0o644, source: Buffer.from(patchHosts(hosts, hostname)) },
  ];
  if (creds.kind === 'cert') {
    out.push({ kind: 'file', path: `${CONFIG_DIR}/device.crt`, perm: 0o600, source: creds.cert }, { kind: 'file', path: `${CONFIG_DIR}/device.key`, perm: 0o600, source: creds.key });
  }
  return out;
}

/** Files of the other credential kind a re-flash must remove (a device moved from cert to password or back). */
export function staleCredentialPaths(creds: DeviceCredentials): string[] {
  return creds.kind === 'password' ? [`${CONFIG_DIR}/device.crt`, `${CONFIG_DIR}/device.key`] : [];
}

/** cmdline.txt with cgroup_enable=memory on its single line exactly once (idempotent). */
export function patchCmdline(text: string): string {
  const args = text.split('\n')[0]!.trim().split(/\s+/).filter((a) => a !== '');
  if (args.length === 0) throw new BerthError('invalid', 'cmdline.txt on the boot partition is empty');
  return `${[...args.filter((a) => a !== CMDLINE_ARG), CMDLINE_ARG].join(' ')}\n`;
}

/** userconf.txt content, checked: one "name:crypted-password" line (Raspberry Pi OS first-boot user). */
export async function userconfText(fleet: Fleet): Promise<string | undefined> {
  if (fleet.userconf === undefined) return undefined;
  const text = (await readFleetFile(fleet, fleet.userconf, 'userconf')).toString().trim();
  if (!/^[a-z_][a-z0-9_-]{0,31}:\$[0-9a-z]+\$\S+$/.test(text)) {
    throw new BerthError('invalid', `${fleet.userconf} is not a userconf line "name:crypted-password"`, { hint: 'make one: echo "pi:$(openssl passwd -6)" > userconf.txt' });
  }
  return `${text}\n`;
}

async function readFleetFile(fleet: Fleet, file: string, key: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new BerthError('notFound', `fleet file ${fleet.file}: ${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
