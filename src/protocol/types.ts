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
  /** Short `SRC:DST[:OPTS]` or the long syntax. */
  readonly volumes?: readonly (string | VolumeMountSpec)[];
  /** Short `HOST[:CONTAINER[:PERMS]]` or the long syntax. */
  readonly devices?: readonly (string | { readonly source: string; readonly target?: string; readonly permissions?: string })[];
  /** host | none | bridge | service:S | container:NAME | private (berth's former name for none) */
  readonly network_mode?: string;
  readonly read_only?: boolean;
  readonly user?: string;
  readonly working_dir?: string;
  readonly healthcheck?: HealthcheckSpec;
  /** Values may be numbers, booleans or null in files (`io.balena.features.dbus: 1`); stringified as compose does. */
  readonly labels?: Readonly<Record<string, string | number | boolean | null>> | readonly string[];
  /** A duration such as "10s". */
  readonly stop_grace_period?: string;
  /** A name `berth ps/logs/stop` accept and a DNS alias; the container itself stays `<service>.<hash>`. */
  readonly container_name?: string;
  readonly hostname?: string;
  readonly domainname?: string;
  readonly privileged?: boolean;
  readonly cap_add?: readonly string[];
  readonly cap_drop?: readonly string[];
  readonly security_opt?: readonly string[];
  readonly group_add?: readonly (string | number)[];
  readonly device_cgroup_rules?: readonly string[];
  /** Service names, or by name the long form. */
  readonly depends_on?: readonly string[] | Readonly<Record<string, DependsOnSpec>>;
  readonly tmpfs?: string | readonly string[];
  readonly shm_size?: string | number;
  readonly sysctls?: Readonly<Record<string, string | number | boolean | null>> | readonly string[];
  /** `nofile: 1024` or `nofile: {soft, hard}`. */
  readonly ulimits?: Readonly<Record<string, number | { readonly soft: number; readonly hard: number }>>;
  readonly init?: boolean;
  readonly tty?: boolean;
  readonly stdin_open?: boolean;
  readonly stop_signal?: string;
  readonly logging?: { readonly driver?: string; readonly options?: Readonly<Record<string, string | number | null>> };
  readonly expose?: readonly (string | number)[];
  /** `host` only. */
  readonly pid?: string;
  /** host | private | shareable | service:S | container:NAME */
  readonly ipc?: string;
  readonly oom_score_adj?: number;
  readonly mem_swappiness?: number;
  readonly cpuset?: string;
  readonly cpu_quota?: string | number;
  readonly cpu_period?: string | number;
  /** The v3 form of the resource limits; replicas/mode are refused unless they mean one container. */
  readonly deploy?: DeploySpec;
  readonly blkio_config?: { readonly weight?: number };
  /** `os/arch[/variant]`; checked against the board when pulling. */
  readonly platform?: string;
  /** always, never, missing, if_not_present, daily, weekly, every_<duration>; `build` passes the schema so compose/service-pull.ts can refuse it with the hint. */
  readonly pull_policy?: string;
  /** `["NAME:IP"]` (or `NAME=IP`) or `{NAME: IP}`. */
  readonly extra_hosts?: readonly string[] | Readonly<Record<string, string>>;
  readonly dns?: string | readonly string[];
  readonly dns_search?: string | readonly string[];
  readonly dns_opt?: readonly string[];
  /** Short `[IP:][HOST[-END]:]CONTAINER[-END][/proto]` (or a bare port number) or the long syntax. */
  readonly ports?: readonly (string | number | PortSpec)[];
  /** Network keys, or by key the per-network settings (null = defaults). */
  readonly networks?: readonly string[] | Readonly<Record<string, ServiceNetworkSpec | null>>;
  readonly configs?: readonly (string | FileRefSpec)[];
  readonly secrets?: readonly (string | FileRefSpec)[];
}

/** A long-syntax entry of a service's `volumes:`. */
export interface VolumeMountSpec {
  readonly type: 'bind' | 'volume' | 'tmpfs';
  readonly source?: string;
  readonly target: string;
  readonly read_only?: boolean;
  readonly consistency?: string;
  readonly bind?: { readonly create_host_path?: boolean; readonly propagation?: string; readonly selinux?: 'z' | 'Z' };
  readonly volume?: { readonly nocopy?: boolean };
  readonly tmpfs?: { readonly size?: string | number; readonly mode?: string | number };
}

export interface DependsOnSpec {
  readonly condition?: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  readonly restart?: boolean;
  readonly required?: boolean;
}

export interface DeploySpec {
  readonly mode?: string;
  readonly replicas?: number;
  readonly resources?: {
    readonly limits?: { readonly cpus?: string | number; readonly memory?: string | number; readonly pids?: number };
    readonly reservations?: { readonly memory?: string | number };
  };
}

/** A long-syntax entry of a service's `ports:`. */
export interface PortSpec {
  readonly target: number;
  readonly published?: string | number;
  readonly host_ip?: string;
  readonly protocol?: 'tcp' | 'udp';
  readonly mode?: 'host' | 'ingress';
  readonly name?: string;
  readonly app_protocol?: string;
}

export interface ServiceNetworkSpec {
  readonly aliases?: readonly string[];
  readonly ipv4_address?: string;
  /** Only on a network with enable_ipv6. */
  readonly ipv6_address?: string;
  /** Higher first: the order the container joins its networks in. */
  readonly priority?: number;
}

/** A long-syntax entry of a service's `configs:`/`secrets:`. */
export interface FileRefSpec {
  readonly source: string;
  readonly target?: string;
  readonly uid?: string | number;
  readonly gid?: string | number;
  readonly mode?: string | number;
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
  /** `berth fleet upgrade`: the agent bundle to run (docs/upgrade.md); not part of the app. */
  readonly agent?: AgentBundleRef;
}

export interface AgentBundleRef {
  /** `registry/repository[:tag]` of the bundle index. */
  readonly ref: string;
  /** The index digest: the only thing the device trusts about it. */
  readonly digest: string;
}

/** The agent in `reported` (docs/upgrade.md §3). */
export interface AgentReport {
  readonly version: string;
  /** Version directory it runs from, and the one before (installs with the launcher only). */
  readonly installed?: string;
  readonly previous?: string;
  /** The last self-update's outcome. */
  readonly upgrade?: { readonly state: 'upgrading' | 'upgraded' | 'rolled-back' | 'failed'; readonly to?: string; readonly digest?: string; readonly cause?: string; readonly time?: string };
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
  readonly agent: AgentReport;
  readonly board: { readonly profile: string; readonly model: string };
  readonly time: string;
}

/** `berth/v1/<device>/status`, retained; also the last will (online: false). */
export interface StatusMessage {
  readonly online: boolean;
  readonly time?: string;
  readonly agent?: { readonly version: string; readonly pid: number };
}

export type CommandAction = 'restart' | 'stop' | 'start' | 'logs' | 'logs-stop' | 'prune' | 'set-telemetry-interval' | 'ping' | 'rotate-key';

/** `berth/v1/<device>/cmd/<id>`, fleet → device. */
export interface CommandRequest {
  readonly action: CommandAction;
  readonly service?: string;
  /** logs: how many lines from the end (default 100). */
  readonly tail?: number;
  /**
   * logs: follow for this many seconds (1–3600): new lines go to `cmd/<id>/logs` as LogFollowMessage
   * until then, a `logs-stop`, or the container's exit. Added after v1's first agents, which reject it.
   */
  readonly follow?: number;
  /** logs-stop: the id of the `logs` command whose follow ends. */
  readonly session?: string;
  /** set-telemetry-interval: a duration such as "30s". */
  readonly interval?: string;
  /**
   * rotate-key: the fleet's new public key (base64 of the raw 32 bytes). Signed with the key the device
   * trusts now; once it answers ok, it trusts only the new one (docs/protocol.md#key-rotation).
   */
  readonly key?: string;
}

/** `berth/v1/<device>/cmd/<id>/logs`, device → fleet: a followed service's new log lines; the last message has `end`. */
export interface LogFollowMessage {
  readonly lines: ReadonlyArray<{ readonly time: string; readonly stream: 'stdout' | 'stderr'; readonly text: string }>;
  /** Set on the session's last message: why it ended. */
  readonly end?: 'expired' | 'stopped' | 'exited' | 'agent-stopping';
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
