import type { HostPaths } from '../host/paths.js';
import { readBoardFacts } from './facts.js';
import { loadProfiles } from './profiles.js';
import { resolveBoard, type BoardInfo } from './select.js';

/** Detects the board berth runs on and resolves its profile. */
export function detectBoard(host: HostPaths, profilesDir?: string): BoardInfo {
  return resolveBoard(readBoardFacts(host), loadProfiles(profilesDir));
}
