// Shared setup of the Node suite: the package entry as users import it, the
// PyTorch fixtures, and the comparison with an explicit tolerance.
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

import { randomFloats } from '../../common/prng.js';

export * from '../../dist/index.js';

const fixturesDir = new URL('../fixtures/', import.meta.url);
const TYPED = { float32: Float32Array, float64: Float64Array, uint8: Uint8Array, int32: Int32Array };

// tests/fixtures/mha_cases.{json,bin}, written by tests/fixtures/generate.py
// with PyTorch in float64. Tensors are decoded to { data, dims }.
export function loadFixtures() {
  const manifest = JSON.parse(readFileSync(new URL('mha_cases.json', fixturesDir), 'utf8'));
  const bin = readFileSync(new URL('mha_cases.bin', fixturesDir));
  const tensor = (ref) => {
    const T = TYPED[ref.dtype];
    const bytes = bin.buffer.slice(bin.byteOffset + ref.offset, bin.byteOffset + ref.offset + ref.length * T.BYTES_PER_ELEMENT);
    return { data: new T(bytes), dims: ref.dims };
  };
  const decode = (obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) =>
    [k, v !== null && typeof v === 'object' && 'dtype' in v ? tensor(v) : v]));
  return manifest.cases.map((c) => ({
    ...c,
    stateDict: decode(c.stateDict),
    query: tensor(c.query),
    key: c.key ? tensor(c.key) : null,
    value: c.value ? tensor(c.value) : null,
    options: decode(c.options ?? {}),
    expected: decode(c.expected),
  }));
}

// One fixture case through the public API of `api` (a loaded copy of the
// package): the layer made and loaded, every result asked for, disposed.
export async function runFixtureCase({ MultiheadAttention }, c) {
  const mha = await MultiheadAttention.create(c.config);
  try {
    mha.loadStateDict(c.stateDict);
    return mha.forward(c.query, c.key, c.value, { ...c.options, returnHeads: true, returnConcat: true });
  } finally {
    mha.dispose();
  }
}

// The tolerance a fixture case states for one part of its results.
export const toleranceOf = (c, part) => c.float32Tolerance?.[part] ?? c.float32Tolerance ?? {};

// |got - want| <= atol + rtol * |want| everywhere; NaN exactly where expected.
// Returns the largest absolute error, for reporting.
export function assertClose(got, want, { atol = 1e-4, rtol = 1e-4, what = 'tensor' } = {}) {
  assert.deepEqual(got.dims, want.dims, `${what}: dims`);
  assert.equal(got.data.length, want.data.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) {
    const g = got.data[i], w = want.data[i];
    if (Number.isNaN(w)) {
      assert.ok(Number.isNaN(g), `${what}[${i}]: expected NaN, got ${g}`);
      continue;
    }
    const err = Math.abs(g - w);
    if (!(err <= atol + rtol * Math.abs(w)))
      assert.fail(`${what}[${i}]: got ${g}, expected ${w} (|error| ${err} > ${atol} + ${rtol}·|expected|)`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** A safetensors file: the header object, then the parts (byte arrays) in order. */
export function encodeSafetensors(header, parts) {
  const text = new TextEncoder().encode(JSON.stringify(header));
  const dataLength = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(8 + text.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  let at = 8 + text.length;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}

// Deterministic inputs for tests that need no reference values: uniform in
// [-scale, scale), from the project's one seeded PRNG.
export function randomTensor(dims, seed = 1, scale = 1) {
  return { data: randomFloats(dims.reduce((a, b) => a * b, 1), seed, scale), dims };
}

// tests/fixtures/decoder_cases.{json,bin}, written by
// tests/fixtures/generate_decoder.py (float64, two independent references):
// { single, sequences, dtypes }, tensors decoded to { data, dims }.
export function loadDecoderFixtures() {
  const manifest = JSON.parse(readFileSync(new URL('decoder_cases.json', fixturesDir), 'utf8'));
  const bin = readFileSync(new URL('decoder_cases.bin', fixturesDir));
  const decode = (v) => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map(decode);
    if ('dtype' in v && 'offset' in v) {
      const T = TYPED[v.dtype];
      return { data: new T(bin.buffer.slice(bin.byteOffset + v.offset, bin.byteOffset + v.offset + v.length * T.BYTES_PER_ELEMENT)), dims: v.dims };
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
  };
  return { single: manifest.single.map(decode), sequences: manifest.sequences.map(decode), dtypes: manifest.dtypes.map(decode) };
}

// A decoder fixture's create options: its config, with the biases its
// state dict has.
export function decoderCreateOptions(c) {
  const has = (p) => `${p}_proj.bias` in c.stateDict;
  return { ...c.config, bias: { q: has('q'), k: has('k'), v: has('v'), o: has('o') },
    ...(c.weightDtype === undefined ? {} : { weightDtype: c.weightDtype }) };
}

// assertClose over the rows a fixture specifies: rows [b, i] of ignoreRows
// (padding queries, whose results are unspecified) are left out. `rowAxes`
// says where b and i are in the tensor's dims (output [B, Lq, E]: [0, 1];
// weights [B, H, Lq, S]: [0, 2]).
export function assertCloseExceptRows(got, want, ignoreRows, rowAxes, options) {
  if (!ignoreRows || ignoreRows.length === 0) return assertClose(got, want, options);
  assert.deepEqual(got.dims, want.dims, `${options.what}: dims`);
  const dims = want.dims, strides = dims.map((_, k) => dims.slice(k + 1).reduce((a, b) => a * b, 1));
  const ignored = new Set(ignoreRows.map(([b, i]) => `${b},${i}`));
  const keep = (n) => !ignored.has(`${Math.floor(n / strides[rowAxes[0]]) % dims[rowAxes[0]]},${Math.floor(n / strides[rowAxes[1]]) % dims[rowAxes[1]]}`);
  const pick = (t) => ({ dims: [t.data.length], data: Float64Array.from(t.data.filter((_, n) => keep(n))) });
  const g = pick(got), w = pick(want);
  g.dims = [g.data.length];
  w.dims = [w.data.length];
  return assertClose(g, w, options);
}

const ROW_AXES = { output: [0, 1], weights: [0, 2], heads: [0, 2], concat: [0, 1] };

// One decoder fixture case ("single": one call, no cache) through the public
// API of `api`; returns the worst absolute error per part.
export async function checkDecoderCase({ MultiheadAttention }, c) {
  const mha = await MultiheadAttention.create(decoderCreateOptions(c));
  let result;
  try {
    mha.loadStateDict(c.stateDict);
    result = mha.forward(c.x, c.kv ?? null, c.kv ?? null, c.options);
  } finally {
    mha.dispose();
  }
  const worst = {};
  for (const part of ['output', 'weights', 'heads', 'concat'])
    worst[part] = assertCloseExceptRows(result[part], c.expected[part], c.ignoreRows, ROW_AXES[part],
      { ...toleranceOf(c, part), what: `${c.name} ${part}` });
  return worst;
}

// Rows [start, start + n) of x [B, T, E], as [B, n, E].
function sliceRows(x, start, n) {
  const [B, T, E] = x.dims;
  const data = new Float32Array(B * n * E);
  for (let b = 0; b < B; b++) data.set(x.data.subarray((b * T + start) * E, (b * T + start + n) * E), b * n * E);
  return { data, dims: [B, n, E] };
}

// One decoder fixture sequence (a cache's or an encoder memory's steps)
// through the public API of `api`, every step held to its expected rows.
export async function checkDecoderSequence({ MultiheadAttention, KVCache, EncoderMemory }, c) {
  const mha = await MultiheadAttention.create(decoderCreateOptions(c));
  mha.loadStateDict(c.stateDict);
  const source = c.memory ? mha.projectMemory(c.memory) : mha.createCache({ batch: c.x.dims[0], capacity: c.capacity });
  assert.ok(source instanceof (c.memory ? EncoderMemory : KVCache));
  try {
    for (const [n, step] of c.steps.entries()) {
      if (step.op === 'reset') { source.reset(); assert.equal(source.length, 0); continue; }
      if (step.op === 'truncate') { source.truncate(step.length); assert.equal(source.length, step.length); continue; }
      const x = sliceRows(c.x, step.start, step.length);
      const options = { needWeights: 'per-head', returnHeads: true, returnConcat: true };
      if (step.positions) options.positions = step.positions;
      if (step.keyPaddingMask) options.keyPaddingMask = step.keyPaddingMask;
      const r = c.memory ? mha.forward(x, source, null, options) : mha.forward(x, null, null, { ...options, cache: source });
      for (const part of ['output', 'weights', 'heads', 'concat'])
        assertCloseExceptRows(r[part], step.expected[part], step.ignoreRows, ROW_AXES[part],
          { ...toleranceOf(c, part), what: `${c.name} step ${n} ${part}` });
      if (!c.memory) assert.equal(source.length, step.past + step.length);
    }
  } finally {
    source.dispose();
    mha.dispose();
  }
}

// f16 projections take their activations times 2^112 wherever every |x| of
// the block (or the single row) is < 2^16: the same products, so the same
// bits as the plain path. One token and five tokens (scaled up unless `big`
// is one of their activations) against the first rows of a causal call whose
// sixth token has an activation of 70000, so that its projections take the
// plain path; weight_dtypes.test.js says more. Five and six tokens attend
// the same way (tiles), and a first token's output is its value row whatever
// the path, so any difference is the projections'.
export async function checkF16ScaledRows(MultiheadAttention, big) {
  const E = 64, rows = 6;
  const mha = await MultiheadAttention.create({ embedDim: E, numHeads: 4, weightDtype: 'f16', seed: 11 });
  try {
    const x = new Float32Array(rows * E).map((_, i) => Math.sin(i * 1.7) * 3);
    x[5] = big;
    x[(rows - 1) * E + 9] = 70000;
    const run = (n) => mha.forward({ data: x.slice(0, n * E), dims: [n, E] }, null, null, { isCausal: true }).output.data;
    const all = run(rows);
    for (const n of [1, rows - 1]) {
      const some = run(n);
      const differs = some.findIndex((v, i) => !Object.is(v, all[i]));
      assert.equal(differs, -1, `f16, ${n} token(s), activation ${big}, value ${differs}: ${some[differs]} against ${all[differs]} in the ${rows}-token call`);
    }
  } finally {
    mha.dispose();
  }
}

// int8 projections of a single row take two k rows at a time in the relaxed
// builds, the codes times 2^24 against the activations times 2^-24, unless
// an activation is below 2^-102 in magnitude (and not 0), where they take
// the plain path; the products are the same, so are the bits. Input feature
// 7 meets only zero weights in the input projections, so a token with
// x[7] = 1e-35 (plain path) and the same token with x[7] = 0 (scaled path)
// must give the same output bit for bit, on every build.
export async function checkInt8ScaledRow(MultiheadAttention) {
  const E = 64;
  const mha = await MultiheadAttention.create({ embedDim: E, numHeads: 4, weightDtype: 'int8', seed: 12 });
  try {
    const dict = mha.stateDict();
    const w = dict.in_proj_weight;  // [3E, E]
    for (let r = 0; r < 3 * E; ++r) w.data[r * E + 7] = 0;
    mha.loadStateDict(dict);
    const x = new Float32Array(E).map((_, i) => Math.sin(i * 1.3) * 2);
    const run = (x7) => { x[7] = x7; return mha.forward({ data: x, dims: [1, E] }).output.data; };
    const scaled = run(0), plain = run(1e-35);
    const differs = scaled.findIndex((v, i) => !Object.is(v, plain[i]));
    assert.equal(differs, -1, `int8 single row, value ${differs}: ${scaled[differs]} (scaled path) against ${plain[differs]} (plain path)`);
  } finally {
    mha.dispose();
  }
}
