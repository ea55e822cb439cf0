// The pause before each multi-thread measurement: the main thread spins until
// every other thread of this process has been idle for a while, so that no
// peer's leftover worker shares a core with the next peer's run.
//
// Why not a fixed pause: onnxruntime-web's worker stays in state R for about
// 20 ms after a run even with `allow_spinning` off, and mha-wasm at L = 128,
// 2 threads, took 3.9 ms back to back but 6.2-7.4 ms after a 5 ms pause
// behind it (4.1 ms after this one). A longer
// fixed pause would be idle time too, and an idle pause lets the VM's vCPUs
// halt (bench/measure.js's header). Spinning, the pause ends as soon as the
// others are quiet.
import fs from 'node:fs';

const TASKS = '/proc/self/task';
const QUIET_MS = 1;  // how long no other thread may have been running
const MAX_MS = 200;  // a thread that never sleeps (another library's timer) cannot hold the bench

// Whether a thread of this process other than the calling one is running
// (state R in /proc/self/task/*/stat), or null where /proc cannot say. The
// state, not the CPU time: schedstat's time of a running thread moves only at
// the scheduler's ticks, so a spinning thread can look idle for 4 ms.
function othersRunning() {
  let tasks;
  try {
    tasks = fs.readdirSync(TASKS);
  } catch {
    return null;
  }
  for (const t of tasks) {
    if (Number(t) === process.pid) continue;  // the main thread's task id is the pid
    try {
      const stat = fs.readFileSync(`${TASKS}/${t}/stat`, 'utf8');
      if (stat[stat.lastIndexOf(')') + 2] === 'R') return true;
    } catch { /* the thread ended between the listing and the read */ }
  }
  return false;
}

/** Spins at least `minMs`, then until no other thread has run for QUIET_MS (at most MAX_MS in all). */
export function settle(minMs) {
  const start = performance.now();
  while (performance.now() - start < minMs) { /* busy: no idle vCPU */ }
  if (othersRunning() == null) return;
  for (let quietSince = performance.now(); ;) {
    const now = performance.now();
    if (othersRunning()) quietSince = now;
    else if (now - quietSince >= QUIET_MS || now - start > MAX_MS) return;
  }
}
