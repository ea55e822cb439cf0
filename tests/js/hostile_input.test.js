// The classes of failure a hostile-input review found (issue 17): sizes that
// wrap around in 32 bits, values that change between reads, inherited keys,
// '__proto__' names, other realms' typed arrays, masks at the edge of
// float32, and a module that traps. Each must end in a clear Error, with the
// module and every healthy layer still working, and the heap not jumping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';

import { MultiheadAttention, memoryStats, randomTensor, capabilities } from './helpers.js';
import { loaded, callModule } from '../../dist/loader.js';

const SIZES = [2 ** 15 + 1, 2 ** 16 + 1, 2 ** 20 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, Infinity, -1, 1.5, NaN, 2n ** 16n, '64'];

test('every dimension argument of create refuses sizes past what wasm32 holds, with an Error naming it', async () => {
  const heapBefore = (await memoryStats()).heapBytes;
  for (const arg of ['embedDim', 'numHeads', 'kdim', 'vdim']) {
    for (const v of SIZES) {
      const options = { embedDim: 8, numHeads: 2, [arg]: v };
      if (arg === 'embedDim' && typeof v === 'number' && Number.isSafeInteger(v) && v > 0) options.numHeads = 1;
      let err;
      try {
        (await MultiheadAttention.create(options)).dispose();
        continue;  // a size that fits (2^15 + 1 as kdim, say) is fine
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof TypeError || err instanceof RangeError, `${arg}=${String(v)}: ${err}`);
      assert.ok(err.message.includes(arg) || err.message.includes(arg.replace('Dim', '_dim')) || /GiB/.test(err.message),
        `${arg}=${String(v)}: "${err.message}" names neither the argument nor the size`);
    }
  }
  const stats = await memoryStats();
  assert.equal(stats.liveLayers, 0, 'no refused create left a layer behind');
  assert.ok(stats.heapBytes - heapBefore < 2 ** 28, `the heap grew by ${stats.heapBytes - heapBefore} bytes for refused layers`);
});

test('a layer too big for 4 GiB is refused at create, before allocating, with its size in GiB', async () => {
  const before = (await memoryStats()).heapBytes;
  await assert.rejects(MultiheadAttention.create({ embedDim: 65536, numHeads: 2 }), (err) =>
    err instanceof RangeError && /needs 128\.00 GiB/.test(err.message) && /4\.00 GiB/.test(err.message));
  await assert.rejects(MultiheadAttention.create({ embedDim: 16384, numHeads: 2 }), /needs 8\.00 GiB/);
  assert.equal((await memoryStats()).heapBytes, before);
});

test('calls of B·L·E near 2^30, 2^31 and 2^32 floats are refused before anything is allocated', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
  const x = randomTensor([3, 8], 1);
  const want = mha.forward(x).output.data;
  const before = (await memoryStats()).heapBytes;
  // Per-head weights of H·L² floats: 2^30 (4.5 GiB with the rest), 2^31, 2^33,
  // from inputs of a few hundred KiB.
  for (const L of [3 * 2 ** 14, 2 ** 15, 2 ** 16]) {
    const long = randomTensor([L, 8], 3);
    assert.throws(() => mha.forward(long, null, null, { needWeights: 'per-head' }), (err) =>
      err instanceof RangeError && /more WebAssembly memory/.test(err.message) && /nothing was allocated/.test(err.message));
  }
  // A tensor claiming 2^32 floats cannot have the data for it.
  assert.throws(() => mha.forward({ data: new Float32Array(8), dims: [2 ** 29, 8] }), /need 4294967296/);
  assert.equal((await memoryStats()).heapBytes, before, 'no refused call grew the heap');
  assert.deepEqual(mha.forward(x).output.data, want, 'the layer computes the same bits afterwards');
  mha.dispose();
});

test('validLens past 2^31 means every key, not a wrapped-around 0', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 2 });
  const x = randomTensor([2, 4, 8], 1);
  const all = mha.forward(x).output.data;
  assert.deepEqual(mha.forward(x, null, null, { validLens: [2 ** 32, 2 ** 40] }).output.data, all);
  assert.deepEqual(mha.forward(x, null, null, { validLens: [4, 4] }).output.data, all);
  assert.throws(() => mha.forward(x, null, null, { validLens: [NaN, 1] }), /validLens\[0\] must be an integer/);
  assert.throws(() => mha.forward(x, null, null, { validLens: [Infinity, 1] }), /validLens\[0\] must be an integer/);
  mha.dispose();
});

test('values are read once: a getter that answers differently the second time is checked and used as first read', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 3 });
  const x = randomTensor([2, 3, 8], 1);
  const want = mha.forward(x).output.data;
  let reads = 0;
  const shifty = { get data() { reads++; return reads === 1 ? x.data : new Float32Array(2); }, dims: x.dims };
  assert.deepEqual(mha.forward(shifty).output.data, want);
  let dimReads = 0;
  const dims = new Proxy([2, 3, 8], { get(t, k) { if (k === '0') dimReads++; return k === '0' && dimReads > 1 ? 1000 : Reflect.get(t, k); } });
  assert.deepEqual(mha.forward({ data: x.data, dims }).output.data, want);
  let optionReads = 0;
  const options = { get isCausal() { optionReads++; return optionReads === 1 ? 'yes' : true; } };
  assert.throws(() => mha.forward(x, null, null, options), /isCausal must be a boolean/);
  mha.dispose();
});

test('inherited keys change nothing, and \'__proto__\' is a name like any other', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 4 });
  const x = randomTensor([2, 3, 8], 1);
  const plain = mha.forward(x).output.data;
  Object.prototype.isCausal = true;  // eslint-disable-line no-extend-native
  try {
    assert.deepEqual(mha.forward(x, null, null, {}).output.data, plain);
  } finally {
    delete Object.prototype.isCausal;
  }
  const dict = JSON.parse('{"__proto__": [1, 2]}');
  assert.throws(() => mha.loadStateDict(dict), /unexpected key '__proto__'/);
  assert.deepEqual(mha.forward(x).output.data, plain);
  mha.dispose();
});

test('typed arrays from another realm are accepted as what they are', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 5 });
  const x = randomTensor([2, 3, 8], 1);
  const foreign = vm.runInNewContext('new Float32Array(48)');
  foreign.set(x.data);
  assert.equal(foreign instanceof Float32Array, false);
  assert.deepEqual(mha.forward({ data: foreign, dims: [2, 3, 8] }).output.data, mha.forward(x).output.data);
  const foreignInts = vm.runInNewContext('new Int32Array(48)');
  assert.throws(() => mha.forward({ data: foreignInts, dims: [2, 3, 8] }), /query\.data must be a Float32Array, got a Int32Array\(48\)/);
  mha.dispose();
});

test('an additive mask of finfo(float32).min (Hugging Face padding) gives the uniform row PyTorch gives', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 6 });
  const x = randomTensor([1, 3, 8], 1);
  const min = -3.4028234663852886e38;
  const mask = { data: new Float32Array(9).fill(min), dims: [3, 3] };  // every key of every row padded
  const r = mha.forward(x, null, null, { attnMask: mask, needWeights: 'per-head' });
  for (const w of r.weights.data) assert.ok(Math.abs(w - 1 / 3) < 1e-6, `weight ${w}, expected 1/3`);
  const kpm = mha.forward(x, null, null, { keyPaddingMask: { data: new Float32Array(3).fill(min), dims: [1, 3] }, needWeights: 'average' });
  for (const w of kpm.weights.data) assert.ok(Math.abs(w - 1 / 3) < 1e-6, `weight ${w}, expected 1/3`);
  mha.dispose();
});

test('a module that traps is retired: its layers throw an Error saying so, and the next create loads a fresh module', async () => {
  const healthy = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 7 });
  const x = randomTensor([2, 3, 8], 1);
  const want = healthy.forward(x).output.data;
  const module = loaded();
  assert.throws(() => callModule(module, () => module.core.trapForTesting()), (err) =>
    err instanceof Error && !(err instanceof WebAssembly.RuntimeError) && /trapped/.test(err.message) && /retired/.test(err.message));
  // Every layer of that module now says so, however it is called.
  for (const call of [() => healthy.forward(x), () => healthy.stateDict(), () => healthy.parameterShapes()])
    assert.throws(call, (err) => err instanceof Error && !(err instanceof WebAssembly.RuntimeError) && /trapped/.test(err.message));
  assert.equal(capabilities().build, null, 'a retired module is no build');
  healthy.dispose();  // never throws, even on a retired module
  // A fresh module serves new layers, with the same numbers as before.
  const fresh = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 7 });
  assert.notEqual(loaded(), module);
  assert.deepEqual(fresh.forward(x).output.data, want);
  assert.ok(capabilities().build);
  const stats = await memoryStats();
  assert.equal(stats.liveLayers, 1);
  fresh.dispose();
});
