/**
 * What a `--network` value means. `host`, `none` and `private` (berth's former name for `none`) are
 * modes without a bridge; anything else names a network (`bridge` being the default one).
 */
export const NON_BRIDGE_MODES = ['host', 'none', 'private'] as const;

export function isBridgeNetwork(mode: string): boolean {
  return !(NON_BRIDGE_MODES as readonly string[]).includes(mode) && !mode.startsWith('container:');
}
