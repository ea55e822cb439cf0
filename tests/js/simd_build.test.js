// The shipped .wasm is a SIMD build, not a scalar one: its code contains
// f32x4 arithmetic (wasm-dis comes with binaryen, a dependency of emscripten).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// wasm-dis of a shipped build, run with the project's toolchain (binaryen
// comes with Emscripten).
function disassemble(name) {
  const wasm = fileURLToPath(new URL(`../../dist/${name}`, import.meta.url));
  return execFileSync('scripts/toolchain.sh', ['run', 'wasm-dis', wasm],
    { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)) });
}

for (const name of ['mha-core.wasm', 'mha-core-mt.wasm']) {
  test(`the shipped ${name} contains f32x4 multiply and add instructions and no relaxed ones`, () => {
    const text = disassemble(name);
    const count = (op) => text.split(op).length - 1;
    assert.ok(count('f32x4.mul') >= 8, `expected f32x4.mul in the GEMM and dot kernels, found ${count('f32x4.mul')}`);
    assert.ok(count('f32x4.add') >= 8, `expected f32x4.add, found ${count('f32x4.add')}`);
    assert.ok(count('v128.load') >= 8, `expected v128 loads, found ${count('v128.load')}`);
    assert.equal(count('relaxed'), 0, 'a SIMD128 build must run where relaxed SIMD does not');
  });
}

for (const name of ['mha-core-relaxed.wasm', 'mha-core-relaxed-mt.wasm']) {
  test(`the shipped ${name} computes with f32x4.relaxed_madd`, () => {
    const text = disassemble(name);
    const count = (op) => text.split(op).length - 1;
    // The micro-kernel's 10 per k step, the softmax's polynomial, axpy.
    assert.ok(count('f32x4.relaxed_madd') >= 16, `expected f32x4.relaxed_madd in the kernels, found ${count('f32x4.relaxed_madd')}`);
  });
}

// Speed is measured by the bench, never asserted; this checks a cause instead.
// The GEMM micro-kernel does nearly all the arithmetic and is only fast with
// its 14 (SIMD128) or 15 (relaxed) live vectors in registers. Whether V8 keeps them there
// depends on the order it gives the loads, which the code around the loop
// can change (src/micro_kernels.hpp, micro_kernel): a spill halved the layer's
// speed and failed nothing else. So: in this Node's optimised code, the
// kernel's loop exists and moves no xmm register to or from the stack.
for (const simd of ['strict', 'relaxed']) {
  test(`the GEMM micro-kernel compiles to a loop with every value in a register (${simd} build)`, async () => {
    const { microKernelLoops } = await import('../../bench/codegen.js');
    const loops = microKernelLoops(undefined, simd);
    assert.ok(loops.length >= 1, `no micro-kernel loop in V8's optimised code (node bench/codegen.js dist ${simd} shows what there is)`);
    for (const loop of loops)
      assert.equal(loop.stackMoves, 0, `${loop.function}: ${loop.stackMoves} xmm spills or reloads per k step:\n${loop.code.join('\n')}`);
  });
}

// The same for the softmax's exponential: its constants, written as v128
// constants, were rebuilt from immediates by V8 in the loop, three
// instructions each per batch (src/simd_batch.hpp, Exp2Constants); nothing
// but the bench would have shown it.
for (const simd of ['strict', 'relaxed']) {
  test(`the softmax's exponential loop rebuilds no vector constant (${simd} build)`, async () => {
    const { exponentialLoops } = await import('../../bench/codegen.js');
    const loops = exponentialLoops(undefined, simd);
    assert.ok(loops.length >= 1, `no exponential loop in V8's optimised code`);
    for (const loop of loops)
      assert.equal(loop.constantMoves, 0, `${loop.function}: ${loop.constantMoves} moves from general registers per iteration:\n${loop.code.join('\n')}`);
  });
}
