import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InstallLayout } from '../../src/agent/upgrade/layout.js';
import { FlatMigration, isFlatInstall, removeFlatLeftovers } from '../../src/agent/upgrade/migrate.js';

const UNIT = '[Service]\nExecStart=/usr/local/bin/berth agent\nKillMode=process\nEnvironment=BERTH_ROOT=/var/lib/berth\n';

/** A flat install as berth flash made it before the launcher: bundle files in the prefix, the unit and the CLI link at them. */
function flatCard(): { prefix: string; unitFile: string; cliLink: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-flat-'));
  const prefix = path.join(dir, 'opt-berth');
  for (const d of ['bin', 'dist/bundle', 'scripts', 'node_modules/x']) fs.mkdirSync(path.join(prefix, d), { recursive: true });
  fs.writeFileSync(path.join(prefix, 'bin', 'berth'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'dist', 'bundle', 'berth.mjs'), '// agent\n');
  fs.writeFileSync(path.join(prefix, 'scripts', 'berth-launch'), '#!/bin/bash\n# launcher\n', { mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'berth-bundle.json'), '{"arch":"arm64","node":"22","berth":"0.1.0"}');
  fs.symlinkSync('../bin/berth', path.join(prefix, 'node_modules', 'x', 'link'));
  const unitFile = path.join(dir, 'berth-agent.service');
  fs.writeFileSync(unitFile, UNIT.replace('/usr/local/bin/berth', `${prefix}/bin/berth`));
  const cliLink = path.join(dir, 'berth');
  fs.symlinkSync(path.join(prefix, 'bin', 'berth'), cliLink);
  return { prefix, unitFile, cliLink };
}

describe('a flat install converts to the launcher layout (src/agent/upgrade/migrate.ts)', () => {
  it('is recognised only with the bundle at the prefix, no current link, and the unit starting its bin/berth', () => {
    const c = flatCard();
    expect(isFlatInstall(c.prefix, c.unitFile)).toBe(true);
    expect(isFlatInstall(c.prefix, path.join(c.prefix, 'no-such.service'))).toBe(false);
    expect(isFlatInstall(path.join(c.prefix, 'bin'), c.unitFile)).toBe(false);
    fs.writeFileSync(c.unitFile, UNIT);
    expect(isFlatInstall(c.prefix, c.unitFile)).toBe(false);
  });

  it('hard-links the bundle into versions/<v>-flat, installs the launcher, points current, the CLI and the unit at them; again is a no-op', async () => {
    const c = flatCard();
    const layout = new InstallLayout(c.prefix);
    let reloads = 0;
    const events: string[] = [];
    const m = new FlatMigration({ layout, version: '0.1.0', unitFile: c.unitFile, cliLink: c.cliLink, reload: async () => void reloads++, log: (e) => events.push(e) });
    await m.run();
    const v = path.join(c.prefix, 'versions', '0.1.0-flat');
    expect(fs.statSync(path.join(v, 'bin', 'berth')).ino).toBe(fs.statSync(path.join(c.prefix, 'bin', 'berth')).ino);
    expect(fs.readlinkSync(path.join(v, 'node_modules', 'x', 'link'))).toBe('../bin/berth');
    expect(fs.readFileSync(path.join(c.prefix, 'launch', 'berth-launch'), 'utf8')).toBe('#!/bin/bash\n# launcher\n');
    expect(fs.statSync(path.join(c.prefix, 'launch', 'berth-launch')).mode & 0o777).toBe(0o755);
    expect(layout.linked('current')).toBe('0.1.0-flat');
    expect(fs.readlinkSync(c.cliLink)).toBe(path.join(c.prefix, 'current', 'bin', 'berth'));
    expect(fs.readFileSync(c.unitFile, 'utf8')).toBe(UNIT.replace('/usr/local/bin/berth', `${c.prefix}/launch/berth-launch`));
    expect(reloads).toBe(1);
    expect(isFlatInstall(c.prefix, c.unitFile)).toBe(false);
    await m.run();
    expect(layout.installed()).toEqual(['0.1.0-flat']);
    expect(reloads).toBe(2);
    expect(events).toEqual(['upgrade-migrated', 'upgrade-migrated']);

    // After the next version confirms: only the layout is left at the top; the flat version stays as previous.
    expect(removeFlatLeftovers(layout, '0.2.0-abcdefabcdef')).toEqual([]);
    expect(removeFlatLeftovers(layout, '0.1.0-flat').sort()).toEqual(['berth-bundle.json', 'bin', 'dist', 'node_modules', 'scripts']);
    expect(fs.readdirSync(c.prefix).sort()).toEqual(['current', 'launch', 'upgrade', 'versions']);
    expect(fs.readFileSync(path.join(v, 'dist', 'bundle', 'berth.mjs'), 'utf8')).toBe('// agent\n');
  });

  it('a bundle without the launcher cannot convert: refused naming the prefix, nothing changed', async () => {
    const c = flatCard();
    fs.rmSync(path.join(c.prefix, 'scripts'), { recursive: true });
    const layout = new InstallLayout(c.prefix);
    const m = new FlatMigration({ layout, version: '0.1.0', unitFile: c.unitFile, cliLink: c.cliLink, reload: async () => undefined, log: () => undefined });
    await expect(m.run()).rejects.toMatchObject({ category: 'host', message: expect.stringMatching(/holds a berth bundle without scripts\/berth-launch/) });
    expect(fs.existsSync(path.join(c.prefix, 'versions'))).toBe(false);
    expect(isFlatInstall(c.prefix, c.unitFile)).toBe(true);
  });
});
