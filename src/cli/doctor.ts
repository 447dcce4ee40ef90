import type { Command } from 'commander';
import type { DoctorReport } from '../doctor/index.js';
import { ERROR_CATEGORIES } from '../errors.js';
import { systemSearchPath } from '../host/which.js';
import type { CliContext } from './context.js';
import { printJson } from './format.js';

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

export function registerDoctor(program: Command, context: () => CliContext): void {
  program
    .command('doctor')
    .description('check the host for what berth needs and say how to fix each gap (exit 0 when nothing needed is missing)')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const ctx = context();
      const { runDoctor } = await import('../doctor/index.js'); // on use: ~40 KiB of checks only doctor runs
      const report = runDoctor({ host: ctx.host, root: ctx.root, searchPath: systemSearchPath(ctx.env.PATH), ...(ctx.profilesDir !== undefined && { profilesDir: ctx.profilesDir }) });
      if (opts.json) printJson(ctx.out, report);
      else ctx.out.write(renderReport(report));
      if (!report.ok) process.exitCode = ERROR_CATEGORIES.host.exit;
    });
}

function renderReport(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.title.length));
  const lines = r.checks.flatMap((c) => [
    `${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`,
    ...(c.fix !== undefined && c.status !== 'ok' ? [`      ${''.padEnd(width)}  fix: ${c.fix}`] : []),
  ]);
  const fails = r.checks.filter((c) => c.status === 'fail').length;
  const warns = r.checks.filter((c) => c.status === 'warn').length;
  const verdict = r.ok
    ? `berth has what it needs${warns ? ` (${warns} warning${warns > 1 ? 's' : ''})` : ''}`
    : `${fails} problem${fails > 1 ? 's' : ''} and ${warns} warning${warns === 1 ? '' : 's'}: fix the FAIL lines`;
  return `${lines.join('\n')}\n\n${verdict}\n`;
}
