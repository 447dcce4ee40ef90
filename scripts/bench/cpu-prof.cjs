// Preloaded into a process (NODE_OPTIONS=--require …) by a benchmark's --profile: Node refuses --cpu-prof in
// NODE_OPTIONS, so this starts V8's profiler through the inspector and writes BERTH_CPU_PROF_DIR/<pid>.cpuprofile
// when the process exits (open it in Chrome DevTools' Performance panel or speedscope).
const fs = require('node:fs');
const path = require('node:path');
const inspector = require('node:inspector');

const dir = process.env.BERTH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // A session on the process's own thread answers synchronously, so this completes inside 'exit'.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) fs.writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
