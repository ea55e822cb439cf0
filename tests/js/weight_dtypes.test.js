// Reduced-precision weights (weightDtype 'f16', 'bf16', 'int8'): the layer
// is the one whose weights are the dequantized values, held to the
// generator's float64 forward pass over them (tests/fixtures/decoder_dtypes.py);
// it holds them in their own format (weightBytes), reads them back
// dequantized (stateDict), keeps what a safetensors file stores, and refuses
// what a format cannot hold before loading anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MultiheadAttention, loadDecoderFixtures, checkDecoderCase, decoderCreateOptions, randomTensor, encodeSafetensors,
  checkF16ScaledRows,
  checkInt8ScaledRow,
} from './helpers.js';

const { dtypes } = loadDecoderFixtures();
const PROJECTIONS = ['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight'];

test('the fixtures hold a case for each reduced weight dtype', () => {
  assert.deepEqual(dtypes.map((c) => c.weightDtype).sort(), ['bf16', 'f16', 'int8']);
});

for (const c of dtypes) {
  test(`matches the float64 forward pass over the dequantized weights: ${c.name}`, async () => {
    await checkDecoderCase({ MultiheadAttention }, c);
  });

  // Value for value: int8's zero codes may be -0 in the generator (torch's
  // sign(r) * 0), which is the same weight.
  test(`stateDict returns the ${c.weightDtype} weights dequantized, value for value as the generator's`, async () => {
    const mha = await MultiheadAttention.create(decoderCreateOptions(c));
    try {
      mha.loadStateDict(c.stateDict);
      assert.equal(mha.weightDtype, c.weightDtype);
      const dict = mha.stateDict();
      for (const name of PROJECTIONS) {
        const got = dict[name].data, want = c.dequantized[name].data;
        assert.equal(got.length, want.length);
        const differs = got.findIndex((x, i) => x !== want[i]);
        assert.equal(differs, -1, `${name}[${differs}] dequantized: got ${got[differs]}, want ${want[differs]}`);
      }
      assert.deepEqual(dict['q_proj.bias'].data, c.stateDict['q_proj.bias'].data, 'biases stay float32');
    } finally {
      mha.dispose();
    }
  });
}

const LLAMA_LIKE = { embedDim: 256, numHeads: 8, numKVHeads: 2, headDim: 32, rope: true };

test('each weight dtype holds its bytes, not a float32 copy', async () => {
  const bytes = {};
  for (const weightDtype of ['f32', 'f16', 'bf16', 'int8']) {
    const mha = await MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype });
    mha.forward(randomTensor([1, 3, 256], 5), null, null, { causal: true });  // packed forms made
    bytes[weightDtype] = mha.weightBytes;
    mha.dispose();
  }
  // Projection weights: 256 x 256 (q, o) and 64 x 256 (k, v): 163,840 values.
  const values = 163840;
  assert.ok(bytes.f16 >= 2 * values && bytes.f16 < 2 * values * 1.05, `f16: ${bytes.f16} bytes`);
  assert.equal(bytes.bf16, bytes.f16);
  assert.ok(bytes.int8 >= values * (1 + 4 / 32) && bytes.int8 < values * (1 + 4 / 32) * 1.05, `int8: ${bytes.int8} bytes`);
  assert.ok(bytes.f32 >= 4 * values, `f32: ${bytes.f32} bytes`);
});

test('memoryStats counts the bytes a layer allocates, a quarter and less for int8', async () => {
  const { memoryStats } = await import('./helpers.js');
  const grown = {};
  for (const weightDtype of ['f32', 'int8']) {
    const before = (await memoryStats()).allocatedBytes;
    const mha = await MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype });
    mha.forward(randomTensor([1, 1, 256], 6));
    grown[weightDtype] = (await memoryStats()).allocatedBytes - before;
    assert.ok(grown[weightDtype] >= mha.weightBytes, `${weightDtype}: allocated ${grown[weightDtype]} < weightBytes ${mha.weightBytes}`);
    mha.dispose();
  }
  assert.ok(grown.int8 * 4 < grown.f32, JSON.stringify(grown));
});

test('weightDtype is checked and named', async () => {
  await assert.rejects(MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype: 'fp8' }),
    (err) => err instanceof RangeError && err.argument === 'weightDtype' && /'f32', 'f16', 'bf16', 'int8'/.test(err.message));
  await assert.rejects(MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype: 16 }), (err) => err.argument === 'weightDtype');
});

test('a weight f16 cannot hold is refused by name, and nothing of the state dict loads', async () => {
  const mha = await MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype: 'f16' });
  try {
    const before = mha.stateDict();
    const dict = {};
    for (const [name, t] of Object.entries(before)) dict[name] = t.data.map((x) => x * 0.5);
    dict['v_proj.weight'][7] = 1e6;
    assert.throws(() => mha.loadStateDict(dict), (err) => err instanceof RangeError && /'v_proj.weight' value 7/.test(err.message) &&
      /65504/.test(err.message));
    const after = mha.stateDict();
    for (const name of Object.keys(before)) assert.deepEqual(after[name].data, before[name].data, `${name} unchanged`);
    dict['v_proj.weight'][7] = 0.25;
    mha.loadStateDict(dict);  // usable afterwards
    assert.equal(mha.stateDict()['v_proj.weight'].data[7], 0.25);
  } finally {
    mha.dispose();
  }
  const int8 = await MultiheadAttention.create({ ...LLAMA_LIKE, weightDtype: 'int8' });
  try {
    const dict = Object.fromEntries(Object.entries(int8.stateDict()).map(([n, t]) => [n, t.data]));
    dict['q_proj.weight'][3] = NaN;
    assert.throws(() => int8.loadStateDict(dict), (err) => err instanceof RangeError && /not finite/.test(err.message));
  } finally {
    int8.dispose();
  }
});

// bfloat16 bits of float32 values, truncated (the test needs stored values, not rounding).
const bf16Truncated = (values) => Uint16Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length), (u) => u >>> 16);

// A safetensors file of one nn.MultiheadAttention layer, its weights in `dtype`.
function layerFile(E, dtype) {
  const specs = { in_proj_weight: [3 * E, E], in_proj_bias: [3 * E], 'out_proj.weight': [E, E], 'out_proj.bias': [E] };
  const header = {};
  const parts = [];
  let at = 0, seed = 3;
  for (const [name, dims] of Object.entries(specs)) {
    const values = randomTensor(dims, seed++).data;
    const kind = dims.length === 2 ? dtype : 'F32';
    const data = kind === 'F16' ? new Float16Array(values) : kind === 'BF16' ? bf16Truncated(values) : values;
    header[name] = { dtype: kind, shape: dims, data_offsets: [at, at + data.byteLength] };
    parts.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    at += data.byteLength;
  }
  return encodeSafetensors(header, parts);
}

test('fromSafetensors keeps F16 and BF16 weights as they are stored, unless told a weightDtype', async () => {
  for (const [dtype, kept] of [['F16', 'f16'], ['BF16', 'bf16'], ['F32', 'f32']]) {
    const bytes = layerFile(16, dtype);
    const stored = await MultiheadAttention.fromSafetensors(bytes, { numHeads: 2 });
    const told = await MultiheadAttention.fromSafetensors(bytes, { numHeads: 2, weightDtype: 'f32' });
    try {
      assert.equal(stored.weightDtype, kept, dtype);
      assert.equal(told.weightDtype, 'f32');
      // The same values either way: the file's 16-bit values widen exactly.
      const a = stored.stateDict(), b = told.stateDict();
      for (const name of Object.keys(a)) assert.deepEqual(a[name].data, b[name].data, `${dtype} ${name}`);
      const x = randomTensor([1, 5, 16], 9);
      const ya = stored.forward(x), yb = told.forward(x);
      for (let i = 0; i < ya.output.data.length; i++) assert.ok(Math.abs(ya.output.data[i] - yb.output.data[i]) < 1e-5);
    } finally {
      stored.dispose();
      told.dispose();
    }
  }
  await assert.rejects(MultiheadAttention.fromSafetensors(layerFile(16, 'F16'), { numHeads: 2, weightDtype: 'q4' }),
    (err) => err instanceof RangeError && err.argument === 'weightDtype');
});

// f16 projections take their activations times 2^112 instead of
// multiplying every weight by it, when every |x| of the row (single-row
// kernel) or of the packed block (multi-row kernel) is < 2^16: the same
// products, so the same bits. One and five tokens, whose projections scale
// up, are bit for bit the first rows of a six-token causal call whose last
// token's activation of 70000 keeps its block on the plain path; with an
// activation past 2^16 in the first token too, where every path is plain.
// (every_build runs it on each build.)
for (const big of [0.5, 70000]) {
  test(`f16: one and five tokens' outputs are bit for bit the first rows of a call that cannot scale up (an activation of ${big})`, async () => {
    await checkF16ScaledRows(MultiheadAttention, big);
  });
}

// (helpers.js, checkInt8ScaledRow, says why the two paths agree.)
test('int8: a token on the two-rows-at-a-time path is bit for bit the plain path', async () => {
  await checkInt8ScaledRow(MultiheadAttention);
});
