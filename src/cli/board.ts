import type { Command } from 'commander';
import type { BoardInfo } from '../board/index.js';
import type { CliContext } from './context.js';
import { formatBytes, keyValues, printJson } from './format.js';

export function registerBoard(program: Command, context: () => CliContext): void {
  program
    .command('board')
    .description('detect the board and show its profile: platforms, memory budget, storage class')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const ctx = context();
      // On use: board detection validates every profile (a generated validator) that most verbs never load.
      const { detectBoard } = await import('../board/index.js');
      const board = detectBoard(ctx.host, ctx.profilesDir);
      if (opts.json) printJson(ctx.out, board);
      else ctx.out.write(renderBoard(board));
    });
}

function renderBoard(b: BoardInfo): string {
  const d = b.containerDefaults;
  const rows: Array<[string, string]> = [
    ['model', b.model],
    ['profile', `${b.profile} (${b.profileName}; matched by ${b.matchedBy})`],
    ...(b.revision ? [['revision', `${b.revision.code}: ${b.revision.type}, ${b.revision.processor}, ${formatBytes(b.revision.memoryBytes)}`] as [string, string]] : []),
    ['memory', `${formatBytes(b.memoryBytes)} (kernel sees ${formatBytes(b.memTotalBytes)})`],
    ['cpus', `${b.cpus}${b.cpuIsa ? ` (${b.cpuIsa})` : ''}`],
    ['userland', `${b.userland.arch}, ${b.userland.bits}-bit${b.kernelArch ? ` on kernel ${b.kernelArch}` : ''}`],
    ['platforms', b.platforms.join(', ')],
    ['reserved', `${formatBytes(b.reserve.osBytes)} OS + ${formatBytes(b.reserve.agentBytes)} agent`],
    ['container budget', formatBytes(b.containerBudgetBytes)],
    ['container defaults', `memory.high ${formatBytes(d.memoryHighBytes)}, memory.max ${formatBytes(d.memoryMaxBytes)}, pids ${d.pidsLimit}, cpu.weight ${d.cpuWeight}`],
    ['storage', `${b.storage.class} (${b.storage.source}${b.storage.device ? `, ${b.storage.device}` : ''})`],
    ['log budget', `${formatBytes(b.storage.logMaxBytes)} × ${b.storage.logMaxFiles} files per container, flush every ${b.storage.flushIntervalSeconds} s, ${formatBytes(b.storage.writeBudgetBytesPerDay)}/day`],
  ];
  return keyValues(rows) + b.notes.map((n) => `note: ${n}\n`).join('');
}
