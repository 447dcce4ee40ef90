// The composition root: the one place that opens the state store and builds berth's parts over it.
// Every front end (the CLI's commands, `berth agent`, tests, benchmarks) gets the image service, the
// container engine, the networks, the deployment records, the spool and the deployer from a BerthRoot, so each is
// built one way, over one store, and nothing below reaches the database through another part.
//
// Start-up cost: the CLI imports this module per command, and the parts' modules are imported here
// only when first asked for (`berth images` never loads the engine, `berth ps` never the reconciler).
// The image service is the exception: every command that opens a root uses it (the engine is built on
// it), so it comes with this module rather than in a second round of loading.
import { boardCacheFile, detectBoardCached, type BoardInfo } from './board/index.js';
import { BerthError } from './errors.js';
import type { DeploymentRecords } from './agent/deployments.js';
import type { DeployEvent, Deployer, DeployerOptions } from './agent/reconcile/deployer.js';
import type { Spool } from './agent/spool.js';
import { systemSearchPath } from './host/which.js';
import type { HostPaths } from './host/paths.js';
import type { BoardPullOptions } from './image/pull/for-board.js';
import type { PullResult } from './image/pull/pull.js';
import type { NetworkService } from './network/service.js';
import { ImageService } from './image/service.js';
import type { SnapshotMode } from './image/snapshot/snapshotter.js';
import type { DesiredState, ErrorInfo } from './protocol/types.js';
import type { ContainerEngine } from './runtime/engine-api.js';
import type { LocalEngine } from './runtime/engine.js';
import type { Terminals } from './runtime/terminal.js';
import type { Volumes } from './runtime/volumes.js';
import type { RunOptions } from './runtime/options.js';
import { ContainerRecords } from './store/containers.js';
import { DeploymentRecords as StoredDeployments } from './store/deployments.js';
import { ImageRecords } from './store/images.js';
import { StateStore } from './store/store.js';
import { TrustRecords } from './store/trust.js';
import { SupervisorKeyRecords } from './store/supervisor-keys.js';

export interface RootOptions {
  /** The state directory (`--root`): berth.db, content, snapshots, containers. */
  readonly root: string;
  readonly host: HostPaths;
  /** PATH and BERTH_RUNTIME choose the OCI runtime; the Docker config and NODE_EXTRA_CA_CERTS reach registries. */
  readonly env: NodeJS.ProcessEnv;
  /** Board profiles to choose from instead of the built-in ones. */
  readonly profilesDir?: string | undefined;
  /** berth's version: the board detection cache is keyed on it. */
  readonly version: string;
  /** This board instead of the cached detection (tests and benchmarks that detect it themselves). */
  readonly board?: BoardInfo;
  /** How layers are unpacked, instead of the kernel's best (tests of both modes). */
  readonly snapshotMode?: SnapshotMode;
}

/**
 * One state root's parts, each built once, on first use. The store opens on first use too, so a command
 * that fails before it needs the database (an unknown board, a bad flag) leaves none behind.
 *
 * Contract: one BerthRoot per process and state root (the Spool's byte count and the engine's parent
 * cgroup assume one owner); `close` closes the store, after which no part may be used.
 */
export class BerthRoot {
  private opened: StateStore | undefined;
  private closed = false;
  private boardOnce: BoardInfo | undefined;
  private imagesOnce: ImageService | undefined;
  private engineOnce: Promise<LocalEngine> | undefined;
  private deploymentsOnce: DeploymentRecords | undefined;
  private spoolOnce: Promise<Spool> | undefined;
  private networksOnce: Promise<NetworkService> | undefined;

  constructor(readonly options: RootOptions) {}

  /** The state store (`<root>/berth.db`): handed to the record classes only, which hold all the SQL. */
  private store(): StateStore {
    if (this.closed) throw new BerthError('internal', `the state root ${this.options.root} was used after it was closed`);
    this.opened ??= StateStore.open(this.options.root);
    return this.opened;
  }

  /** The board this runs on: the given one, else the detection cache under the state root (board/cache.ts). */
  board(): BoardInfo {
    const o = this.options;
    this.boardOnce ??= o.board ?? detectBoardCached(o.host, o.profilesDir, { file: boardCacheFile(o.root), version: o.version });
    return this.boardOnce;
  }

  images(): ImageService {
    const o = this.options;
    this.imagesOnce ??= new ImageService(new ImageRecords(this.store()), { root: o.root, host: o.host, ...(o.snapshotMode !== undefined && { mode: o.snapshotMode }) });
    return this.imagesOnce;
  }

  engine(): Promise<ContainerEngine> {
    return this.localEngine();
  }

  private localEngine(): Promise<LocalEngine> {
    this.engineOnce ??= Promise.all([import('./runtime/engine.js'), import('./network/index.js')]).then(([{ LocalEngine }, { createContainerNetworking, networkRunDir, resolverSource }]) => {
      const { root, host, env } = this.options;
      const searchPath = systemSearchPath(env.PATH);
      return new LocalEngine(this.images(), new ContainerRecords<RunOptions>(this.store()), {
        root, host, board: this.board(), searchPath, ...(env.BERTH_RUNTIME ? { runtime: env.BERTH_RUNTIME } : {}),
        networking: createContainerNetworking(this.store(), host, searchPath, networkRunDir(env), resolverSource(env)),
      });
    });
    return this.engineOnce;
  }

  /** Pseudo-terminals of containers and exec sessions: the local engine's (its monitors own them). */
  terminals(): Promise<Terminals> {
    return this.localEngine();
  }

  /** Bridge networks and their leases, for `berth network` (the engine has its own over the same store). */
  networks(): Promise<NetworkService> {
    this.networksOnce ??= import('./network/index.js').then(({ createNetworkService }) => createNetworkService(this.store(), this.options.host));
    return this.networksOnce;
  }

  /** Named volumes under this root; which containers use one is asked of the engine each time. */
  async volumes(): Promise<Volumes> {
    const [{ Volumes }, engine] = await Promise.all([import('./runtime/volumes.js'), this.engine()]);
    return new Volumes(this.options.root, () => engine.list());
  }

  /** The desired states received (MQTT or `berth deploy`) and their outcomes. */
  deployments(): DeploymentRecords {
    this.deploymentsOnce ??= new StoredDeployments<DesiredState, ErrorInfo>(this.store());
    return this.deploymentsOnce;
  }

  /** The rotated fleet key and the signed commands already run, in the store's meta table. */
  trust(): TrustRecords {
    return new TrustRecords(this.store());
  }

  /** The supervisor API's device UUID and per-app keys (src/store/supervisor-keys.ts), in the store's meta table. */
  supervisorKeys(): SupervisorKeyRecords {
    return new SupervisorKeyRecords(this.store());
  }

  /** The offline spool over the store's `events` table: one per store (see Spool's contract). */
  spool(): Promise<Spool> {
    this.spoolOnce ??= Promise.all([import('./agent/spool.js'), import('./store/spool.js')]).then(([{ Spool }, { SpoolTable }]) => new Spool(new SpoolTable(this.store())));
    return this.spoolOnce;
  }

  /** Pulls `ref` for this board with berth's registry credentials and CAs (image/pull/for-board.ts). */
  async pull(ref: string, opts: BoardPullOptions = {}): Promise<PullResult> {
    const board = this.board();
    const { pullForBoard } = await import('./image/pull/for-board.js');
    return pullForBoard(this.images(), this.options, board, ref, opts);
  }

  /**
   * The reconciler over this root's engine, images and deployment records, pulling through `pull`.
   * `berth deploy` and the agent both build theirs here; `onPull` hears of each image about to be pulled;
   * `bindRoots` (the agent's, from its deploy policy) confines the bind sources of what it creates;
   * `pull` (the agent's) pulls elsewhere than in this process.
   */
  async deployer(onEvent: (e: DeployEvent) => void, opts: DeployerOptions = {}): Promise<Deployer> {
    const [{ Deployer }, { deviceEnvOf }, volumes, engine, networks] = await Promise.all([
      import('./agent/reconcile/deployer.js'), import('./agent/supervisor-api/device-env.js'), this.volumes(), this.engine(), this.networks(),
    ]);
    return new Deployer({
      engine, networks, volumes, images: this.images(), board: this.board(), records: this.deployments(), onEvent, normalize: { stateRoot: this.options.root },
      deviceEnv: deviceEnvOf(this.supervisorKeys(), networks),
      ...(opts.bindRoots && { bindRoots: opts.bindRoots }),
      pull: async (ref, signal, onPullEvent, platform) => {
        opts.onPull?.(ref);
        if (opts.pull) return opts.pull(ref, signal, onPullEvent, platform);
        return (await this.pull(ref, { signal, onEvent: onPullEvent, platform })).image.name;
      },
    });
  }

  close(): void {
    this.closed = true;
    this.opened?.close();
  }
}

/** Runs `fn` over a root for `options` and closes it after, whatever `fn` does. */
export async function withRoot<T>(options: RootOptions, fn: (root: BerthRoot) => Promise<T> | T): Promise<T> {
  const root = new BerthRoot(options);
  try {
    return await fn(root);
  } finally {
    root.close();
  }
}
