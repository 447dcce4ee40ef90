/**
 * Every failure berth reports carries a category. The category decides the CLI exit code and the
 * result code in MQTT command results, so a caller (a shell script, the fleet service) can react to the
 * kind of failure without parsing messages. The table is documented in docs/errors.md; keep them in step.
 */
export const ERROR_CATEGORIES = {
  /** Wrong command-line usage: unknown flag, missing argument. */
  usage: { exit: 2, result: 400 },
  /** Input from a user, a file or the network is malformed or fails validation. */
  invalid: { exit: 3, result: 400 },
  /** A named thing (image, container, profile, file) does not exist, or a config file cannot be read (src/config/read.ts). */
  notFound: { exit: 4, result: 404 },
  /** The request conflicts with current state (name in use, operation already running). */
  conflict: { exit: 5, result: 409 },
  /** The host lacks something berth needs, or host data (/proc, /sys) is unreadable or malformed. */
  host: { exit: 6, result: 412 },
  /** A remote peer (registry, broker) failed or could not be reached. */
  network: { exit: 7, result: 502 },
  /** Credentials are missing, wrong, or do not grant the access asked for. */
  auth: { exit: 11, result: 401 },
  /** Disk, memory or another resource ran out. */
  resource: { exit: 8, result: 507 },
  /** A container runtime or a container itself failed. */
  runtime: { exit: 9, result: 500 },
  /** The operation was cancelled (signal, AbortController, superseded deploy). */
  cancelled: { exit: 10, result: 499 },
  /** A bug in berth: anything not classified above. */
  internal: { exit: 70, result: 500 },
} as const;

export type ErrorCategory = keyof typeof ERROR_CATEGORIES;

export class BerthError extends Error {
  readonly category: ErrorCategory;
  /** Optional hint telling the user how to fix the problem, printed on its own line. */
  readonly hint: string | undefined;

  constructor(category: ErrorCategory, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.category = category;
    this.hint = options?.hint;
  }

  get exitCode(): number {
    return ERROR_CATEGORIES[this.category].exit;
  }

  get resultCode(): number {
    return ERROR_CATEGORIES[this.category].result;
  }
}

/** Wraps any thrown value as a BerthError; foreign errors become `internal` unless a category is given. */
export function toBerthError(err: unknown, category: ErrorCategory = 'internal'): BerthError {
  if (err instanceof BerthError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BerthError(category, message, { cause: err });
}

export function exitCodeFor(err: unknown): number {
  return toBerthError(err).exitCode;
}

/** True for Node system errors with the given code (ENOENT, EACCES …). */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
