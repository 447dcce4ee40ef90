// Child process for the crash test: commits batches to the state store as fast as it can and reports each
// commit on stdout *after* it returns, so the parent knows which commits were acknowledged.
import { StateStore } from '../../../dist/store/store.js';

const [root, batchArg] = process.argv.slice(2);
const batch = Number(batchArg ?? 50);
const store = StateStore.open(root);
const insert = store.db.prepare('INSERT INTO events (ts, kind, data) VALUES (?, ?, ?)');
const payload = 'x'.repeat(2000);
let n = Number(store.getMeta('commits') ?? '0');
for (;;) {
  store.transaction(() => {
    for (let i = 0; i < batch; i++) insert.run(Date.now(), 'crash-test', JSON.stringify({ commit: n + 1, i, payload }));
    store.setMeta('commits', String(n + 1));
  });
  n++;
  process.stdout.write(`${n}\n`);
}
