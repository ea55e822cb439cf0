// The shipped .wasm is a SIMD build, not a scalar one: its code contains
// f32x4 arithmetic (wasm-dis comes with binaryen, a dependency of emscripten).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('the shipped mha-core.wasm contains f32x4 multiply and add instructions', () => {
  const wasm = fileURLToPath(new URL('../../dist/mha-core.wasm', import.meta.url));
  const text = execFileSync('wasm-dis', [wasm], { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  const count = (op) => text.split(op).length - 1;
  assert.ok(count('f32x4.mul') >= 8, `expected f32x4.mul in the GEMM and dot kernels, found ${count('f32x4.mul')}`);
  assert.ok(count('f32x4.add') >= 8, `expected f32x4.add, found ${count('f32x4.add')}`);
  assert.ok(count('v128.load') >= 8, `expected v128 loads, found ${count('v128.load')}`);
});
