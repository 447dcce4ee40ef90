import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../src/agent/config.js';

const dirs: string[] = [];
const file = (name: string, text: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agentcfg-'));
  dirs.push(d);
  fs.writeFileSync(path.join(d, name), text);
  return path.join(d, name);
};
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('agent configuration', () => {
  it('no broker anywhere: local-only', async () => {
    expect(await resolveAgentConfig({ config: file('a.yaml', 'telemetryInterval: 10s\n') }, {})).toEqual({ telemetryInterval: '10s' });
  });

  it('flags win over the file, the file over the environment; the user name defaults to the device id', async () => {
    const cfg = file('a.yaml', 'broker: mqtts://broker.example:8883\ndeviceId: pi-1\npassword: from-file\nca: /etc/berth/ca.crt\n');
    const r = await resolveAgentConfig({ config: cfg, deviceId: 'pi-2' }, { BERTH_BROKER: 'mqtt://ignored:1883', BERTH_MQTT_PASSWORD: 'env' });
    expect(r.broker).toEqual({ url: 'mqtts://broker.example:8883', deviceId: 'pi-2', username: 'pi-2', password: 'from-file', caFile: '/etc/berth/ca.crt' });
    const env = await resolveAgentConfig({ config: file('b.yaml', '{}') }, { BERTH_BROKER: 'mqtt://127.0.0.1:1883', BERTH_DEVICE_ID: 'pi-3' });
    expect(env.broker).toEqual({ url: 'mqtt://127.0.0.1:1883', deviceId: 'pi-3' });
  });

  it('checks the file against its schema: a bare number of seconds is a telemetry interval, a misspelt key an error naming it', async () => {
    expect(await resolveAgentConfig({ config: file('n.yaml', 'telemetryInterval: 20\n') }, {})).toEqual({ telemetryInterval: '20' });
    await expect(resolveAgentConfig({ config: file('m.yaml', 'brokr: mqtt://h:1\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/is invalid: brokr: unknown key$/) });
    await expect(resolveAgentConfig({ config: file('o.yaml', 'deviceId: a/b\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/deviceId: must match pattern/) });
  });

  it('supervisorApi.allowPower turns on the supervisor API\'s reboot and shutdown; unknown keys under it are refused', async () => {
    expect(await resolveAgentConfig({ config: file('p.yaml', 'supervisorApi: { allowPower: true }\n') }, {})).toEqual({ allowPower: true });
    expect(await resolveAgentConfig({ config: file('q.yaml', 'supervisorApi: { allowPower: false }\n') }, {})).toEqual({});
    await expect(resolveAgentConfig({ config: file('r.yaml', 'supervisorApi: { allowReboot: true }\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/supervisorApi\.allowReboot: unknown key$/) });
  });

  it('upgrade.trialWindow: a duration or seconds, 10 s to 1 h, in whole seconds; anything else is refused naming the key and the file', async () => {
    expect(await resolveAgentConfig({ config: file('t.yaml', 'upgrade: { trialWindow: 5m }\n') }, {})).toEqual({ trialWindowS: 300 });
    expect(await resolveAgentConfig({ config: file('u.yaml', 'upgrade: { trialWindow: 45 }\n'), broker: 'mqtt://127.0.0.1:1', deviceId: 'd' }, {})).toMatchObject({ trialWindowS: 45 });
    expect(await resolveAgentConfig({ config: file('v.yaml', 'upgrade: { trialWindow: 10500ms }\n') }, {})).toEqual({ trialWindowS: 11 });
    expect(await resolveAgentConfig({ config: file('w.yaml', 'upgrade: {}\n') }, {})).toEqual({});
    await expect(resolveAgentConfig({ config: file('x.yaml', 'upgrade: { trialWindow: 5s }\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/upgrade\.trialWindow in .*x\.yaml: "5s" is outside 10s to 1h/) });
    await expect(resolveAgentConfig({ config: file('y.yaml', 'upgrade: { trialWindow: soon }\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/upgrade\.trialWindow in .*y\.yaml: "soon" is not a duration/) });
    await expect(resolveAgentConfig({ config: file('z.yaml', 'upgrade: { trialWindow: 7200 }\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/upgrade\.trialWindow: must be <= 3600/) });
    await expect(resolveAgentConfig({ config: file('zz.yaml', 'upgrade: { window: 60 }\n') }, {})).rejects.toMatchObject({ category: 'invalid', message: expect.stringMatching(/upgrade\.window: unknown key$/) });
  });

  it('reads the password from a file, trimmed', async () => {
    const r = await resolveAgentConfig({ config: file('c.yaml', '{}'), broker: 'mqtt://127.0.0.1:1883', deviceId: 'd', passwordFile: file('pw', 's3cret\n') }, {});
    expect(r.broker).toMatchObject({ username: 'd', password: 's3cret' });
  });

  it('clear errors: no device id, a bad device id, bad YAML, a list instead of a mapping, a missing file', async () => {
    await expect(resolveAgentConfig({ config: file('d.yaml', '{}'), broker: 'mqtt://127.0.0.1:1883' }, {})).rejects.toThrow(/needs --device-id/);
    await expect(resolveAgentConfig({ config: file('e.yaml', '{}'), broker: 'mqtt://h:1', deviceId: 'a/b' }, {})).rejects.toThrow(/invalid device id "a\/b"/);
    await expect(resolveAgentConfig({ config: file('f.yaml', 'broker: [unclosed\n') }, {})).rejects.toThrow(expect.objectContaining({ category: 'invalid' }));
    await expect(resolveAgentConfig({ config: file('g.yaml', '- a\n- b\n') }, {})).rejects.toThrow(/agent config .*g\.yaml is invalid: top level: must be object$/);
    await expect(resolveAgentConfig({ config: '/nonexistent/agent.yaml' }, {})).rejects.toThrow(expect.objectContaining({ category: 'notFound', message: expect.stringMatching(/cannot read the agent config \/nonexistent\/agent.yaml: ENOENT/) }));
    await expect(resolveAgentConfig({ config: file('h.yaml', '{}'), broker: 'mqtt://h:1', deviceId: 'd', passwordFile: '/nonexistent/pw' }, {})).rejects.toThrow(/cannot read --password-file/);
  });
});
