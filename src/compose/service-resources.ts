import { CPU_PERIOD_US, parseCpuList, type ResourceOptions } from '../cgroup/resources.js';
import { parseBytes, parseCpus, type RunOptions } from '../runtime/options.js';
import type { ServiceSpec } from '../protocol/types.js';
import { atKey, invalidAt, keyPath } from './service-key.js';

/**
 * A service's resource keys → RunOptions: compose's v2 names (mem_limit, cpus, cpu_shares, pids_limit,
 * cpuset, cpu_quota/cpu_period, mem_swappiness, blkio_config, shm_size) and the v3 form
 * (`deploy.resources`). Both forms may be given only when they agree, as compose requires.
 */

type Resources = Pick<RunOptions, keyof ResourceOptions | 'shmSize' | 'memorySwappiness'>;

const size = (v: string | number, path: string): number => (typeof v === 'number' ? v : atKey(path, () => parseBytes(v, path)));

/** Two spellings of one value: the one given, or both when equal; differing ones are refused naming both. */
function either<T>(service: string, a: [string, T | undefined], b: [string, T | undefined]): T | undefined {
  if (a[1] !== undefined && b[1] !== undefined && a[1] !== b[1]) {
    throw invalidAt(keyPath(service, b[0]), `${b[1]} differs from ${a[0]} (${a[1]}); give one of them`);
  }
  return a[1] ?? b[1];
}

/** `cpu_quota` per `cpu_period` (default 100 ms) as berth's one CPU limit, `cpus`. */
function cpusFromQuota(service: string, svc: ServiceSpec): number | undefined {
  if (svc.cpu_quota === undefined) {
    if (svc.cpu_period !== undefined) throw invalidAt(keyPath(service, 'cpu_period'), 'needs cpu_quota');
    return undefined;
  }
  const quota = Number(svc.cpu_quota);
  const period = svc.cpu_period === undefined ? CPU_PERIOD_US : Number(svc.cpu_period);
  const cpus = quota / period;
  if (!(cpus >= 0.01)) throw invalidAt(keyPath(service, 'cpu_quota'), `${quota}/${period} is below 0.01 CPU`);
  return cpus;
}

/** Replicas or a mode that mean anything but one container on this device are refused, never ignored. */
function checkDeploy(service: string, svc: ServiceSpec): void {
  const d = svc.deploy;
  if (d?.replicas !== undefined && d.replicas !== 1) {
    throw invalidAt(keyPath(service, 'deploy.replicas'), `${d.replicas}: berth runs one container per service on a device`, 'remove deploy.replicas, or run copies as separate services');
  }
  if (d?.mode !== undefined && d.mode !== 'replicated') {
    throw invalidAt(keyPath(service, 'deploy.mode'), `"${d.mode}" is a swarm mode; berth runs one container per service on each device`, 'remove deploy.mode');
  }
}

export function serviceResources(service: string, svc: ServiceSpec): Resources {
  const k = (key: string): string => keyPath(service, key);
  checkDeploy(service, svc);
  const limits = svc.deploy?.resources?.limits;
  const reservations = svc.deploy?.resources?.reservations;
  const memory = either(service, ['mem_limit', svc.mem_limit === undefined ? undefined : size(svc.mem_limit, k('mem_limit'))],
    ['deploy.resources.limits.memory', limits?.memory === undefined ? undefined : size(limits.memory, k('deploy.resources.limits.memory'))]);
  const memoryReservation = either(service, ['mem_reservation', svc.mem_reservation === undefined ? undefined : size(svc.mem_reservation, k('mem_reservation'))],
    ['deploy.resources.reservations.memory', reservations?.memory === undefined ? undefined : size(reservations.memory, k('deploy.resources.reservations.memory'))]);
  const cpuText = (v: string | number | undefined, key: string): number | undefined => (v === undefined ? undefined : atKey(k(key), () => parseCpus(String(v))));
  const cpus = either(service, ['cpus', either(service, ['cpus', cpuText(svc.cpus, 'cpus')], ['cpu_quota', cpusFromQuota(service, svc)])],
    ['deploy.resources.limits.cpus', cpuText(limits?.cpus, 'deploy.resources.limits.cpus')]);
  const pidsLimit = either(service, ['pids_limit', svc.pids_limit], ['deploy.resources.limits.pids', limits?.pids]);
  return {
    ...(memory !== undefined && { memory }),
    ...(memoryReservation !== undefined && { memoryReservation }),
    ...(svc.memswap_limit !== undefined && { memorySwap: svc.memswap_limit === -1 ? -1 : size(svc.memswap_limit, k('memswap_limit')) }),
    ...(cpus !== undefined && { cpus }),
    ...(svc.cpu_shares !== undefined && { cpuShares: svc.cpu_shares }),
    ...(pidsLimit !== undefined && { pidsLimit }),
    ...(svc.cpuset !== undefined && { cpusetCpus: parseCpuList(svc.cpuset, k('cpuset')) }),
    ...(svc.mem_swappiness !== undefined && { memorySwappiness: svc.mem_swappiness }),
    ...(svc.blkio_config?.weight !== undefined && { blkioWeight: svc.blkio_config.weight }),
    ...(svc.shm_size !== undefined && { shmSize: size(svc.shm_size, k('shm_size')) }),
  };
}
