// Weights from safetensors files in the layouts people have, checked against
// PyTorch (tests/fixtures/generate_safetensors.py computes each model's own
// attention in float64), and malformed files refused with a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { MultiheadAttention, parseSafetensors, assertClose } from './helpers.js';

const dir = new URL('../fixtures/safetensors/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8'));

for (const [name, c] of Object.entries(manifest.cases)) {
  test(`${name}: ${c.note} - matches PyTorch`, async () => {
    const bytes = readFileSync(new URL(c.file, dir));
    const mha = await MultiheadAttention.fromSafetensors(bytes, { prefix: c.prefix, numHeads: c.numHeads });
    const x = { data: Float32Array.from(c.input), dims: c.dims };
    const { output } = mha.forward(x, null, null, { isCausal: c.isCausal });
    assertClose(output, { data: c.expected, dims: c.dims }, { atol: 1e-5, rtol: 1e-5, what: name });
    // Naming the layout explicitly gives the same layer.
    const named = await MultiheadAttention.fromSafetensors(bytes, { prefix: c.prefix, numHeads: c.numHeads, layout: c.layout });
    assert.deepEqual(named.forward(x, null, null, { isCausal: c.isCausal }).output.data, output.data);
    mha.dispose();
    named.dispose();
  });
}

test('parseSafetensors reads names, dims, dtypes and metadata', () => {
  const { tensors, metadata } = parseSafetensors(readFileSync(new URL('torch_f16.safetensors', dir)));
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual(tensors.in_proj_weight.dims, [48, 16]);
  assert.equal(tensors.in_proj_weight.dtype, 'F16');
  assert.ok(tensors.in_proj_weight.data instanceof Float32Array);
});

// A well-formed file to break in each test below.
function build(header, data = new Uint8Array(0), rawHeader) {
  const text = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const bytes = new Uint8Array(8 + text.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  bytes.set(data, 8 + text.length);
  return bytes;
}
const four = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

test('a well-formed hand-built file parses', () => {
  assert.deepEqual(Array.from(parseSafetensors(build(good, four)).tensors.w.data), [1, 2, 3, 4]);
});

const malformed = [
  ['fewer than 8 bytes', new Uint8Array(5), 'the file has 5 bytes, fewer than the 8 of its header length'],
  ['a header longer than the file', (() => { const b = build(good, four); new DataView(b.buffer).setBigUint64(0, 10000n, true); return b; })(),
    'the header claims 10000 bytes but only'],
  ['a header that is not JSON', build(null, four, '{"w": [oops'), 'the header is not valid UTF-8 JSON'],
  ['a header that is not an object', build(null, four, '[1, 2]'), 'the header is not a JSON object'],
  ['an unsupported dtype', build({ w: { ...good.w, dtype: 'I8' } }, four), "tensor 'w' has dtype \"I8\"; supported: F32, F64, F16, BF16"],
  ['a negative dim', build({ w: { ...good.w, shape: [-2, 2] } }, four), "tensor 'w' has shape [-2,2]"],
  ['offsets past the data', build({ w: { ...good.w, data_offsets: [0, 32] } }, four), "tensor 'w' ends at byte 32 of the data, which has only 16"],
  ['offsets that disagree with the shape', build({ w: { ...good.w, shape: [3, 2] } }, four), "needs 24 bytes, its offsets span 16"],
  ['reversed offsets', build({ w: { ...good.w, data_offsets: [16, 0] } }, four), 'expected [begin, end] with 0 <= begin <= end'],
  ['overlapping tensors', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, four),
    "tensors 'a' and 'b' overlap"],
];
for (const [what, bytes, message] of malformed) {
  test(`parseSafetensors refuses ${what}`, () => {
    assert.throws(() => parseSafetensors(bytes), (err) => {
      assert.ok(err instanceof RangeError, err.constructor.name);
      assert.ok(err.message.startsWith('safetensors: '), err.message);
      assert.ok(err.message.includes(message), `"${err.message}"\n lacks "${message}"`);
      return true;
    });
  });
}

test('parseSafetensors refuses what is not bytes', () => {
  assert.throws(() => parseSafetensors('weights.safetensors'), /bytes must be an ArrayBuffer or a typed array .*got string/);
});

test('fromSafetensors names the missing keys and the prefix it looked under', async () => {
  const bytes = readFileSync(new URL('bert_attention.safetensors', dir));
  await assert.rejects(MultiheadAttention.fromSafetensors(bytes, { numHeads: 4, prefix: 'encoder.layer.1.attention.' }),
    /no attention layer recognised under prefix 'encoder.layer.1.attention.'.*keys found there: none/);
  await assert.rejects(MultiheadAttention.fromSafetensors(bytes, { numHeads: 4, prefix: 'encoder.layer.0.attention.', layout: 'gpt2' }),
    /layout 'gpt2' needs 'encoder.layer.0.attention.c_attn.weight', which is missing/);
  await assert.rejects(MultiheadAttention.fromSafetensors(bytes, { numHeads: 3, prefix: 'encoder.layer.0.attention.' }),
    /embedDim must be divisible by numHeads .* got embedDim=16 and numHeads=3/);
  await assert.rejects(MultiheadAttention.fromSafetensors(bytes, { numHeads: 4, layout: 'roberta' }),
    /layout must be one of 'torch', 'bert', 'gpt2'/);
});
