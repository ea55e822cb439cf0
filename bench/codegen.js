// What this Node's V8 makes of the GEMM micro-kernel: the machine code of its
// inner loop, from `node --print-wasm-code` (which release builds of Node
// support). The kernel is only fast while every value stays in a register;
// which order V8 gives its loads depends on the code around it, and a spill
// halves the layer's speed without failing anything (src/gemm.cpp,
// micro_kernel). This finds those loops without needing function names, by
// their shape: one iteration per k step of 5 rows x 8 columns is 10 vmulps,
// 10 vaddps and 5 vbroadcastss in the SIMD128 build; of 6 rows x 8 columns
// (kGemmRows) in the relaxed build, 12 fused multiply-adds (vfmadd...ps,
// from f32x4.relaxed_madd) and 6 vbroadcastss on a CPU with FMA, and on one
// without, 12 vmulps, 12 vaddps and 6 vbroadcastss.
//
//   node bench/codegen.js [distDir] [strict|relaxed]   prints each kernel loop found
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_DIST = path.resolve(here, '..', 'dist');
export const KERNEL_SHAPE = { strict: { mulps: 10, addps: 10, fmas: 0, broadcasts: 5 },
  relaxed: { mulps: 0, addps: 0, fmas: 12, broadcasts: 6 },
  relaxedWithoutFma: { mulps: 12, addps: 12, fmas: 0, broadcasts: 6 } };

// The program run under --print-wasm-code: one forward pass big enough to go
// through every GEMM path, with the optimising tier from the first call.
function driver(distDir, simd) {
  const entry = pathToFileURL(path.join(distDir, 'index.js')).href;
  return `
    const { init, MultiheadAttention, Tensor } = await import(${JSON.stringify(entry)});
    await init({ threads: 1, simd: '${simd}' });
    const mha = await MultiheadAttention.create({ embedDim: 64, numHeads: 2, seed: 1 });
    const x = new Tensor(new Float32Array(100 * 64).fill(0.25), [100, 64]);
    mha.forward(x, null, null, { needWeights: 'average' });
    mha.dispose();`;
}

/** V8's listing of every function compiled by TurboFan: [{ name, lines: [{ offset, text }] }]. */
export function optimisedCode(distDir = DEFAULT_DIST, simd = 'strict') {
  const r = spawnSync(process.execPath, ['--no-liftoff', '--print-wasm-code', '--input-type=module', '-e', driver(distDir, simd)],
    { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`--print-wasm-code run failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  const functions = [];
  let current = null;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('--- WebAssembly code ---')) { current = { name: '', compiler: '', lines: [] }; functions.push(current); continue; }
    if (!current) continue;
    if (line.startsWith('name: ')) current.name = line.slice(6);
    else if (line.startsWith('compiler: ')) current.compiler = line.slice(10);
    else {
      // "0x2b82a5016640  100  c5f859c2   vmulps xmm0,xmm0,xmm2"
      const m = line.match(/^0x[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+(.+)$/);
      if (m) current.lines.push({ offset: parseInt(m[1], 16), text: m[2].trim() });
    }
  }
  return functions.filter((f) => f.compiler === 'TurboFan');
}

// Loops of a function: from a stack check (V8 puts one at every loop header)
// to the first jump back to it or before it.
function loopsOf(fn) {
  const loops = [];
  fn.lines.forEach((start, i) => {
    if (!/cmpq rsp,/.test(start.text)) return;
    for (let j = i + 1; j < fn.lines.length; j++) {
      const target = fn.lines[j].text.match(/^j\w+ .*<\+0x([0-9a-f]+)>/);
      if (target && parseInt(target[1], 16) <= start.offset) {
        loops.push(fn.lines.slice(i, j + 1).map((l) => l.text));
        return;
      }
    }
  });
  return loops;
}

/**
 * Every loop shaped like one step of the micro-kernel, with its
 * instruction count and how many of its instructions move an xmm register
 * to or from the stack (a spill or a reload; 0 when all is well).
 */
export function microKernelLoops(distDir = DEFAULT_DIST, simd = 'strict') {
  const count = (loop, re) => loop.filter((t) => re.test(t)).length;
  // A CPU without FMA runs relaxed_madd as a multiply and an add.
  const shapes = simd === 'relaxed' ? [KERNEL_SHAPE.relaxed, KERNEL_SHAPE.relaxedWithoutFma] : [KERNEL_SHAPE.strict];
  const fits = (loop, shape) => count(loop, /^vmulps/) === shape.mulps && count(loop, /^vaddps/) === shape.addps
    && count(loop, /^vfn?madd\d+ps/) === shape.fmas && count(loop, /^vbroadcastss/) === shape.broadcasts;
  return optimisedCode(distDir, simd).flatMap((fn) => loopsOf(fn)
    .filter((loop) => shapes.some((shape) => fits(loop, shape)))
    .map((loop) => ({ function: fn.name, instructions: loop.length, stackMoves: count(loop, /xmm.*\[r[bs]p|\[r[bs]p.*xmm/), code: loop })));
}

/**
 * Every innermost loop that computes exp2_batch (src/simd_batch.hpp: found
 * by its polynomial's six multiply-adds and its shift of 2^n into the
 * exponent field, by 23), with how many of its
 * instructions move a general register into an xmm one: V8 rebuilds a v128
 * constant used in a loop from immediates on every use (a move to a general
 * register, one to an xmm register, a shuffle), which the exponential's
 * nine once cost the softmax; they are values read outside the loop, and
 * this counts 0 while they stay so.
 */
export function exponentialLoops(distDir = DEFAULT_DIST, simd = 'strict') {
  return optimisedCode(distDir, simd).flatMap((fn) => loopsOf(fn)
    .filter((loop) => loop.filter((t) => /cmpq rsp,/.test(t)).length === 1  // innermost
      && loop.some((t) => /^v?pslld xmm\d+,(xmm\d+,)?(23|0x17)$/.test(t))
      && loop.filter((t) => /^vfn?madd\d+ps|^v?mulps/.test(t)).length >= 6)  // the polynomial
    .map((loop) => ({ function: fn.name, instructions: loop.length,
      constantMoves: loop.filter((t) => /^v?mov[dq] xmm\d+,r/.test(t)).length, code: loop })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const loops = microKernelLoops(process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_DIST, process.argv[3] ?? 'strict');
  if (loops.length === 0) console.log('no micro-kernel loop found in the optimised code');
  for (const l of loops) {
    console.log(`${l.function}: ${l.instructions} instructions per k step, ${l.stackMoves} xmm moves to or from the stack`);
    console.log(l.code.map((t) => `    ${t}`).join('\n'));
  }
}
