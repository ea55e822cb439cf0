// Memory and lifetime: steady-state calls allocate nothing, nothing stays
// alive that should not, dropped layers are reclaimed, layers do not interfere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { MultiheadAttention, memoryStats, randomTensor } from './helpers.js';

test('10,000 calls with shapes going up and down: after warm-up the heap and the handle count stay put', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 16, numHeads: 4, seed: 1, addZeroAttn: true });
  const shapes = [[1, 1, 1], [2, 7, 9], [3, 33, 17], [1, 64, 64], [2, 5, 3], [1, 2, 40]];
  const inputs = shapes.map(([B, Lq, Lk], n) => ({
    q: randomTensor([B, Lq, 16], 10 + n), kv: randomTensor([B, Lk, 16], 20 + n),
    kpm: { data: new Uint8Array(B * Lk).map((_, i) => i % 3 === 1), dims: [B, Lk] },
  }));
  const optionsFor = (n, input) => [
    {},
    { needWeights: 'per-head', returnHeads: true },
    { keyPaddingMask: input.kpm, needWeights: 'average', returnConcat: true, fullyMaskedRows: 'nan' },
    { isCausal: true },
  ][n % 4];
  const call = (n) => {
    const input = inputs[n % inputs.length];
    return mha.forward(input.q, input.kv, input.kv, optionsFor(Math.floor(n / inputs.length), input));
  };
  for (let n = 0; n < 4 * inputs.length; n++) call(n);  // warm-up: every shape with every option set
  const before = await memoryStats();
  for (let n = 0; n < 10000; n++) call(n);
  const after = await memoryStats();
  assert.equal(after.heapBytes, before.heapBytes, 'the heap did not grow');
  assert.equal(after.liveHandles, before.liveHandles, 'no embind value handle was left alive');
  assert.equal(after.liveLayers, before.liveLayers);
  mha.dispose();
});

test('dispose releases the native layer', async () => {
  const before = (await memoryStats()).liveLayers;
  const layers = await Promise.all([1, 2, 3].map((seed) => MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed })));
  assert.equal((await memoryStats()).liveLayers, before + 3);
  for (const l of layers) l.dispose();
  assert.equal((await memoryStats()).liveLayers, before);
});

test('layers dropped without dispose are reclaimed by the garbage collector', async () => {
  // A child with --expose-gc, so this file's other layers do not interfere.
  const child = fileURLToPath(new URL('./gc_child.mjs', import.meta.url));
  const stdout = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['--expose-gc', child], { timeout: 60000 }, (err, out, errOut) =>
      (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out))));
  const report = JSON.parse(stdout);
  assert.equal(report.created, 20);
  assert.equal(report.liveAfterCreate, 20);
  assert.equal(report.liveAfterGc, 0, 'every dropped layer was deleted by the FinalizationRegistry');
});

test('several layers alive at once, called in turn, give the numbers each gives alone', async () => {
  const configs = [{ embedDim: 12, numHeads: 3, seed: 1 }, { embedDim: 12, numHeads: 4, seed: 2, addBiasKV: true },
    { embedDim: 8, numHeads: 2, seed: 3, kdim: 5, vdim: 7 }];
  const inputFor = (c) => [randomTensor([2, 4, c.embedDim], 1), randomTensor([2, 6, c.kdim ?? c.embedDim], 2),
    randomTensor([2, 6, c.vdim ?? c.embedDim], 3)];
  const alone = [];
  for (const c of configs) {
    const m = await MultiheadAttention.create(c);
    alone.push(m.forward(...inputFor(c), { needWeights: 'per-head' }));
    m.dispose();
  }
  const layers = await Promise.all(configs.map((c) => MultiheadAttention.create(c)));
  for (let round = 0; round < 3; round++)
    layers.forEach((m, n) => {
      const r = m.forward(...inputFor(configs[n]), { needWeights: 'per-head' });
      assert.deepEqual(r.output.data, alone[n].output.data);
      assert.deepEqual(r.weights.data, alone[n].weights.data);
    });
  for (const m of layers) m.dispose();
});
