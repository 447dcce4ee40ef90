// `berth run`'s flags with nothing given, as commander hands them to runOptionsFrom: every list flag
// empty. Older builds (start.mjs --compare) ignore the ones they do not know.
export const EMPTY_RUN_FLAGS = {
  env: [], volume: [], device: [], tmpfs: [], label: [], publish: [], networkAlias: [], dns: [], dnsSearch: [], dnsOption: [], expose: [], addHost: [], ulimit: [],
  envFile: [], capAdd: [], capDrop: [], securityOpt: [], groupAdd: [], sysctl: [], deviceCgroupRule: [], logOpt: [],
  restart: 'no', network: 'private',
};
