/**
 * berth's MQTT protocol v1 (docs/protocol.md): the message shapes. Each has a JSON Schema under
 * ./schemas, precompiled by `npm run gen`; every message received is validated against it before any
 * field is read, and every message sent is built from these types.
 */

/** A service in compose's field names (the subset berth runs). */
export interface ServiceSpec {
  readonly image: string;
  readonly command?: string | readonly string[];
  readonly entrypoint?: string | readonly string[];
  /** `{K: V}` or `["K=V"]`; a null value passes the variable through empty. */
  readonly environment?: Readonly<Record<string, string | number | boolean | null>> | readonly string[];
  /** Bytes, or a size such as "64m". */
  readonly mem_limit?: string | number;
  readonly mem_reservation?: string | number;
  readonly memswap_limit?: string | number;
  readonly cpus?: string | number;
  readonly cpu_shares?: number;
  readonly pids_limit?: number;
  /** no | always | on-failure[:N] | unless-stopped */
  readonly restart?: string;
  /** SRC:DST[:ro] */
  readonly volumes?: readonly string[];
  /** HOST[:CONTAINER[:PERMS]] */
  readonly devices?: readonly string[];
  /** host | none | private (the default: its own network namespace) */
  readonly network_mode?: string;
  readonly read_only?: boolean;
  readonly user?: string;
  readonly working_dir?: string;
  readonly healthcheck?: HealthcheckSpec;
  readonly labels?: Readonly<Record<string, string>> | readonly string[];
  /** A duration such as "10s". */
  readonly stop_grace_period?: string;
}

export interface HealthcheckSpec {
  /** ["CMD", arg…] | ["CMD-SHELL", "cmd"] | ["NONE"] | "cmd" (shell) */
  readonly test?: string | readonly string[];
  readonly interval?: string;
  readonly timeout?: string;
  readonly retries?: number;
  readonly start_period?: string;
  readonly disable?: boolean;
}

export type UpdateStrategy = 'download-then-kill' | 'kill-then-download';

export interface UpdatePolicy {
  readonly strategy: UpdateStrategy;
  /** How long the new services must stay up (and healthy) before the old revision is removed. */
  readonly health_window: string;
  readonly on_failure: 'rollback' | 'keep';
}

/** `berth/v1/<device>/desired`, retained, fleet → device. */
export interface DesiredState {
  readonly revision: number;
  /** compose's project name; the app is called 'app' without it. */
  readonly name?: string;
  readonly services: Readonly<Record<string, ServiceSpec>>;
  readonly update?: Partial<UpdatePolicy>;
  /** Top-level `volumes:`; null is a volume with the defaults, as compose writes `data:`. */
  readonly volumes?: Readonly<Record<string, TopLevelVolume | null>>;
  /** Top-level `networks:` (bridge only). */
  readonly networks?: Readonly<Record<string, TopLevelNetwork | null>>;
  readonly configs?: Readonly<Record<string, TopLevelFile>>;
  readonly secrets?: Readonly<Record<string, TopLevelFile>>;
}

/** compose's `external: true`, or its legacy `external: {name: N}`. */
export type TopLevelExternal = boolean | { readonly name?: string };

/** Labels of a volume or network: a mapping (scalar values) or `["k=v"]`. */
export type ResourceLabels = Readonly<Record<string, string | number | boolean | null>> | readonly string[];

/** A top-level volume, in compose's field names. */
export interface TopLevelVolume {
  readonly name?: string;
  readonly external?: TopLevelExternal;
  readonly driver?: 'local';
  /** The local driver's `type`, `o`, `device` (a bind or a tmpfs). */
  readonly driver_opts?: Readonly<Record<string, string | number | boolean>>;
  readonly labels?: ResourceLabels;
}

/** A top-level network, in compose's field names. */
export interface TopLevelNetwork {
  readonly name?: string;
  readonly external?: TopLevelExternal;
  readonly driver?: 'bridge';
  readonly driver_opts?: Readonly<Record<string, string | number | boolean>>;
  readonly internal?: boolean;
  readonly attachable?: boolean;
  readonly enable_ipv6?: boolean;
  readonly labels?: ResourceLabels;
  readonly ipam?: { readonly driver?: 'default'; readonly config?: ReadonlyArray<{ readonly subnet?: string; readonly gateway?: string; readonly ip_range?: string }> };
}

/** A config or secret: the file's bytes, base64 (the reader read compose's `file:`; a device has none). */
export interface TopLevelFile {
  readonly content: string;
}

export type DeployStatus = 'applying' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded';

export interface ErrorInfo {
  /** The error category (docs/errors.md) and its numeric result code. */
  readonly code: string;
  readonly result: number;
  readonly message: string;
}

export type ServiceHealth = 'none' | 'starting' | 'healthy' | 'unhealthy';

export interface ServiceReport {
  readonly state: 'created' | 'running' | 'exited' | 'dead' | 'paused' | 'missing';
  readonly image: string;
  readonly imageDigest?: string;
  readonly restarts: number;
  readonly exitCode?: number;
  readonly oomKilled: boolean;
  readonly health: ServiceHealth;
}

/** `berth/v1/<device>/reported`, retained, device → fleet. */
export interface ReportedState {
  readonly revision: number;
  readonly status: DeployStatus;
  readonly error?: ErrorInfo;
  readonly services: Readonly<Record<string, ServiceReport>>;
  readonly agent: { readonly version: string };
  readonly board: { readonly profile: string; readonly model: string };
  readonly time: string;
}

/** `berth/v1/<device>/status`, retained; also the last will (online: false). */
export interface StatusMessage {
  readonly online: boolean;
  readonly time?: string;
  readonly agent?: { readonly version: string; readonly pid: number };
}

export type CommandAction = 'restart' | 'stop' | 'start' | 'logs' | 'prune' | 'set-telemetry-interval' | 'ping';

/** `berth/v1/<device>/cmd/<id>`, fleet → device. */
export interface CommandRequest {
  readonly action: CommandAction;
  readonly service?: string;
  /** logs: how many lines from the end (default 100). */
  readonly tail?: number;
  /** set-telemetry-interval: a duration such as "30s". */
  readonly interval?: string;
}

/** `berth/v1/<device>/cmd/<id>/result`. */
export interface CommandResult {
  readonly id: string;
  readonly status: 'ok' | 'error' | 'rejected';
  /** 200 for ok; otherwise the error category's result code (docs/errors.md). */
  readonly result: number;
  readonly reason?: string;
  readonly data?: unknown;
  readonly time: string;
}
