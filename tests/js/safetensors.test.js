// Weights from safetensors files in the layouts people have, checked against
// PyTorch (tests/fixtures/generate_safetensors.py computes each model's own
// attention in float64), and malformed files refused with a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { MultiheadAttention, parseSafetensors, assertClose, randomTensor } from './helpers.js';
import { safetensorsToStateDict } from '../../dist/index.js';

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

// ---------------------------------------------------------------------------
// Hostile input: names that are Object.prototype's, metadata and fields of the
// wrong type, sizes past 2^53, and layouts whose shapes disagree.

// A file of F32 tensors (seeded values) from { name: dims }, with metadata.
function tensorFile(specs, metadata) {
  const header = metadata === undefined ? {} : { __metadata__: metadata };
  const parts = [];
  let at = 0, seed = 1;
  for (const [name, dims] of Object.entries(specs)) {
    const { data } = randomTensor(dims, seed++);
    Object.defineProperty(header, name, { value: { dtype: 'F32', shape: dims, data_offsets: [at, at + data.byteLength] }, enumerable: true });
    parts.push(new Uint8Array(data.buffer));
    at += data.byteLength;
  }
  const bytes = new Uint8Array(at);
  let o = 0;
  for (const p of parts) { bytes.set(p, o); o += p.length; }
  return build(header, bytes);
}
const torchLayer = (E = 4, prefix = '') => ({
  [`${prefix}in_proj_weight`]: [3 * E, E], [`${prefix}in_proj_bias`]: [3 * E],
  [`${prefix}out_proj.weight`]: [E, E], [`${prefix}out_proj.bias`]: [E],
});
const PROTO_NAMES = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__'];

test('tensor names that are Object.prototype\'s are ordinary own entries', () => {
  const specs = Object.fromEntries([...PROTO_NAMES.map((n, i) => [n, [i + 1]]), ['w', [2, 2]]]);
  // Object.fromEntries makes '__proto__' an own key, so the header has it too.
  assert.ok(Object.hasOwn(specs, '__proto__'));
  const { tensors } = parseSafetensors(tensorFile(specs));
  assert.equal(Object.getPrototypeOf(tensors), null);
  assert.deepEqual(Object.keys(tensors), [...PROTO_NAMES, 'w']);
  PROTO_NAMES.forEach((name, i) => {
    assert.ok(Object.hasOwn(tensors, name), name);
    assert.deepEqual(tensors[name].dims, [i + 1], name);
    assert.equal(tensors[name].data.length, i + 1, name);
  });
  assert.deepEqual(tensors.w.dims, [2, 2]);
  // Nothing a name did reached the prototypes.
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.equal(typeof ({}).hasOwnProperty, 'function');
});

test('metadata keys that are Object.prototype\'s are own entries', () => {
  const metadata = JSON.parse('{"__proto__": "x", "constructor": "y", "format": "pt"}');
  const { metadata: got } = parseSafetensors(tensorFile({ w: [1] }, metadata));
  assert.deepEqual(Object.keys(got), ['__proto__', 'constructor', 'format']);
  assert.ok(Object.hasOwn(got, '__proto__'));
  assert.equal(Object.getOwnPropertyDescriptor(got, '__proto__').value, 'x');
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  assert.equal(got.constructor, 'y');
});

test('layouts look keys up as own entries: prototype names around a layer change nothing', () => {
  const specs = { ...torchLayer(4, 'layer.'), ...Object.fromEntries(PROTO_NAMES.flatMap((n) => [[n, [1]], [`layer.${n}`, [1]]])) };
  const { layout, stateDict, options } = safetensorsToStateDict(tensorFile(specs), { prefix: 'layer.' });
  assert.equal(layout, 'torch');
  assert.deepEqual(Object.keys(stateDict).sort(), ['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']);
  assert.deepEqual(options, { embedDim: 4, kdim: 4, vdim: 4, bias: true, addBiasKV: false });
  // A prefix that is itself a prototype name.
  const underProto = safetensorsToStateDict(tensorFile(torchLayer(4, '__proto__.')), { prefix: '__proto__.' });
  assert.deepEqual(underProto.stateDict['out_proj.weight'].dims, [4, 4]);
  // Only prototype names: no layer, and the listing names them.
  assert.throws(() => safetensorsToStateDict(tensorFile(Object.fromEntries(PROTO_NAMES.map((n) => [n, [1]])))),
    (err) => err instanceof RangeError && /no attention layer recognised under prefix ''.*keys found there: __proto__, constructor, hasOwnProperty/.test(err.message));
});

test('keys inherited from a polluted Object.prototype stand in for nothing', () => {
  const fake = { data: new Float32Array(16), dims: [4, 4] };
  Object.prototype['out_proj.weight'] = fake;
  Object.prototype['in_proj_weight'] = fake;
  Object.prototype.dtype = 'F32';
  Object.prototype.shape = [1];
  try {
    assert.throws(() => safetensorsToStateDict(tensorFile({ other: [1] })), /no attention layer recognised/);
    assert.throws(() => safetensorsToStateDict(tensorFile({ 'out_proj.weight': [4, 4] }), { layout: 'torch' }),
      /layout 'torch' needs 'q_proj_weight', which is missing/);
    assert.throws(() => parseSafetensors(build({ w: { data_offsets: [0, 4] } }, four)), /tensor 'w' has no dtype/);
  } finally {
    delete Object.prototype['out_proj.weight'];
    delete Object.prototype['in_proj_weight'];
    delete Object.prototype.dtype;
    delete Object.prototype.shape;
  }
});

const refusedHeaders = [
  // __metadata__: an object of strings, nothing else.
  ['__metadata__ that is null', { __metadata__: null, ...good }, '__metadata__ is null; expected an object of string values'],
  ['__metadata__ that is an array', { __metadata__: ['pt'], ...good }, '__metadata__ is an array ["pt"]; expected an object of string values'],
  ['__metadata__ that is a string', { __metadata__: 'pt', ...good }, '__metadata__ is a string ("pt")'],
  ['a metadata number', { __metadata__: { format: 'pt', step: 3 }, ...good }, "__metadata__ 'step' is a number (3); the format allows only string values"],
  ['a metadata null', { __metadata__: { format: null }, ...good }, "__metadata__ 'format' is null"],
  ['a metadata object', { __metadata__: { format: { a: 'b' } }, ...good }, "__metadata__ 'format' is an object"],
  ['a metadata boolean', { __metadata__: { ok: true }, ...good }, "__metadata__ 'ok' is a boolean (true)"],
  ['a metadata array', { __metadata__: { tags: ['a'] }, ...good }, "__metadata__ 'tags' is an array [\"a\"]"],
  // Fields of the wrong type.
  ['a description that is not an object', { w: [1, 2] }, "tensor 'w' is described by an array [1,2]; expected an object { dtype, shape, data_offsets }"],
  ['a missing dtype', { w: { shape: [2, 2], data_offsets: [0, 16] } }, "tensor 'w' has no dtype"],
  ['a missing shape', { w: { dtype: 'F32', data_offsets: [0, 16] } }, "tensor 'w' has no shape"],
  ['missing data_offsets', { w: { dtype: 'F32', shape: [2, 2] } }, "tensor 'w' has no data_offsets"],
  ['a dtype that is a number', { w: { ...good.w, dtype: 32 } }, "tensor 'w' has dtype a number (32); supported: F32, F64, F16, BF16"],
  ['a dtype in an array', { w: { ...good.w, dtype: ['F32'] } }, "tensor 'w' has dtype an array [\"F32\"]; supported"],
  ['a dtype named after Object.prototype', { w: { ...good.w, dtype: '__proto__' } }, "tensor 'w' has dtype \"__proto__\"; supported"],
  ['a dtype "constructor"', { w: { ...good.w, dtype: 'constructor' } }, "tensor 'w' has dtype \"constructor\"; supported"],
  ['a shape that is a string', { w: { ...good.w, shape: '[2, 2]' } }, "tensor 'w' has shape a string (\"[2, 2]\"); expected an array of non-negative integers"],
  ['a fractional dim', { w: { ...good.w, shape: [2.5, 2] } }, "tensor 'w' has shape [2.5,2]; expected an array of non-negative integers (dim 0 is 2.5, not an integer)"],
  ['a dim that is a string', { w: { ...good.w, shape: [2, '2'] } }, '(dim 1 is a string ("2"))'],
  ['a dim past 2^53', { w: { ...good.w, shape: [2 ** 53, 2] } }, '(dim 0 is 9007199254740992, beyond 2^53)'],
  ['a shape of more than 2^53 elements', { w: { ...good.w, shape: [2 ** 32, 2 ** 32] } }, "tensor 'w' has shape [4294967296,4294967296]: more than 2^53 elements"],
  ['a shape needing more bytes than the data has', { w: { ...good.w, shape: [1000, 1000] } },
    "tensor 'w' of shape [1000, 1000] and dtype F32 needs 4000000 bytes, its offsets span 16 (and the data has only 16)"],
  ['offsets past 2^53', { w: { ...good.w, data_offsets: [0, 2 ** 53] } }, 'has data_offsets [0,9007199254740992]; expected [begin, end] with 0 <= begin <= end, integers below 2^53'],
  ['fractional offsets', { w: { ...good.w, data_offsets: [0.5, 16.5] } }, 'has data_offsets [0.5,16.5]'],
  ['negative offsets', { w: { ...good.w, data_offsets: [-4, 12] } }, 'has data_offsets [-4,12]'],
  ['offsets as strings', { w: { ...good.w, data_offsets: ['0', '16'] } }, 'has data_offsets ["0","16"]'],
  ['three offsets', { w: { ...good.w, data_offsets: [0, 8, 16] } }, 'has data_offsets [0,8,16]'],
  ['offsets that are an object', { w: { ...good.w, data_offsets: { begin: 0, end: 16 } } }, 'has data_offsets an object'],
];
for (const [what, header, message] of refusedHeaders) {
  test(`parseSafetensors refuses ${what}`, () => {
    assert.throws(() => parseSafetensors(build(header, four)), (err) => {
      assert.equal(err.constructor, RangeError, err.message);
      assert.ok(err.message.startsWith('safetensors: '), err.message);
      assert.ok(err.message.includes(message), `"${err.message}"\n lacks "${message}"`);
      return true;
    });
  });
}

test('parseSafetensors accepts the header padded with spaces, -0, 1.0 and empty tensors anywhere', () => {
  const header = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, e: { dtype: 'F64', shape: [0, 5], data_offsets: [16, 16] } };
  const text = `${JSON.stringify(header).replace('"shape":[2,2]', '"shape":[2.0,2]').replace('[0,5]', '[-0,5]').replace('[16,16]', '[16,16.0]')}   `;
  assert.ok(text.includes('[-0,5]') && text.includes('[2.0,2]') && text.endsWith('}   '), text);
  const { tensors } = parseSafetensors(build(null, four, text));
  assert.deepEqual(Array.from(tensors.w.data), [1, 2, 3, 4]);
  assert.deepEqual(tensors.e.dims, [0, 5]);
  assert.ok(!Object.is(tensors.e.dims[0], -0));
});

// ---- Layouts: ranks and agreeing shapes, refused by name before a layer is made.

function refusesLayout(what, specs, options, patterns, fields) {
  test(`safetensorsToStateDict refuses ${what}`, async () => {
    const bytes = tensorFile(specs);
    const check = (err) => {
      assert.equal(err.constructor, RangeError, err.message);
      assert.ok(err.message.startsWith('safetensors: '), err.message);
      for (const p of patterns) assert.ok(err.message.includes(p), `"${err.message}"\n lacks "${p}"`);
      if (fields) for (const [k, v] of Object.entries(fields)) assert.equal(err[k], v, `${k}: ${err.message}`);
      return true;
    };
    assert.throws(() => safetensorsToStateDict(bytes, options), check);
    await assert.rejects(MultiheadAttention.fromSafetensors(bytes, { ...options, numHeads: 1 }), check);
  });
}
const E = 4;
refusesLayout('a 1-D out_proj.weight', { ...torchLayer(E), 'out_proj.weight': [16] }, {},
  ["'out_proj.weight' must be 2-D", 'got dims [16]'], { argument: 'out_proj.weight', actual: '[16]' });
refusesLayout('a 3-D in_proj_weight', { ...torchLayer(E), in_proj_weight: [3, E, E] }, {},
  ["'in_proj_weight' must be 2-D", 'got dims [3, 4, 4]']);
refusesLayout('a 2-D in_proj_bias', { ...torchLayer(E), in_proj_bias: [3 * E, 1] }, {},
  ["'in_proj_bias' must be 1-D", 'got dims [12, 1]']);
refusesLayout('a 2-D out_proj.bias', { ...torchLayer(E), 'out_proj.bias': [1, E] }, {},
  ["'out_proj.bias' must be 1-D", 'got dims [1, 4]']);
refusesLayout('a non-square out_proj.weight', { ...torchLayer(E), 'out_proj.weight': [E, 2 * E] }, {},
  ["'out_proj.weight' must be square [E, E]", 'got dims [4, 8]']);
refusesLayout('in_proj_weight rows that are not 3 * out_proj.weight rows', { ...torchLayer(E), in_proj_weight: [2 * E, E] }, {},
  ["'in_proj_weight' has dims [8, 4] but 'out_proj.weight' has [4, 4]", "with E = 4 from 'out_proj.weight', 'in_proj_weight' must be [12, 4]"],
  { argument: 'in_proj_weight', expected: '[12, 4]', actual: '[8, 4]' });
refusesLayout('an in_proj_bias that disagrees with out_proj.weight', { ...torchLayer(E), in_proj_bias: [3 * E + 1] }, {},
  ["'in_proj_bias' has dims [13] but 'out_proj.weight' has [4, 4]", 'must be [12]']);
refusesLayout('k_proj_weight rows that disagree with out_proj.weight', {
  q_proj_weight: [E, E], k_proj_weight: [E + 1, 3], v_proj_weight: [E, 2], 'out_proj.weight': [E, E] }, {},
['\'k_proj_weight\' has dims [5, 3] but \'out_proj.weight\' has [4, 4]', 'must be [4, *]']);
refusesLayout('an empty embedding', { in_proj_weight: [0, 0], 'out_proj.weight': [0, 0] }, {},
  ["'out_proj.weight' has dims [0, 0]; an attention layer has no empty dims"]);
refusesLayout('in_proj_bias without out_proj.bias', { in_proj_weight: [3 * E, E], in_proj_bias: [3 * E], 'out_proj.weight': [E, E] }, {},
  ["'in_proj_bias' is present but 'out_proj.bias' is missing", 'both biases or neither']);
refusesLayout('bias_k without bias_v', { ...torchLayer(E), bias_k: [1, 1, E] }, {},
  ["'bias_k' is present but 'bias_v' is missing"]);
refusesLayout('a bias_k of the wrong dims', { ...torchLayer(E), bias_k: [1, 1, E + 1], bias_v: [1, 1, E] }, {},
  ["'bias_k' has dims [1, 1, 5] but 'out_proj.weight' has [4, 4]", 'must be [1, 1, 4]']);
refusesLayout('in_proj_weight and q_proj_weight both', { ...torchLayer(E), q_proj_weight: [E, E] }, {},
  ["'in_proj_weight' and 'q_proj_weight' are both present"]);

const bertLayer = (E = 4, over = {}) => ({
  'a.self.query.weight': [E, E], 'a.self.query.bias': [E], 'a.self.key.weight': [E, E], 'a.self.key.bias': [E],
  'a.self.value.weight': [E, E], 'a.self.value.bias': [E], 'a.output.dense.weight': [E, E], 'a.output.dense.bias': [E], ...over,
});
refusesLayout('a BERT key wider than the query', bertLayer(E, { 'a.self.key.weight': [E + 4, E] }), { prefix: 'a.' },
  ["'a.self.key.weight' has dims [8, 4] but 'a.self.query.weight' has [4, 4]", "with E = 4 from 'a.self.query.weight', 'a.self.key.weight' must be [4, *]"],
  { argument: 'a.self.key.weight' });
refusesLayout('a BERT output of another width', bertLayer(E, { 'a.output.dense.weight': [E, 2 * E] }), { prefix: 'a.' },
  ["'a.output.dense.weight' has dims [4, 8] but 'a.self.query.weight' has [4, 4]", 'must be [4, 4]']);
refusesLayout('a 1-D BERT value weight', bertLayer(E, { 'a.self.value.weight': [E * E] }), { prefix: 'a.' },
  ["'a.self.value.weight' must be 2-D", 'got dims [16]']);
refusesLayout('a BERT bias that disagrees with its weight', bertLayer(E, { 'a.self.value.bias': [E + 1] }), { prefix: 'a.' },
  ["'a.self.value.bias' has dims [5] but 'a.self.value.weight' has [4, 4]", 'must be [4]']);
refusesLayout('BERT with some biases and not others', (() => { const s = bertLayer(E); delete s['a.self.key.bias']; return s; })(), { prefix: 'a.' },
  ["'a.self.query.bias', 'a.self.value.bias', 'a.output.dense.bias' are present but 'a.self.key.bias' is missing"]);

const gpt2Layer = (E = 4, over = {}) => ({ 'c_attn.weight': [E, 3 * E], 'c_attn.bias': [3 * E], 'c_proj.weight': [E, E], 'c_proj.bias': [E], ...over });
refusesLayout('a GPT-2 c_attn that is not [E, 3E]', gpt2Layer(E, { 'c_attn.weight': [E, 2 * E] }), {},
  ["'c_attn.weight' must be [E, 3E]", 'got dims [4, 8]'], { expected: '[4, 12]', actual: '[4, 8]' });
refusesLayout('a GPT-2 c_attn stored as nn.Linear [3E, E]', gpt2Layer(E, { 'c_attn.weight': [3 * E, E] }), {},
  ["'c_attn.weight' must be [E, 3E]", 'got dims [12, 4]']);
refusesLayout('a GPT-2 c_proj that disagrees with c_attn', gpt2Layer(E, { 'c_proj.weight': [2 * E, 2 * E] }), {},
  ["'c_proj.weight' has dims [8, 8] but 'c_attn.weight' has [4, 12]", 'must be [4, 4]']);
refusesLayout('a 1-D GPT-2 c_proj.weight', gpt2Layer(E, { 'c_proj.weight': [E * E] }), {},
  ["'c_proj.weight' must be 2-D", 'got dims [16]']);
refusesLayout('a GPT-2 c_attn.bias of the wrong length', gpt2Layer(E, { 'c_attn.bias': [E] }), {},
  ["'c_attn.bias' has dims [4] but 'c_attn.weight' has [4, 12]", 'must be [12]']);
refusesLayout('GPT-2 with c_proj.bias but no c_attn.bias', (() => { const s = gpt2Layer(E); delete s['c_attn.bias']; return s; })(), {},
  ["'c_proj.bias' is present but 'c_attn.bias' is missing"]);

test('separate q/k/v_proj_weight with kdim = vdim = E load as the fused in_proj_weight', async () => {
  const specs = { q_proj_weight: [E, E], k_proj_weight: [E, E], v_proj_weight: [E, E], in_proj_bias: [3 * E], 'out_proj.weight': [E, E], 'out_proj.bias': [E] };
  const bytes = tensorFile(specs);
  const { stateDict, options } = safetensorsToStateDict(bytes);
  assert.deepEqual(Object.keys(stateDict).sort(), ['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']);
  const { tensors } = parseSafetensors(bytes);
  assert.deepEqual(Array.from(stateDict.in_proj_weight.data),
    [...tensors.q_proj_weight.data, ...tensors.k_proj_weight.data, ...tensors.v_proj_weight.data]);
  assert.deepEqual(options, { embedDim: E, kdim: E, vdim: E, bias: true, addBiasKV: false });
  const mha = await MultiheadAttention.fromSafetensors(bytes, { numHeads: 2 });
  mha.dispose();
});

test('separate q/k/v_proj_weight with other kdim and vdim, and bias_k/bias_v, load as such', async () => {
  const specs = { q_proj_weight: [E, E], k_proj_weight: [E, 3], v_proj_weight: [E, 2], bias_k: [1, 1, E], bias_v: [1, 1, E], 'out_proj.weight': [E, E] };
  const { stateDict, options } = safetensorsToStateDict(tensorFile(specs));
  assert.deepEqual(options, { embedDim: E, kdim: 3, vdim: 2, bias: false, addBiasKV: true });
  assert.deepEqual(Object.keys(stateDict).sort(), ['bias_k', 'bias_v', 'k_proj_weight', 'out_proj.weight', 'q_proj_weight', 'v_proj_weight']);
  const mha = await MultiheadAttention.fromSafetensors(tensorFile(specs), { numHeads: 2 });
  assert.equal(mha.kdim, 3);
  mha.dispose();
});
