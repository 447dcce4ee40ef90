// The image service and container engine of a compiled berth (`dist` imports from its dist/), built the
// way that build's CLI builds them: through its composition root (dist/root.js) where it has one, else
// with the ImageService.open of earlier builds, so --compare against an older checkout keeps working.
// Returns { images, engine, close }; `lap(name)`, when given, is called after the store opened and
// after the engine was built (phases.mjs times the two).
export async function openEngine(dist, { root, host, board, runtime, version }, lap = () => undefined) {
  const rootModule = await dist('root.js').catch(() => undefined);
  if (rootModule) {
    const env = { PATH: process.env.PATH, ...(runtime ? { BERTH_RUNTIME: runtime } : {}) };
    const parts = new rootModule.BerthRoot({ root, host, env, version, board });
    const images = parts.images();
    lap('openStore');
    const engine = await parts.engine();
    lap('engineSetup');
    return { images, engine, close: () => parts.close() };
  }
  const [{ ImageService }, { ContainerEngine }, { systemSearchPath }] = await Promise.all([dist('image/service.js'), dist('runtime/engine.js'), dist('host/which.js')]);
  const images = ImageService.open(root, host);
  lap('openStore');
  const engine = new ContainerEngine(images, { root, host, board, searchPath: systemSearchPath(process.env.PATH), ...(runtime ? { runtime } : {}) });
  lap('engineSetup');
  return { images, engine, close: () => images.close() };
}
