import { PassThrough, Readable } from 'node:stream';
import { checkExecSpec, EXIT_NOT_FOUND, type ExecProcess, type ExecSpec } from '../../src/runtime/exec.js';

/** The commands the double's containers have (busybox's, with the meaning tests give them). */
const COMMANDS = new Set(['sh', '/bin/sh', 'cat', 'echo', 'true', 'false']);

/**
 * EngineDouble's exec: a tiny interpreter with busybox semantics for what the conformance cases run:
 * `cat` (stdin to stdout), `echo ARGS` and `sh -c SCRIPT` whose statements are `echo TEXT` (with `$VAR`
 * from the environment, and `>&2` to write stderr) and `exit N`. Any other command is not found (127).
 */
export function execInDouble(containerEnv: readonly string[], spec: ExecSpec, split: (script: string) => string[]): ExecProcess {
  checkExecSpec(spec);
  const env = new Map([...containerEnv, ...(spec.env ?? [])].map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const argv0 = spec.argv[0]!;
  if (!COMMANDS.has(argv0)) {
    return { stdin: null, stdout: Readable.from([]), stderr: Readable.from([`exec: "${argv0}": executable file not found in $PATH\n`]), exit: Promise.resolve(EXIT_NOT_FOUND), kill: () => undefined };
  }
  const stdin = spec.stdin && !spec.detach ? new PassThrough() : null;
  const run = async (): Promise<number> => {
    if (argv0 === 'cat') {
      if (stdin) for await (const chunk of stdin) stdout.write(chunk);
      return 0;
    }
    if (argv0 === 'true' || argv0 === 'false') return argv0 === 'true' ? 0 : 1;
    const script = argv0 === 'echo' ? `echo ${spec.argv.slice(1).join(' ')}` : spec.argv[2] ?? '';
    for (const st of split(script)) {
      const exit = /^exit\s+(\d+)$/.exec(st);
      if (exit) return Number(exit[1]);
      const echo = /^echo\s+(.*?)(\s*>&2)?$/.exec(st);
      if (!echo) continue;
      const text = echo[1]!.replace(/^(['"])(.*)\1$/, '$2').replace(/\$(\w+)/g, (_, k: string) => env.get(k) ?? '');
      (echo[2] ? stderr : stdout).write(`${text}\n`);
    }
    return 0;
  };
  const exit = run().finally(() => {
    stdout.end();
    stderr.end();
  });
  if (spec.detach) return { stdin: null, stdout: null, stderr: null, exit: exit.then(() => 0), kill: () => undefined };
  return { stdin, stdout, stderr, exit, kill: () => undefined };
}
