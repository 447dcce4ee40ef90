export { detectBoard } from './detect.js';
export { boardCacheFile, detectBoardCached, type BoardCache } from './cache.js';
export type { BoardInfo } from './select.js';
export type { BoardProfile } from './profiles.js';
