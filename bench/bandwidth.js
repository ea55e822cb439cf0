// The machine's WebAssembly memory-read bandwidth under this Node's engine:
// the ceiling a decode step (which streams the layer's weights and its
// key/value cache once per token) is measured against.
//
// The kernel is a tiny WebAssembly module written here byte by byte, like
// bench/peak.js's: it owns one memory, filled from JavaScript (pages never
// written would all map one zero page, which the cache serves), and its
// export "read"(end, passes) streams bytes [0, end) `passes` times with four
// independent v128.load per 64 bytes, folded into four v128 accumulators with
// v128.xor (one cheap instruction per load, so the loop is bound by the loads)
// and returns one lane of their xor, so no load is dead code.
//
// The buffer (128 MiB per thread) is four times the L3 cache of the largest
// server CPUs this runs on, so the figure is DRAM bandwidth. With threads > 1
// the same kernel runs in that many worker_threads at once, each on its own
// memory, starting together; the rates add up.
//
//   node bench/bandwidth.js [threads]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export const BUFFER_BYTES = 128 * 2 ** 20;
const PAGE = 65536;

const uleb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; };
const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];
const SIMD = 0xfd;
const op = {
  localGet: (i) => [0x20, ...uleb(i)], localSet: (i) => [0x21, ...uleb(i)], localTee: (i) => [0x22, ...uleb(i)],
  i32Const: (v) => [0x41, ...sleb(v)], i32Add: [0x6a], i32Sub: [0x6b], i32LtU: [0x49], i32Xor: [0x73],
  v128Load: (offset) => [SIMD, ...uleb(0x00), 0x04, ...uleb(offset)],  // align 2^4, offset
  v128Xor: [SIMD, ...uleb(0x51)], i32x4Splat: [SIMD, ...uleb(0x11)], extractLane: (l) => [SIMD, ...uleb(0x1b), l],
  loop: [0x03, 0x40], block: [0x02, 0x40], brIf: (depth) => [0x0d, depth], end: [0x0b],
};
function sleb(v) {
  const out = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && (b & 0x40))) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

/** The module's bytes: imports memory "m"."mem", exports "read"(end: i32, passes: i32) -> i32. */
export function bandwidthModuleBytes() {
  const end = 0, passes = 1, p = 2;               // params, then the i32 local
  const acc = (i) => 3 + i;                       // v128 locals 3..6
  const body = [];
  for (let i = 0; i < 4; i++) body.push(...op.i32Const(0), ...op.i32x4Splat, ...op.localSet(acc(i)));
  body.push(...op.loop);                          // per pass
  body.push(...op.i32Const(0), ...op.localSet(p));
  body.push(...op.loop);                          // per 64 bytes
  for (let i = 0; i < 4; i++)
    body.push(...op.localGet(acc(i)), ...op.localGet(p), ...op.v128Load(16 * i), ...op.v128Xor, ...op.localSet(acc(i)));
  body.push(...op.localGet(p), ...op.i32Const(64), ...op.i32Add, ...op.localTee(p), ...op.localGet(end), ...op.i32LtU, ...op.brIf(0), ...op.end);
  body.push(...op.localGet(passes), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(passes), ...op.brIf(0), ...op.end);
  body.push(...op.localGet(acc(0)), ...op.localGet(acc(1)), ...op.v128Xor, ...op.localGet(acc(2)), ...op.v128Xor,
    ...op.localGet(acc(3)), ...op.v128Xor, ...op.extractLane(0), ...op.end);
  const locals = [0x02, 0x01, 0x7f, 0x04, 0x7b];  // one i32, four v128
  const func = [...locals, ...body];
  const importEntry = [0x01, ...uleb(1), ...Buffer.from('m'), ...uleb(3), ...Buffer.from('mem'), 0x02, 0x00, ...uleb(1)];  // memory, min 1 page
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]),     // type (i32, i32) -> i32
    ...section(2, importEntry),                                     // import the memory
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, 0x04, ...Buffer.from('read'), 0x00, 0x00]),
    ...section(10, [0x01, ...uleb(func.length), ...func]),
  ]);
}

/**
 * The kernel over a buffer of its own, BUFFER_BYTES written first (pages
 * never written would all map one zero page, which the cache serves):
 * `read(end, passes)` (bench/memory_probe.js runs it too).
 */
export function bandwidthReader() {
  const mem = new WebAssembly.Memory({ initial: BUFFER_BYTES / PAGE });
  new Uint32Array(mem.buffer).fill(0x9e3779b9);  // touch every page
  return new WebAssembly.Instance(new WebAssembly.Module(bandwidthModuleBytes()), { m: { mem } }).exports.read;
}

// Warms the kernel up (V8 tiers wasm up while it runs), then times `reps`
// calls of about `seconds` each. Returns GB/s (1e9 bytes) per call.
function timeReads(reps, seconds) {
  const read = bandwidthReader();
  const until = performance.now() + 300;
  while (performance.now() < until) read(BUFFER_BYTES >>> 2, 1);
  const t0 = performance.now();
  read(BUFFER_BYTES, 1);
  const perPass = performance.now() - t0;
  const passes = Math.max(1, Math.round((seconds * 1000) / perPass));
  const rates = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    read(BUFFER_BYTES, passes);
    rates.push((BUFFER_BYTES * passes) / ((performance.now() - start) * 1e6));
  }
  return rates;
}

const median = (xs) => { const s = [...xs].sort((p, q) => p - q); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };

/**
 * The memory-read bandwidth on `threads` threads: { threads, gbps (best of
 * reps, the ceiling), median, samples }, GB/s = 1e9 bytes per second; for
 * threads > 1 each sample is the sum over the concurrently running threads.
 */
export async function measureBandwidth({ threads = 1, reps = 7, seconds = 0.15 } = {}) {
  let samples;
  if (threads === 1) samples = timeReads(reps, seconds);
  else {
    const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: { bandwidthReps: reps, seconds } }));
    const results = await Promise.all(workers.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); })));
    await Promise.all(workers.map((w) => w.terminate()));
    samples = results[0].map((_, r) => results.reduce((sum, rates) => sum + rates[r], 0));
  }
  return { threads, gbps: Math.max(...samples), median: median(samples), samples };
}

if (!isMainThread && workerData && workerData.bandwidthReps) {
  parentPort.postMessage(timeReads(workerData.bandwidthReps, workerData.seconds));
}

if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const threads = Number(process.argv[2] ?? 1);
  for (let round = 0; round < 3; round++) {
    const b = await measureBandwidth({ threads });
    console.log(`read bandwidth, ${threads} thread${threads > 1 ? 's' : ''}: best ${b.gbps.toFixed(1)} GB/s, median ${b.median.toFixed(1)}`);
  }
}
