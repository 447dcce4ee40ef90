// Module hooks of undici-trap.cjs: an ESM import of node:http, static or dynamic, builds http's module
// facade, which on Node 22 reads http's lazy undici getters (see there). Refused, and logged.
import fs from 'node:fs';

export async function resolve(specifier, context, next) {
  if (/^(node:)?http$/.test(specifier)) {
    const msg = `ESM import of ${specifier} from ${context.parentURL}: on Node 22 it loads undici, which needs WebAssembly`;
    if (process.env.BERTH_UNDICI_TRAP_LOG) fs.appendFileSync(process.env.BERTH_UNDICI_TRAP_LOG, `${msg}\n`);
    throw new Error(msg);
  }
  return next(specifier, context);
}
