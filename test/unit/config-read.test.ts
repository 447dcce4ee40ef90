import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configError, readConfig, readConfigDocument, readJsonConfigSync } from '../../src/config/read.js';
import { BerthError } from '../../src/errors.js';
import { parseDesired } from '../../src/protocol/validate.js';
import validateAgentConfig from '../../src/generated/agent-config.validate.js';
import validateFleetFile from '../../src/generated/fleet-file.validate.js';

const FLEET = { what: 'fleet file', validate: validateFleetFile };
const AGENT = { what: 'agent config', validate: validateAgentConfig };

const dirs: string[] = [];
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-config-'));
  dirs.push(d);
  return d;
};
const write = (name: string, text: string): string => {
  const f = path.join(tmp(), name);
  fs.writeFileSync(f, text);
  return f;
};
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The BerthError a read fails with (the test fails when it does not fail). */
async function failure(p: Promise<unknown> | (() => unknown)): Promise<BerthError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
    return err as BerthError;
  }
  throw new Error('expected the read to fail');
}

describe('config reader: one category and exit code per kind of failure', () => {
  it('reads YAML, and JSON by its .json extension; an empty document is {}', async () => {
    expect(await readConfig(write('f.yaml', 'devices:\n  pi-1: {groups: [lab]}\n'), FLEET)).toEqual({ devices: { 'pi-1': { groups: ['lab'] } } });
    expect(await readConfig(write('f.json', '{"groups": {"lab": ["pi-1"]}}'), FLEET)).toEqual({ groups: { lab: ['pi-1'] } });
    expect(await readConfig(write('f.yaml', '# nothing yet\n'), FLEET)).toEqual({});
    expect(readJsonConfigSync(write('a.json', '{"broker": "mqtt://h:1"}'), AGENT)).toEqual({ broker: 'mqtt://h:1' });
  });

  it('a missing or unreadable file: notFound, exit 4, naming the file and the errno', async () => {
    const missing = await failure(readConfig('/nonexistent/fleet.yaml', FLEET));
    expect([missing.category, missing.exitCode, missing.message]).toEqual(['notFound', 4, 'cannot read the fleet file /nonexistent/fleet.yaml: ENOENT']);
    const dir = tmp();
    const isDir = await failure(readConfig(dir, AGENT));
    expect([isDir.category, isDir.exitCode, isDir.message]).toEqual(['notFound', 4, `cannot read the agent config ${dir}: EISDIR`]);
    expect((await failure(() => readJsonConfigSync('/nonexistent/p.json', AGENT))).exitCode).toBe(4);
  });

  it('not valid YAML or JSON: invalid, exit 3, with line and column', async () => {
    const yaml = await failure(readConfig(write('f.yaml', 'devices:\n  pi-1: {groups: [lab]\nbroker: x\n'), FLEET));
    expect([yaml.category, yaml.exitCode]).toEqual(['invalid', 3]);
    expect(yaml.message).toMatch(/^fleet file \S+f\.yaml is not valid YAML \(line \d+, column \d+\): \S/);
    expect(yaml.message).not.toContain('\n');
    const dup = await failure(readConfig(write('f.yaml', 'broker: a\nbroker: b\n'), AGENT));
    expect(dup.message).toMatch(/is not valid YAML \(line 2, column 1\): Map keys must be unique$/);
    const json = await failure(readConfig(write('f.json', '{\n  "broker": "x",\n}\n'), AGENT));
    expect([json.category, json.exitCode]).toEqual(['invalid', 3]);
    expect(json.message).toMatch(/^agent config \S+f\.json is not valid JSON \(line 3, column 1\): unexpected "}"$/);
    expect(json.message).not.toContain('broker'); // never echoes the file (it may hold a password)
    // .json means JSON: YAML that is not JSON is refused, not guessed at.
    expect((await failure(readConfig(write('f.json', 'broker: x\n'), AGENT))).message).toMatch(/not valid JSON \(line 1, column 1\)/);
    const cut = await failure(() => readJsonConfigSync(write('p.json', '{"a": [1,\n2'), AGENT));
    expect(cut.message).toMatch(/not valid JSON \(line 2, column 2\): unexpected end of input$/);
  });

  it('a schema violation: invalid, exit 3, naming the key path and the problem', async () => {
    const cases: Array<[string, string]> = [
      ['devices:\n  pi-001: {groups: lab}\n', 'devices.pi-001.groups: must be array'],
      ['devices:\n  pi-001: {group: [lab]}\n', 'devices.pi-001.group: unknown key'],
      ['devices:\n  pi-001: 5\n', 'devices.pi-001: must be null or object'],
      ['devices:\n  "bad id": {}\n', 'devices: key "bad id" must match pattern "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"'],
      ['groups:\n  lab: [pi-1, 7]\n', 'groups.lab[1]: must be string'],
      ['brokr: mqtt://h\n', 'brokr: unknown key'],
      ['- a\n', 'top level: must be object'],
      ['registries:\n  r.example: {username: u}\n', 'registries.r.example: must have property passwordFile when property username is present'],
      ['telemetryInterval: true\n', 'telemetryInterval: must be string or number'],
    ];
    for (const [text, problem] of cases) {
      const file = write('fleet.yaml', text);
      const e = await failure(readConfig(file, FLEET));
      expect([e.category, e.exitCode, e.message], text).toEqual(['invalid', 3, `fleet file ${file} is invalid: ${problem}`]);
    }
    const agent = write('agent.yaml', 'broker: mqtt://h:1\ndeviceId: a/b\ntelemetryInterval: 0\n');
    expect((await failure(readConfig(agent, AGENT))).message).toBe(
      `agent config ${agent} is invalid: deviceId: must match pattern "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"; telemetryInterval: must be > 0`,
    );
  });

  it('every schema check speaks the same way: MQTT payloads too, with alternatives folded to the branch that applies', () => {
    const problem = (services: unknown): string => {
      try {
        parseDesired(JSON.stringify({ revision: 1, services }));
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected parseDesired to fail');
    };
    expect(problem({ web: { image: 'a', volumes_from: ['db'] } })).toBe('desired state is invalid: services.web.volumes_from: berth does not support this compose key');
    expect(problem({ web: { image: 'a', command: 5 } })).toBe('desired state is invalid: services.web.command: must be string or array');
    // environment is a mapping or a list (the list branch sits behind a $ref): the mapping's problem, not "must be array".
    expect(problem({ web: { image: 'a', environment: { A: [1] } } })).toBe('desired state is invalid: services.web.environment.A: must be string or number or boolean or null');
  });

  it('readConfigDocument (a file checked after it is transformed, as compose files are): same failures, no schema, empty is null', async () => {
    expect(await readConfigDocument(write('c.yaml', 'services:\n  web: {image: a}\n'), 'compose file')).toEqual({ services: { web: { image: 'a' } } });
    expect(await readConfigDocument(write('c.yaml', ''), 'compose file')).toBeNull();
    expect(await failure(readConfigDocument('/nonexistent/c.yaml', 'compose file'))).toMatchObject({ category: 'notFound', message: 'cannot read the compose file /nonexistent/c.yaml: ENOENT' });
    expect(await failure(readConfigDocument(write('c.yaml', 'services: [\n'), 'compose file'))).toMatchObject({ category: 'invalid', message: expect.stringMatching(/^compose file \S+ is not valid YAML \(line \d+, column \d+\)/) });
  });

  it('a rule the caller checks after the schema: invalid, exit 3, in the same words', () => {
    const e = configError(FLEET, 'fleet.yaml', 'broker is required', 'add broker: mqtts://HOST:8883');
    expect([e.category, e.exitCode, e.message, e.hint]).toEqual(['invalid', 3, 'fleet file fleet.yaml: broker is required', 'add broker: mqtts://HOST:8883']);
  });
});
