/**
 * What a `--network` value means. `host`, `none` and `private` (berth's former name for `none`) are
 * modes without a bridge; anything else names a network (`bridge` being the default one).
 */
export const NON_BRIDGE_MODES = ['host', 'none', 'private'] as const;

/** `--network container:X`: the prefix of the mode that joins another container's namespace. */
export const CONTAINER_MODE = 'container:';

export function isBridgeNetwork(mode: string): boolean {
  return !(NON_BRIDGE_MODES as readonly string[]).includes(mode) && !mode.startsWith(CONTAINER_MODE);
}

/** X of `container:X`; undefined for every other mode. */
export function joinedContainerOf(mode: string): string | undefined {
  return mode.startsWith(CONTAINER_MODE) ? mode.slice(CONTAINER_MODE.length) : undefined;
}
