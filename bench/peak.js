// The machine's f32x4 multiply-add peak under this Node's WebAssembly engine,
// measured by the bench itself so "percent of peak" is about this run's
// machine and not a datasheet. Two instruction mixes, one peak each:
//
//   'mul-add'       f32x4.mul then f32x4.add (SIMD128: what the 'simd' builds,
//                   onnxruntime-web and tfjs-wasm run)
//   'relaxed-madd'  f32x4.relaxed_madd (relaxed SIMD: what the 'relaxed'
//                   builds' GEMM micro-kernel runs; V8 emits one fused
//                   vfmadd where the CPU has FMA, else a multiply and an add)
//
// The kernel is a tiny WebAssembly module written here byte by byte (no
// toolchain in the loop): 12 independent f32x4 accumulators, each doing
// acc = acc * m + a per step. Twelve chains hide the mul and add latencies
// (3 + 3 cycles on Zen; an FMA's 4-5) behind the two FP multiply (or FMA)
// and two FP add pipes, and 12 + 2 v128 locals fit V8's 15 allocatable xmm
// registers, so the loop runs out of registers with no loads or stores. One
// mul + one add, or one madd, on f32x4 = 8 FLOP. m < 1 keeps every value
// near 1 (no overflow, no denormals).
//
// With threads > 1 the same kernel runs in that many worker_threads at once and
// the rates add up: that is the ceiling for the 2-thread rows (and shows whether
// the two vCPUs share one core's FP pipes).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const ACCUMULATORS = 12;
const UNROLL = 4;  // steps per loop iteration, to amortise the counter and branch
export const FLOP_PER_ITERATION = ACCUMULATORS * UNROLL * 8;

const uleb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; };
const f32 = (x) => [...new Uint8Array(new Float32Array([x]).buffer)];
const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];
const SIMD = 0xfd;
const op = {
  localGet: (i) => [0x20, ...uleb(i)], localSet: (i) => [0x21, ...uleb(i)], localTee: (i) => [0x22, ...uleb(i)],
  f32Const: (x) => [0x43, ...f32(x)], i32Const1: [0x41, 0x01], i32Sub: [0x6b], f32Add: [0x92],
  splat: [SIMD, ...uleb(0x13)], extractLane: (l) => [SIMD, ...uleb(0x1f), l],
  mul: [SIMD, ...uleb(0xe6)], add: [SIMD, ...uleb(0xe4)], relaxedMadd: [SIMD, ...uleb(0x105)],
  loop: [0x03, 0x40], brIf: (depth) => [0x0d, depth], end: [0x0b],
};

export const MIXES = ['mul-add', 'relaxed-madd'];

/**
 * The module's bytes: export "run"(iterations: i32) -> f32 (the sum, so
 * nothing is dead code). `mix`: 'mul-add' or 'relaxed-madd' (see the header).
 */
export function peakModuleBytes(mix = 'mul-add') {
  if (!MIXES.includes(mix)) throw new Error(`unknown instruction mix '${mix}'; known: ${MIXES.join(', ')}`);
  const n = 0;                                  // param: iterations left
  const acc = (i) => 1 + i;                     // locals 1..12
  const m = 1 + ACCUMULATORS, a = m + 1;        // locals 13, 14
  const body = [];
  body.push(...op.f32Const(0.999), ...op.splat, ...op.localSet(m));
  body.push(...op.f32Const(0.001), ...op.splat, ...op.localSet(a));
  for (let i = 0; i < ACCUMULATORS; i++) body.push(...op.f32Const(0.5 + i / 64), ...op.splat, ...op.localSet(acc(i)));
  body.push(...op.loop);
  for (let u = 0; u < UNROLL; u++)
    for (let i = 0; i < ACCUMULATORS; i++)
      body.push(...(mix === 'relaxed-madd'
        ? [...op.localGet(acc(i)), ...op.localGet(m), ...op.localGet(a), ...op.relaxedMadd]  // acc * m + a
        : [...op.localGet(acc(i)), ...op.localGet(m), ...op.mul, ...op.localGet(a), ...op.add]), ...op.localSet(acc(i)));
  body.push(...op.localGet(n), ...op.i32Const1, ...op.i32Sub, ...op.localTee(n), ...op.brIf(0), ...op.end);
  body.push(...op.localGet(acc(0)));
  for (let i = 1; i < ACCUMULATORS; i++) body.push(...op.localGet(acc(i)), ...op.add);
  body.push(...op.extractLane(0), ...op.localGet(acc(0)), ...op.extractLane(1), ...op.f32Add, ...op.end);
  const locals = [0x01, ...uleb(ACCUMULATORS + 2), 0x7b];  // one run of v128 locals
  const func = [...locals, ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x01, 0x7f, 0x01, 0x7d]),           // type (i32) -> f32
    ...section(3, [0x01, 0x00]),                                    // one function of type 0
    ...section(7, [0x01, 0x03, ...Buffer.from('run'), 0x00, 0x00]), // export "run"
    ...section(10, [0x01, ...uleb(func.length), ...func]),          // its code
  ]);
}

/** Whether this engine runs the mix (relaxed SIMD: Node 22+). */
export const mixAvailable = (mix) => WebAssembly.validate(peakModuleBytes(mix));

function instantiate(mix) {
  return new WebAssembly.Instance(new WebAssembly.Module(peakModuleBytes(mix))).exports.run;
}

// Runs the kernel until V8's optimising tier has taken over (dynamic tiering
// starts every wasm function in the baseline compiler), then times `reps`
// calls of about `seconds` each. Returns GFLOP/s per call.
function timeKernel(reps, seconds, mix) {
  const run = instantiate(mix);
  let iterations = 20000;
  const until = performance.now() + 300;
  while (performance.now() < until) run(iterations);
  const t0 = performance.now();
  run(iterations);
  const perIteration = (performance.now() - t0) / iterations;
  iterations = Math.max(1000, Math.round((seconds * 1000) / perIteration));
  const rates = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    run(iterations);
    rates.push((iterations * FLOP_PER_ITERATION) / ((performance.now() - start) * 1e6));
  }
  return rates;
}

const median = (xs) => { const s = [...xs].sort((p, q) => p - q); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };

/**
 * Measures the f32x4 peak of instruction mix `mix` on `threads` threads.
 * Returns { threads, mix, gflops (best of reps, the ceiling), median, samples },
 * or null when this engine lacks the mix (relaxed SIMD before Node 22). For
 * threads > 1 each sample is the sum over the concurrently running threads.
 */
export async function measurePeak({ threads = 1, reps = 7, seconds = 0.15, mix = 'mul-add' } = {}) {
  if (!mixAvailable(mix)) return null;
  let samples;
  if (threads === 1) {
    samples = timeKernel(reps, seconds, mix);
  } else {
    // All workers warm up, then start their timed reps together on a shared signal.
    const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: { reps, seconds, mix } }));
    const results = await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })));
    await Promise.all(workers.map((w) => w.terminate()));
    samples = results[0].map((_, r) => results.reduce((sum, rates) => sum + rates[r], 0));
  }
  return { threads, mix, gflops: Math.max(...samples), median: median(samples), samples };
}

if (!isMainThread && workerData && workerData.reps) {
  parentPort.postMessage(timeKernel(workerData.reps, workerData.seconds, workerData.mix));
}

// `node bench/peak.js [threads]`: both mixes, alternating, three times.
if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const threads = Number(process.argv[2] ?? 1);
  for (let round = 0; round < 3; round++)
    for (const mix of MIXES) {
      const p = await measurePeak({ threads, mix });
      console.log(p ? `${mix.padEnd(12)} ${threads} thread${threads > 1 ? 's' : ''}: best ${p.gflops.toFixed(1)} GFLOP/s, median ${p.median.toFixed(1)}` : `${mix}: not available in this engine`);
    }
}
