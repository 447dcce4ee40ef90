export { buildSpec, SECCOMP_ANNOTATION, type BuildSpecInput } from './build.js';
export { DEFAULT_DEVICE_RULES, resolveDevices } from './devices.js';
export { parseProcLimits, readHostFacts, splitDev, statDevicePath, type DeviceStat, type HostFacts } from './host.js';
export { buildMounts, MASKED_PATHS, maskedPaths, READONLY_PATHS, SHM_SIZE_BYTES, standardMounts, tmpfsMount, volumeMount } from './mounts.js';
export { DEFAULT_SECCOMP_PROFILE, SeccompProfiles, type SeccompChoice, type SeccompResult, type SeccompSource, type SeccompSummary } from './seccomp.js';
export { buildRlimits, DEFAULT_PATH, mergeArgs, mergeEnv, NOFILE_HARD, NOFILE_SOFT, replaceOrAppendEnv, type ImageProcessConfig } from './process.js';
export { capabilityMask, CAPABILITY_NUMBERS, DEFAULT_CAPABILITIES, normalizeCapability, resolveCapabilities } from '../capabilities.js';
export * from './types.js';
export { parseGroup, parsePasswd, readRootfsFile, resolveInRoot, resolveUser, resolveUserFrom, type ResolvedUser } from './user.js';
