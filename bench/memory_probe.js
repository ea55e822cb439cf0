// bench/bandwidth.js's memory-read kernel as one more cell of a decode
// group's timed rounds (bench/measure.js), so that a decode step's GB/s is
// set against the bandwidth the machine gave in the same minutes, not
// against a figure taken before or after the peers: this shared host's
// bandwidth moved by half within a run (1 thread: 34.7 GB/s before the
// peers, 23.8 after, in one run).
//
// A call streams each thread's own 128 MiB once (bandwidthReader: one
// WebAssembly memory per thread); with more
// than one thread, worker threads stream at once, started together through
// a SharedArrayBuffer, and the call's time is the slowest one's, measured
// inside the workers (their wake-up is not part of it).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { bandwidthReader, BUFFER_BYTES } from './bandwidth.js';

// The probe's cell id in a decode group's results (not a peer: no column of its own).
export const MEMORY_READ = 'memory-read';

// A function timing one pass over a buffer of its own, in ms.
function streamer() {
  const read = bandwidthReader();
  return () => {
    const t0 = performance.now();
    read(BUFFER_BYTES, 1);
    return performance.now() - t0;
  };
}

// control[0]: the generation (a call's start; -1 to stop), control[1]: workers done with it.
const GENERATION = 0, DONE = 1;

/**
 * A probe for `threads` threads: `run()` times one pass on every thread and
 * leaves the slowest pass's ms in `lastMs`; `bytes` is what a pass reads in
 * all; `dispose()` ends the workers.
 */
export async function createMemoryProbe(threads) {
  if (threads === 1) {
    const pass = streamer();
    return { bytes: BUFFER_BYTES, lastMs: NaN, run() { this.lastMs = pass(); }, dispose() {} };
  }
  const control = new Int32Array(new SharedArrayBuffer(8));
  const times = new Float64Array(new SharedArrayBuffer(8 * threads));
  const workers = [];
  for (let i = 0; i < threads; i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { memoryProbe: true, index: i, control: control.buffer, times: times.buffer } });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });  // its buffer written
    workers.push(w);
  }
  return {
    bytes: BUFFER_BYTES * threads,
    lastMs: NaN,
    run() {
      Atomics.store(control, DONE, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      for (let done; (done = Atomics.load(control, DONE)) < threads;) Atomics.wait(control, DONE, done);
      this.lastMs = Math.max(...times);
    },
    // The workers leave their loop and end by themselves (terminating one
    // as it ends crashed V8 now and then).
    async dispose() {
      const ended = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
      Atomics.store(control, GENERATION, -1);
      Atomics.notify(control, GENERATION);
      await Promise.all(ended);
    },
  };
}

if (!isMainThread && workerData?.memoryProbe) {
  const pass = streamer();
  const control = new Int32Array(workerData.control);
  const times = new Float64Array(workerData.times);
  parentPort.postMessage('ready');
  for (let seen = Atomics.load(control, GENERATION); ;) {
    Atomics.wait(control, GENERATION, seen);
    seen = Atomics.load(control, GENERATION);
    if (seen < 0) break;
    times[workerData.index] = pass();
    Atomics.add(control, DONE, 1);
    Atomics.notify(control, DONE);
  }
}
