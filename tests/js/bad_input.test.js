// Bad input at the boundary: each row gets its own TypeError or RangeError
// naming the argument, the expected and the actual value; afterwards the layer
// still computes the same numbers and failed calls have not grown the heap.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, memoryStats, randomTensor } from './helpers.js';

const E = 8, H = 2;
const x = randomTensor([2, 3, E], 1);
const kv = randomTensor([2, 5, E], 2);
const t = (data, dims) => ({ data, dims });

const createRows = [
  ['embedDim not divisible by numHeads', { embedDim: 10, numHeads: 3 }, RangeError, 'embedDim must be divisible by numHeads (each head gets embedDim / numHeads columns), got embedDim=10 and numHeads=3'],
  ['embedDim as a string', { embedDim: '16', numHeads: 2 }, TypeError, 'embedDim must be an integer, got the string "16"'],
  ['embedDim not an integer', { embedDim: 16.5, numHeads: 2 }, TypeError, 'embedDim must be an integer, got number 16.5'],
  ['numHeads zero', { embedDim: 16, numHeads: 0 }, RangeError, 'numHeads must be >= 1, got 0'],
  ['numHeads negative', { embedDim: 16, numHeads: -2 }, RangeError, 'numHeads must be >= 1, got -2'],
  ['kdim zero', { embedDim: 16, numHeads: 2, kdim: 0 }, RangeError, 'kdim must be >= 1, got 0'],
  ['bias not a boolean', { embedDim: 16, numHeads: 2, bias: 'yes' }, TypeError, 'bias must be a boolean or { q, k, v, o } of booleans, got the string "yes"'],
  ['misspelt option', { embedDim: 16, numHead: 2 }, TypeError, "unknown option 'numHead'; did you mean 'numHeads'?"],
  ['no options at all', undefined, TypeError, 'MultiheadAttention.create options must be an object, got undefined'],
  ['a RoPE scaling not implemented', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'dynamic', factor: 2 } } }, RangeError,
    "rope.scaling.type must be 'linear', 'llama3', 'yarn' or 'longrope' (other RoPE scalings are not implemented), got the string \"dynamic\""],
  ['yarn without its original context', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'yarn', factor: 4 } } }, TypeError,
    'rope.scaling.originalMaxPositionEmbeddings must be a finite number > 0, got undefined'],
  ['yarn given llama3\'s option', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 64, lowFreqFactor: 1 } } },
    RangeError, "rope.scaling.lowFreqFactor must be absent with type 'yarn', got number 1"],
  ['yarn truncate not a boolean', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 64, truncate: 1 } } },
    TypeError, 'rope.scaling.truncate must be a boolean, got number 1'],
  ['longrope factors not one per rotated pair', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'longrope', shortFactor: [1, 1, 1, 1], longFactor: [1, 1, 1], originalMaxPositionEmbeddings: 64 } } },
    RangeError, 'rope.scaling.longFactor must be 4 values (rope.dim / 2: one per rotated pair), got an Array(3)'],
  ['a longrope factor of 0', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'longrope', shortFactor: [1, 0, 1, 1], longFactor: [1, 1, 1, 1], originalMaxPositionEmbeddings: 64 } } },
    RangeError, 'rope.scaling.shortFactor[1] must be a finite number > 0, got number 0'],
  ['longrope\'s default attention factor over an original context of 1', { embedDim: 16, numHeads: 2, rope: { scaling: { type: 'longrope', shortFactor: [1, 1, 1, 1], longFactor: [1, 1, 1, 1], originalMaxPositionEmbeddings: 1, factor: 4 } } },
    RangeError, 'rope.scaling.originalMaxPositionEmbeddings must be > 1 (the default attentionFactor divides by its logarithm), or an attentionFactor, got number 1'],
  ['sinks not a boolean', { embedDim: 16, numHeads: 2, sinks: 'yes' }, TypeError, 'sinks must be a boolean, got the string "yes"'],
  ['sinks under nn.MultiheadAttention\'s names', { embedDim: 16, numHeads: 2, sinks: true, weightNames: 'torch' }, RangeError,
    "sinks must be weightNames 'hf' (the parameter sinks)"],
];

for (const [what, options, Err, message] of createRows) {
  test(`create refuses ${what}`, async () => {
    await assert.rejects(MultiheadAttention.create(options), (err) => {
      assert.ok(err instanceof Err, `${err.constructor.name}: ${err.message}`);
      assert.ok(err.message.includes(message), `"${err.message}"\n lacks "${message}"`);
      return true;
    });
  });
}

const forwardRows = [
  ['a bare typed array as query', [new Float32Array(48)], TypeError, 'query must be a tensor { data, dims }, got a Float32Array(48)'],
  ['a plain array as query data', [t(Array(48).fill(0), [2, 3, 8])], TypeError, 'query.data must be a Float32Array, got an Array(48)'],
  ['a Float64Array as query data', [t(new Float64Array(48), [2, 3, 8])], TypeError, 'query.data must be a Float32Array, got a Float64Array(48)'],
  ['dims that are not an array', [t(new Float32Array(48), '2,3,8')], TypeError, 'query.dims must be an array of integers, got the string "2,3,8"'],
  ['dims of the wrong length', [t(new Float32Array(48), [48])], RangeError, 'query must have dims [B, Lq, E] or unbatched [Lq, E], got [48]'],
  ['non-integer dims', [t(new Float32Array(48), [2, 1.5, 8])], TypeError, 'query.dims[1] must be an integer, got number 1.5'],
  ['negative dims', [t(new Float32Array(48), [-2, 3, 8])], RangeError, 'query.dims[0] must be >= 0, got -2'],
  ['data.length not the product of dims', [t(new Float32Array(47), [2, 3, 8])], RangeError, 'query.data has 47 values but dims [2, 3, 8] need 48'],
  ['a query width other than embedDim', [t(new Float32Array(42), [2, 3, 7])], RangeError, "query's last dim must be embedDim=8, got [2, 3, 7]"],
  ['a key batch other than the query\'s', [x, t(new Float32Array(40), [1, 5, 8])], RangeError, "key's batch must equal query's (2), got [1, 5, 8]"],
  ['a key width other than kdim', [x, t(new Float32Array(70), [2, 5, 7])], RangeError, "key's last dim must be 8, got [2, 5, 7]"],
  ['a key of another rank', [x, t(new Float32Array(40), [5, 8])], RangeError, 'key must have 3 dims like query ([B, Lk, 8]), got [5, 8]'],
  ['a value length other than the key\'s', [x, kv, t(new Float32Array(64), [2, 4, 8])], RangeError, "value's length must equal key's (5), got [2, 4, 8]"],
  ['a key padding mask of the wrong shape', [x, kv, kv, { keyPaddingMask: t(new Uint8Array(6), [2, 3]) }], RangeError, 'keyPaddingMask must have dims [2, 5] ([B, Lk]), got [2, 3]'],
  ['a key padding mask of the wrong dtype', [x, kv, kv, { keyPaddingMask: t(new Int32Array(10), [2, 5]) }], TypeError, 'keyPaddingMask.data must be a Uint8Array or boolean[] or Float32Array, got a Int32Array(10)'],
  ['a mask of numbers in a plain array', [x, kv, kv, { keyPaddingMask: t([0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [2, 5]) }], TypeError, 'keyPaddingMask.data must be a Uint8Array or boolean[] or Float32Array, got an Array(10)'],
  ['a per-head attention mask of the wrong shape', [x, kv, kv, { attnMask: t(new Float32Array(30), [2, 3, 5]) }], RangeError, 'attnMask must have dims [4, 3, 5] ([B * numHeads, Lq, Lk], index b * numHeads + h), got [2, 3, 5]'],
  ['an attention mask of the wrong shape', [x, kv, kv, { attnMask: t(new Uint8Array(9), [3, 3]) }], RangeError, 'attnMask must have dims [3, 5] ([Lq, Lk], [B * numHeads, Lq, Lk], [B, 1, Lq, Lk] or [B, numHeads, Lq, Lk]), got [3, 3]'],
  ['validLens of the wrong length', [x, kv, kv, { validLens: [1, 2, 3] }], RangeError, 'validLens must have dims [2] (per sequence) or [2, 3] (per query), got [3]'],
  ['a negative valid length', [x, kv, kv, { validLens: [1, -1] }], RangeError, 'validLens[1] must be >= 0, got -1'],
  ['a fractional valid length', [x, kv, kv, { validLens: [1, 1.5] }], TypeError, 'validLens[1] must be an integer, got number 1.5'],
  ['an unknown needWeights', [x, null, null, { needWeights: 'all' }], RangeError, "needWeights must be one of 'none', 'average', 'per-head', got the string \"all\""],
  ['needWeights as a boolean', [x, null, null, { needWeights: true }], RangeError, "needWeights must be one of 'none', 'average', 'per-head', got boolean true"],
  ['an unknown fullyMaskedRows', [x, null, null, { fullyMaskedRows: 'NaN' }], RangeError, "fullyMaskedRows must be one of 'zero', 'nan', got the string \"NaN\""],
  ['isCausal as a number', [x, null, null, { isCausal: 1 }], TypeError, 'isCausal must be a boolean, got number 1'],
  ['a misspelt option', [x, null, null, { needweights: 'average' }], TypeError, "forward options: unknown option 'needweights'; did you mean 'needWeights'?"],
  ['options that are not an object', [x, null, null, 'average'], TypeError, 'forward options must be an object, got the string "average"'],
  ['buffers larger than wasm32 can address', [t(new Float32Array(40000 * 8), [40000, 8]), null, null, { needWeights: 'per-head' }], RangeError, "needs 11.93 GiB more WebAssembly memory"],
];

test('every bad forward argument is named, and the layer is unharmed afterwards', async (t) => {
  const mha = await MultiheadAttention.create({ embedDim: E, numHeads: H, seed: 1 });
  const before = mha.forward(x, kv, kv, { needWeights: 'per-head' });
  const heapBefore = (await memoryStats()).heapBytes;
  for (const [what, args, Err, message] of forwardRows) {
    await t.test(`forward refuses ${what}`, () => {
      assert.throws(() => mha.forward(...args), (err) => {
        assert.ok(err instanceof Err, `${err.constructor.name}: ${err.message}`);
        assert.ok(err.message.includes(message), `"${err.message}"\n lacks "${message}"`);
        return true;
      });
    });
  }
  assert.equal((await memoryStats()).heapBytes, heapBefore, 'failed calls allocate nothing');
  const after = mha.forward(x, kv, kv, { needWeights: 'per-head' });
  assert.deepEqual(after.output.data, before.output.data);
  assert.deepEqual(after.weights.data, before.weights.data);
  mha.dispose();
});

test('a key is required when kdim differs from embedDim', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, kdim: 3, vdim: 3 });
  assert.throws(() => mha.forward(x), /key is required: kdim=3 differs from embedDim=8/);
  mha.dispose();
});

test('the core\'s own checks reach JS with their message intact', async () => {
  // The wrapper checks first, so drive the embind glue directly: its C++
  // mha::Error must arrive as a status and the core's exact words.
  const { default: createMhaCore } = await import('../../dist/mha-core.mjs');
  const { readFile } = await import('node:fs/promises');
  const core = await createMhaCore({ wasmBinary: await readFile(new URL('../../dist/mha-core.wasm', import.meta.url)) });
  const layer = new core.CoreLayer();
  const config = (embedDim, numHeads) => ({ embedDim, numHeads, numKVHeads: 0, headDim: 0, kdim: 0, vdim: 0,
    bias: { q: true, k: true, v: true, o: true }, addBiasKV: false, addZeroAttn: false, seed: 0, weightNames: 'torch',
    rope: null, scale: 0, softcap: 0, alibi: false, slidingWindow: 0, qkNormEps: 0, sinks: false, weightDtype: 'f32' });
  assert.equal(layer.configure(config(10, 3)), 2);
  assert.equal(layer.error(), 'embed_dim must be divisible by num_heads, got embed_dim=10 and num_heads=3');
  assert.equal(layer.configure({ ...config(8, 2), seed: 'seven' }), 1);
  assert.equal(layer.error(), 'configure: seed is not a number');
  assert.equal(layer.configure(config(8, 2)), 0);
  assert.equal(layer.error(), '');
  assert.equal(layer.reserve(core.codes().slot.parameter, 5), 0);
  assert.equal(layer.setParameter('in_proj_weight', 5, true), 2);
  assert.equal(layer.error(), "parameter 'in_proj_weight' must have 192 values (shape [24, 8]), got 5");
  layer.delete();
});
