// Preload (`node --require`) that ends the process the moment anything reaches Node's undici: the globals
// that load it lazily (fetch, Headers, WebSocket, …; Node 22 adds MessageEvent and WebSocket) and Node 22's
// lazy getters on `http` (WebSocket, CloseEvent, MessageEvent), which an ESM `import` of node:http reads
// while building the module's facade. undici compiles its HTTP parser to WebAssembly, which V8's lite mode
// lacks: `berth agent` runs in lite mode, so on Node 22 any of these crashed it (BENCHMARKS.md, issue 22).
// This machine's Node (20) has fewer such getters; the preload adds them all, so a test on Node 20 fails
// where the agent would crash on Node 22.
//
// On a touch: the stack goes to $BERTH_UNDICI_TRAP_LOG (appended) and the process exits with 97 (an ESM
// import of node:http: logged there too, and the import throws).
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const { pathToFileURL } = require('node:url');

const TRAP_EXIT = 97;

function trap(target, where, name, enumerable) {
  const touched = () => {
    const stack = new Error(`${where}.${name} touched: it loads undici, which needs WebAssembly`).stack;
    if (process.env.BERTH_UNDICI_TRAP_LOG) fs.appendFileSync(process.env.BERTH_UNDICI_TRAP_LOG, `${stack}\n`);
    process.reallyExit(TRAP_EXIT);
  };
  // `delete` first: on Node 22 these globals are lazy data properties that defining over would load.
  delete target[name];
  Object.defineProperty(target, name, { configurable: true, enumerable, get: touched, set: touched });
}

for (const name of ['fetch', 'FormData', 'Headers', 'Request', 'Response', 'MessageEvent', 'WebSocket', 'EventSource', 'CloseEvent']) {
  trap(globalThis, 'globalThis', name, false);
}
// Node 22's http getters: enumerable, as there; they catch a read through `require`. An ESM import reads
// them through the module's facade, whose keys Node 20 fixed when http was first required (by this file):
// the resolve hook in undici-trap-hooks.mjs refuses such an import instead.
for (const name of ['WebSocket', 'CloseEvent', 'MessageEvent']) trap(http, 'http', name, true);
require('node:module').register('./undici-trap-hooks.mjs', pathToFileURL(__filename));
