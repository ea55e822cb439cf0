// Mutation fuzz of the safetensors reader: the committed files and one built
// here, truncated, bit-flipped and edited in hostile ways. The property, for
// every input, of parseSafetensors and safetensorsToStateDict:
//
//   - either a well-formed result: every tensor's data a Float32Array with as
//     many values as its dims say, metadata all strings, and a state_dict
//     whose keys and dims are exactly those of the layer its options describe
//     (so loadStateDict takes it);
//   - or a TypeError/RangeError whose message starts with 'safetensors:' or
//     names its argument; never another error, never a hang (each call under
//     100 ms).
//
// The generator is seeded, so every run makes the same inputs; a failure
// prints the input's label and bytes (base64) to replay. Counterexamples the
// fuzz found are kept below as named regression tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { mulberry32 } from '../../common/prng.js';

import { parseSafetensors, safetensorsToStateDict, MultiheadAttention } from '../../dist/index.js';

const dir = new URL('../fixtures/safetensors/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8'));

// The project's seeded PRNG: the same inputs every run.
function generator(seed) {
  const next = mulberry32(seed);
  return { next, int: (n) => Math.floor(next() * n) };
}

// A file from header text (or an object), data bytes and, optionally, a
// header length field that lies.
function build(header, data = new Uint8Array(0), claimedLength) {
  const text = typeof header === 'string' || header instanceof Uint8Array ? header : JSON.stringify(header);
  const head = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  const bytes = new Uint8Array(8 + head.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, claimedLength ?? BigInt(head.length), true);
  bytes.set(head, 8);
  bytes.set(data, 8 + head.length);
  return bytes;
}
const headerOf = (bytes) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { text: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
};

// A small torch layer (E = 4, kdim 3, vdim 2, biases, bias_k/v) in mixed
// dtypes, with metadata: the seed file built here.
function builtFile() {
  const E = 4;
  const specs = [
    ['q_proj_weight', 'F32', [E, E]], ['k_proj_weight', 'F16', [E, 3]], ['v_proj_weight', 'BF16', [E, 2]],
    ['in_proj_bias', 'F64', [3 * E]], ['bias_k', 'F32', [1, 1, E]], ['bias_v', 'F32', [1, 1, E]],
    ['out_proj.weight', 'F16', [E, E]], ['out_proj.bias', 'F32', [E]],
  ];
  const size = { F32: 4, F64: 8, F16: 2, BF16: 2 };
  const header = { __metadata__: { format: 'pt', note: 'built in safetensors_fuzz' } };
  let at = 0;
  for (const [name, dtype, shape] of specs) {
    const n = shape.reduce((a, b) => a * b, 1) * size[dtype];
    header[name] = { dtype, shape, data_offsets: [at, at + n] };
    at += n;
  }
  const rng = generator(7);
  const data = new Uint8Array(at);
  // Bytes that decode to small finite values in every dtype: exponent bits kept low.
  for (let i = 0; i < at; i++) data[i] = i % 2 === 1 ? 0x3c : rng.int(256);
  return build(header, data);
}

const seeds = [
  ...Object.values(manifest.cases).map((c) => ({ label: c.file, bytes: new Uint8Array(readFileSync(new URL(c.file, dir))), prefix: c.prefix })),
  { label: 'built', bytes: builtFile(), prefix: '' },
];

const product = (dims) => dims.reduce((a, b) => a * b, 1);

// The keys and dims of the layer `options` describes (parameters.cpp).
function layerShapes({ embedDim: e, kdim, vdim, bias, addBiasKV }) {
  const shapes = {};
  if (kdim === e && vdim === e) shapes.in_proj_weight = [3 * e, e];
  else Object.assign(shapes, { q_proj_weight: [e, e], k_proj_weight: [e, kdim], v_proj_weight: [e, vdim] });
  if (bias) shapes.in_proj_bias = [3 * e];
  if (addBiasKV) Object.assign(shapes, { bias_k: [1, 1, e], bias_v: [1, 1, e] });
  shapes['out_proj.weight'] = [e, e];
  if (bias) shapes['out_proj.bias'] = [e];
  return shapes;
}

// Why `result` of parseSafetensors is not well-formed, or null.
function badParse(result) {
  const { tensors, metadata } = result;
  if (tensors === null || typeof tensors !== 'object') return 'tensors is not an object';
  for (const name of Object.keys(tensors)) {
    const t = tensors[name];
    if (!(t.data instanceof Float32Array)) return `${name}: data is not a Float32Array`;
    if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) return `${name}: bad dims`;
    if (t.data.length !== product(t.dims)) return `${name}: ${t.data.length} values for dims [${t.dims}]`;
    if (!['F32', 'F64', 'F16', 'BF16'].includes(t.dtype)) return `${name}: dtype ${t.dtype}`;
  }
  for (const key of Object.keys(metadata)) if (typeof metadata[key] !== 'string') return `metadata ${key} is not a string`;
  return null;
}

// Why `result` of safetensorsToStateDict is not well-formed, or null.
function badStateDict(result) {
  const { stateDict, options } = result;
  for (const k of ['embedDim', 'kdim', 'vdim'])
    if (!Number.isSafeInteger(options[k]) || options[k] < 1) return `options.${k} is ${options[k]}`;
  const want = layerShapes(options);
  const keys = Object.keys(stateDict);
  if ([...keys].sort().join() !== Object.keys(want).sort().join()) return `keys ${keys} but the layer has ${Object.keys(want)}`;
  for (const key of keys) {
    const t = stateDict[key];
    if (!(t.data instanceof Float32Array) || t.data.length !== product(t.dims)) return `${key}: ${t.data?.length} values for dims [${t.dims}]`;
    if (t.dims.join() !== want[key].join()) return `${key}: dims [${t.dims}], the layer wants [${want[key]}]`;
  }
  return null;
}

const wellFormedError = (err) => (err instanceof TypeError || err instanceof RangeError) &&
  (err.constructor === TypeError || err.constructor === RangeError) &&
  (err.message.startsWith('safetensors:') || (typeof err.argument === 'string' && err.message.includes(err.argument)));

const LIMIT_MS = 100;
const HANG_MS = 60_000;  // a whole fuzz test that takes this long hangs somewhere: fail, do not stall
const stats = { inputs: 0, accepted: 0, refused: 0, slowestMs: 0, slowest: '' };
const loadable = new Map();  // options JSON -> one stateDict that has them, to load into a real layer

// Runs both functions on one input; returns the problems found (none: []).
function check(label, bytes, prefix) {
  const problems = [];
  const calls = [
    ['parseSafetensors', () => parseSafetensors(bytes), badParse],
    ['safetensorsToStateDict', () => safetensorsToStateDict(bytes, { prefix }), badStateDict],
  ];
  for (const [fn, call, bad] of calls) {
    let result, error, threw = false;
    let t0 = performance.now();
    try { result = call(); } catch (err) { error = err; threw = true; }
    let ms = performance.now() - t0;
    // A slow call is timed again (twice at most): a GC pause or a busy
    // machine is not the input's doing, a slow input is slow every time.
    for (let again = 0; again < 2 && ms > LIMIT_MS; again++) {
      t0 = performance.now();
      try { call(); } catch { /* as before */ }
      ms = Math.min(ms, performance.now() - t0);
    }
    const where = `${label}: ${fn}`;
    stats.inputs++;
    if (ms > stats.slowestMs) Object.assign(stats, { slowestMs: ms, slowest: where });
    if (threw) stats.refused++;
    else stats.accepted++;
    if (ms > LIMIT_MS) problems.push(`${where} took ${ms.toFixed(1)} ms`);
    if (threw) {
      if (!wellFormedError(error)) problems.push(`${where} threw ${error?.constructor?.name}: ${String(error?.message).slice(0, 200)}`);
    } else {
      let why;
      try { why = bad(result); } catch (err) { why = `checking it threw ${err.message}`; }
      if (why !== null) problems.push(`${where} returned a malformed result: ${why}`);
      else if (fn === 'safetensorsToStateDict' && loadable.size < 12) {
        const key = JSON.stringify(result.options);
        if (!loadable.has(key)) loadable.set(key, result);
      }
    }
  }
  return problems.map((p) => ({ problem: p, bytes }));
}

const tagOf = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Int8Array.prototype), Symbol.toStringTag).get;

// Fails listing one example of each kind of problem found (kinds: the
// problem without its input's label and numbers), with its input in base64.
function report(found) {
  if (found.length === 0) return;
  const kinds = new Map();
  for (const f of found) {
    const kind = f.problem.replace(/^.*?: (parseSafetensors|safetensorsToStateDict)/, '$1').replace(/\d+/g, 'N').slice(0, 160);
    if (!kinds.has(kind)) kinds.set(kind, { ...f, count: 0 });
    kinds.get(kind).count++;
  }
  const shown = [...kinds.values()].slice(0, 12).map(({ problem, bytes, count }) => {
    const raw = tagOf.call(bytes) === 'Uint8Array' ? `(${bytes.length} bytes) ${Buffer.from(bytes.subarray(0, 400)).toString('base64')}${bytes.length > 400 ? '…' : ''}` : '(not bytes)';
    return `[${count}x] ${problem.slice(0, 400)}\n    e.g. input ${raw}`;
  });
  assert.fail(`${found.length} inputs broke the property, ${kinds.size} kinds:\n${shown.join('\n')}`);
}

test('fuzz: the seed files themselves are well-formed', { timeout: HANG_MS }, () => {
  for (const { label, bytes, prefix } of seeds) {
    report(check(label, bytes, prefix));
    assert.ok(Object.keys(parseSafetensors(bytes).tensors).length > 0, label);
    safetensorsToStateDict(bytes, { prefix });
  }
});

test('fuzz: truncated at every byte of the length and the header, and at sampled data bytes', { timeout: HANG_MS }, () => {
  const found = [];
  const rng = generator(1);
  for (const { label, bytes, prefix } of seeds) {
    const { text } = headerOf(bytes);
    const headerEnd = 8 + new TextEncoder().encode(text).length;
    const cuts = new Set();
    for (let n = 0; n <= headerEnd; n++) cuts.add(n);
    for (let i = 0; i < 48; i++) cuts.add(headerEnd + 1 + rng.int(bytes.length - headerEnd - 1));
    cuts.add(bytes.length - 1);
    for (const n of cuts) found.push(...check(`${label} cut to ${n} bytes`, bytes.slice(0, n), prefix));
    // The header cut too, with a length field that agrees: truncated JSON.
    const head = bytes.subarray(8, headerEnd);
    for (let n = 0; n < head.length; n++)
      found.push(...check(`${label} header cut to ${n} bytes`, build(head.slice(0, n), bytes.subarray(headerEnd)), prefix));
  }
  report(found);
});

test('fuzz: random byte flips (seeded)', { timeout: HANG_MS }, () => {
  const found = [];
  const rng = generator(2);
  for (const { label, bytes, prefix } of seeds) {
    const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    for (let round = 0; round < 600; round++) {
      const copy = bytes.slice();
      const flips = 1 + rng.int(4);
      for (let f = 0; f < flips; f++) {
        // Mostly the header, where the structure is; sometimes the data.
        const at = rng.next() < 0.85 ? rng.int(headerEnd) : headerEnd + rng.int(bytes.length - headerEnd);
        copy[at] = rng.next() < 0.5 ? copy[at] ^ (1 << rng.int(8)) : rng.int(256);
      }
      found.push(...check(`${label} flip round ${round}`, copy, prefix));
    }
  }
  report(found);
});

// Hostile JSON numbers and values, as raw text: some are not JSON at all.
const HOSTILE_NUMBERS = ['-1', '-0', '0.5', '1.5', '1e400', '-1e400', '1e308', '9007199254740992', '9007199254740993',
  '18446744073709551615', '18446744073709551616', '4294967296', '2147483648', 'NaN', 'Infinity', '1.0', '1e2', '0x10',
  '"16"', 'null', 'true', '[]', '{}', '[16]'];
const HOSTILE_SHAPES = ['[]', '[0]', '[-1]', '[2.5, 2]', '[1e400]', '[9007199254740991, 2]', '[4294967296, 4294967296]',
  '[0, 9007199254740991, 9007199254740991]', '[9007199254740991, 9007199254740991, 0]', '"[4, 4]"', 'null', '{}',
  '[[4], [4]]', '[4, "4"]', `[${Array(100).fill(1).join(',')}]`, '[1e308, 1e308]', '[65536, 65536, 65536, 65536]'];
const HOSTILE_OFFSETS = ['[]', '[0]', '[0, 0, 0]', '[-4, 12]', '[0.5, 16.5]', '[0, 1e400]', '[1e308, 1e308]',
  '[0, 18446744073709551616]', '[9007199254740992, 9007199254740993]', '"0,16"', 'null', '{"0":0,"1":16}', '[null, 16]',
  '[16, 0]', '[0, 9007199254740991]'];
const HOSTILE_DTYPES = ['"I8"', '"f32"', '"F32 "', '""', '"__proto__"', '"constructor"', '"toString"', 'null', '32', '["F32"]',
  '{"F32":1}', '"BOOL"', '"F8_E4M3"'];
const HOSTILE_NAMES = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf', 'prototype', '__defineGetter__',
  '', '\u0000', 'a\nb', '\ud800', 'x'.repeat(10000)];
const deep = (n, open = '[', close = ']') => open.repeat(n) + close.repeat(n);
const deepObject = (n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

// The hostile edits of one seed's header: [label, bytes].
function* hostileEdits({ bytes }) {
  const { text, data } = headerOf(bytes);
  const header = JSON.parse(text);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const first = names[0];
  // `header` with the value of `field` of tensor `name` replaced by raw JSON text.
  const withRaw = (name, field, raw) => {
    const copy = structuredClone(header);
    copy[name][field] = '@@HOLE@@';
    return JSON.stringify(copy).replace('"@@HOLE@@"', raw);
  };
  // `header` with tensor `name` described by raw JSON text.
  const withEntry = (name, raw) => JSON.stringify({ ...header, [name]: '@@HOLE@@' }).replace('"@@HOLE@@"', raw);
  for (const name of [first, names[names.length - 1]]) {
    for (const raw of HOSTILE_SHAPES) yield [`${name}.shape = ${raw.slice(0, 40)}`, build(withRaw(name, 'shape', raw), data)];
    for (const raw of HOSTILE_OFFSETS) yield [`${name}.data_offsets = ${raw}`, build(withRaw(name, 'data_offsets', raw), data)];
    for (const raw of HOSTILE_DTYPES) yield [`${name}.dtype = ${raw}`, build(withRaw(name, 'dtype', raw), data)];
    for (const raw of HOSTILE_NUMBERS) {
      const [, end] = header[name].data_offsets;
      yield [`${name}.shape[0] = ${raw}`, build(withRaw(name, 'shape', `[${raw}${header[name].shape.slice(1).map((d) => `,${d}`).join('')}]`), data)];
      yield [`${name}.data_offsets[0] = ${raw}`, build(withRaw(name, 'data_offsets', `[${raw}, ${end}]`), data)];
      yield [`${name}.data_offsets[1] = ${raw}`, build(withRaw(name, 'data_offsets', `[0, ${raw}]`), data)];
    }
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      const copy = structuredClone(header);
      delete copy[name][field];
      yield [`${name} without ${field}`, build(copy, data)];
      yield [`${name}.${field} deeply nested`, build(withRaw(name, field, deep(20000)), data)];
    }
    for (const raw of ['1', '[]', 'null', '"F32"', deep(50000)])
      yield [`${name} described by ${raw.slice(0, 20)}`, build(withEntry(name, raw), data)];
    yield [`${name} with an extra deep field`, build(withRaw(name, 'extra', deepObject(20000)), data)];
  }
  // Every tensor reshaped to other dims of the same size (the offsets stay
  // right: the layouts' shape checks must catch it), and every tensor dropped.
  for (const name of names) {
    const shape = header[name].shape, n = product(shape);
    const reshapes = [[n], [1, ...shape], [...shape].reverse(), [...shape, 1], n % 2 === 0 ? [2, n / 2] : [n, 1]];
    for (const dims of reshapes) {
      const copy = structuredClone(header);
      copy[name].shape = dims;
      yield [`${name} reshaped to [${dims}]`, build(copy, data)];
    }
    const copy = structuredClone(header);
    delete copy[name];
    yield [`${name} dropped`, build(copy, data)];
  }
  // The length field.
  const n = BigInt(new TextEncoder().encode(text).length);
  for (const claim of [0n, 1n, n - 1n, n + 1n, BigInt(bytes.length - 8), BigInt(bytes.length - 7), 2n ** 31n, 2n ** 32n,
    2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n])
    if (claim >= 0n) yield [`length field ${claim}`, build(text, data, claim)];
  // Repeated keys: a tensor, __metadata__, a field.
  yield ['a tensor named twice', build(text.replace(/}$/, `,${JSON.stringify(first)}:${JSON.stringify(header[first])}}`), data)];
  yield ['a tensor named twice, the second elsewhere', build(text.replace(/}$/,
    `,${JSON.stringify(first)}:${JSON.stringify({ ...header[first], data_offsets: [0, 0], shape: [0] })}}`), data)];
  yield ['__metadata__ twice', build(text.replace(/}$/, ',"__metadata__":{"format":"tf"}}'), data)];
  yield ['dtype twice', build(withRaw(first, 'dtype', '"F32","dtype":"F16"'), data)];
  yield ['a repeated key spelled with an escape', build(text.replace(/}$/, `,${JSON.stringify(first).replace(/^"./, (m) => `"\\u${m.charCodeAt(1).toString(16).padStart(4, '0')}`)}:${JSON.stringify(header[first])}}`), data)];
  // Names that are Object.prototype's.
  for (const name of HOSTILE_NAMES) {
    yield [`a tensor renamed ${JSON.stringify(name.slice(0, 20))}`, build(JSON.stringify(header).replace(JSON.stringify(first), JSON.stringify(name)), data)];
    yield [`an empty tensor named ${JSON.stringify(name.slice(0, 20))} added`,
      build(text.replace(/}$/, `,${JSON.stringify(name)}:{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`), data)];
  }
  // __metadata__ of the wrong kind.
  for (const raw of ['null', '[]', '"pt"', '1', '{"format":1}', '{"format":null}', '{"format":["pt"]}', '{"format":{"a":"b"}}',
    '{"__proto__":"x"}', '{"__proto__":{"polluted":"yes"}}', `{"deep":${deep(30000)}}`, '{"ok":"yes","bad":true}'])
    yield [`__metadata__ = ${raw.slice(0, 40)}`, build(text.replace(/^\{("__metadata__":\{[^}]*\},?)?/, `{"__metadata__":${raw},`), data)];
  // Not UTF-8, or not JSON.
  const head = new TextEncoder().encode(text);
  const spliced = (at, insert) => { const b = new Uint8Array(head.length + insert.length); b.set(head.subarray(0, at)); b.set(insert, at); b.set(head.subarray(at), at + insert.length); return b; };
  const inName = text.indexOf(first) + 1;
  for (const [what, insert] of [['0xff', [0xff]], ['an overlong NUL', [0xc0, 0x80]], ['a UTF-8 surrogate', [0xed, 0xa0, 0x80]],
    ['a cut multibyte character', [0xe2, 0x82]], ['a NUL', [0x00]], ['a lone continuation byte', [0x80]]])
    yield [`${what} inside a name`, build(spliced(inName, Uint8Array.from(insert)), data)];
  yield ['a byte-order mark first', build(spliced(0, Uint8Array.from([0xef, 0xbb, 0xbf])), data)];
  yield ['trailing spaces (allowed padding)', build(text + '        ', data)];
  yield ['trailing NULs', build(spliced(head.length, new Uint8Array(8)), data)];
  yield ['a second JSON value', build(text + '{}', data)];
  yield ['the header as a deep array', build(deep(100000), data)];
  yield ['the header as a deep object', build(deepObject(50000), data)];
  yield ['the header as a string', build('"safetensors"', data)];
  yield ['the header as null', build('null', data)];
  yield ['an empty header object', build('{}', data)];
  yield ['an empty header', build('', data)];
}

test('fuzz: hostile header edits', { timeout: HANG_MS }, () => {
  const found = [];
  let count = 0;
  for (const seed of seeds) {
    for (const [label, bytes] of hostileEdits(seed)) {
      found.push(...check(`${seed.label} ${label}`, bytes, seed.prefix));
      count++;
    }
  }
  assert.ok(count > 500, `${count} edits`);
  report(found);
});

test('fuzz: inputs that are not bytes, or whose buffer is gone', { timeout: HANG_MS }, () => {
  const found = [];
  const detached = new ArrayBuffer(16);
  structuredClone(detached, { transfer: [detached] });
  const hostileProxy = new Proxy(new Uint8Array(16), { getPrototypeOf() { throw new Error('trap'); }, get() { throw new Error('trap'); } });
  const inputs = [
    ['undefined', undefined], ['null', null], ['a string', 'weights.safetensors'], ['a number', 8], ['an array', [1, 2, 3]],
    ['a plain object', { length: 16 }], ['a null-prototype object', Object.create(null)], ['a hostile Proxy', hostileProxy],
    ['a detached ArrayBuffer', detached],
    ['a view of a detached buffer', (() => { const b = new ArrayBuffer(16); const v = new Float32Array(b); structuredClone(b, { transfer: [b] }); return v; })()],
    ['a DataView of a detached buffer', (() => { const b = new ArrayBuffer(16); const v = new DataView(b); structuredClone(b, { transfer: [b] }); return v; })()],
    ['a Uint8Array whose `buffer` lies', (() => { const a = seeds[0].bytes.slice(); Object.defineProperty(a, 'buffer', { get() { throw new Error('lie'); } }); return a; })()],
  ];
  for (const [label, input] of inputs) found.push(...check(label, input, ''));
  report(found);
});

// Every distinct layer configuration the fuzz produced, loaded for real:
// what safetensorsToStateDict returns, loadStateDict takes.
test('fuzz: every layer configuration the fuzz accepted loads into a layer', async () => {
  assert.ok(loadable.size >= 2, `${loadable.size} configurations`);
  for (const [key, { stateDict, options }] of loadable) {
    const mha = await MultiheadAttention.create({ ...options, numHeads: 1 });
    try {
      mha.loadStateDict(stateDict);
    } catch (err) {
      assert.fail(`options ${key}: ${err.message}`);
    } finally {
      mha.dispose();
    }
  }
});

test('fuzz: summary', (t) => {
  t.diagnostic(`${stats.inputs} calls: ${stats.accepted} returned, ${stats.refused} refused; ` +
    `slowest ${stats.slowestMs.toFixed(1)} ms (${stats.slowest.slice(0, 120)})`);
  assert.ok(stats.accepted > 100 && stats.refused > 1000, JSON.stringify(stats));
});

// ---------------------------------------------------------------------------
// Counterexamples: inputs this fuzz (or the review around it) found breaking
// the property in the reader as it was, each kept as a named test.

// Expects `fn` to throw a `type` error whose message includes each of `parts`.
function refuses(fn, type, ...parts) {
  assert.throws(fn, (err) => {
    assert.equal(err.constructor, type, `${err.constructor.name}: ${err.message}`);
    assert.ok(err.message.startsWith('safetensors: '), err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}"\n lacks "${p}"`);
    return true;
  });
}
const f32 = (values) => new Uint8Array(new Float32Array(values).buffer);

test('regression (fuzz): a tensor named __proto__ became the prototype of `tensors` and vanished from it', () => {
  const bytes = build('{"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32([1, 2]));
  const { tensors } = parseSafetensors(bytes);
  assert.deepEqual(Object.keys(tensors), ['__proto__']);
  assert.deepEqual(Array.from(Object.getOwnPropertyDescriptor(tensors, '__proto__').value.data), [1, 2]);
  assert.equal(Object.getPrototypeOf(tensors), null);
});

test('regression (fuzz): a dtype ["F32"] (an array) was read as F32 and returned as the array', () => {
  refuses(() => parseSafetensors(build('{"w":{"dtype":["F32"],"shape":[2],"data_offsets":[0,8]}}', f32([1, 2]))),
    RangeError, `tensor 'w' has dtype an array ["F32"]; supported: F32, F64, F16, BF16`);
});

test('regression (fuzz): a deeply nested dtype overflowed the stack describing it ("Maximum call stack size exceeded")', () => {
  const nested = (depth) => build(`{"w":{"dtype":${'['.repeat(depth)}${']'.repeat(depth)},"shape":[2],"data_offsets":[0,8]}}`, f32([1, 2]));
  // Past 128 levels (serde_json's limit, which the reference reader has) the header is refused before it is parsed;
  for (const fn of [parseSafetensors, safetensorsToStateDict])
    refuses(() => fn(nested(20000)), RangeError, 'the header nests deeper than 128 levels');
  // below, the value is described without recursing into it.
  refuses(() => parseSafetensors(nested(120)), RangeError, "tensor 'w' has dtype an array [[…]]; supported");
});

test('regression (fuzz): a tensor named twice was read as its last description', () => {
  const twice = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}';
  refuses(() => parseSafetensors(build(twice, f32([1, 2]))), RangeError, "the header names 'w' twice");
  // Also when spelled differently: "\u0077" is "w".
  refuses(() => parseSafetensors(build(twice.replace('"w":{"dtype":"F32","shape":[0]', '"\\u0077":{"dtype":"F32","shape":[0]'), f32([1, 2]))),
    RangeError, "the header names 'w' twice");
  refuses(() => parseSafetensors(build('{"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', f32([1, 2]))),
    RangeError, "the header repeats the key 'dtype' in 'w'");
});

test('regression (fuzz): __metadata__ of null or of non-strings was returned as it was', () => {
  refuses(() => parseSafetensors(build('{"__metadata__":null}')), RangeError, '__metadata__ is null; expected an object of string values');
  refuses(() => parseSafetensors(build('{"__metadata__":{"format":1}}')), RangeError, "__metadata__ 'format' is a number (1)");
  refuses(() => parseSafetensors(build('{"__metadata__":{"__proto__":{"polluted":"yes"}}}')), RangeError, "__metadata__ '__proto__' is an object");
});

test('regression (fuzz): one bias of a pair present gave a state dict the layer refuses, or dropped the bias', () => {
  const torch = { in_proj_weight: [12, 4], 'out_proj.weight': [4, 4] };
  const file = (specs) => {
    const header = {};
    let at = 0;
    for (const [name, shape] of Object.entries(specs)) {
      const n = shape.reduce((a, b) => a * b, 1) * 4;
      header[name] = { dtype: 'F32', shape, data_offsets: [at, at + n] };
      at += n;
    }
    return build(header, new Uint8Array(at));
  };
  refuses(() => safetensorsToStateDict(file({ ...torch, in_proj_bias: [12] })), RangeError, "'in_proj_bias' is present but 'out_proj.bias' is missing");
  refuses(() => safetensorsToStateDict(file({ ...torch, 'out_proj.bias': [4] })), RangeError, "'out_proj.bias' is present but 'in_proj_bias' is missing");
  refuses(() => safetensorsToStateDict(file({ ...torch, bias_v: [1, 1, 4] })), RangeError, "'bias_v' is present but 'bias_k' is missing");
  refuses(() => safetensorsToStateDict(file({ 'c_attn.weight': [4, 12], 'c_attn.bias': [12], 'c_proj.weight': [4, 4] })),
    RangeError, "'c_attn.bias' is present but 'c_proj.bias' is missing");
});

test('regression (fuzz): what is not bytes, or has lost its buffer, threw engine errors', () => {
  const detached = () => { const b = new ArrayBuffer(16); structuredClone(b, { transfer: [b] }); return b; };
  const lying = new Uint8Array(16);
  Object.defineProperty(lying, 'buffer', { get() { throw new Error('lie'); } });
  const proxy = new Proxy(new Uint8Array(16), { getPrototypeOf() { throw new Error('trap'); } });
  refuses(() => parseSafetensors(Object.create(null)), TypeError, 'bytes must be an ArrayBuffer or a typed array', 'got an object');
  refuses(() => parseSafetensors(proxy), TypeError, 'bytes must be an ArrayBuffer or a typed array');
  refuses(() => parseSafetensors(detached()), TypeError, 'bytes has a detached or out-of-bounds buffer');
  const view = (() => { const b = new ArrayBuffer(16); const v = new DataView(b); structuredClone(b, { transfer: [b] }); return v; })();
  refuses(() => parseSafetensors(view), TypeError, 'bytes has a detached or out-of-bounds buffer');
  // The intrinsic getters read a view: an own `buffer` that throws is not consulted (16 zero bytes: an empty header).
  refuses(() => parseSafetensors(lying), RangeError, 'the header is not valid UTF-8 JSON');
  assert.throws(() => parseSafetensors(Object.create(null)), (err) => err.argument === 'bytes');
});

test('regression (review): a tensor overlapping another past an empty one between them was not seen', () => {
  const header = {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
    c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
  };
  refuses(() => parseSafetensors(build(header, f32([1, 2, 3, 4]))), RangeError, "tensors 'a' and 'c' overlap");
  // Empty tensors overlap nothing, wherever they point.
  delete header.c;
  assert.deepEqual(parseSafetensors(build(header, f32([1, 2, 3, 4]))).tensors.e.dims, [0]);
});

test('regression (review): a dtype named after Object.prototype ("__proto__", "constructor") gave "needs NaN bytes"', () => {
  for (const dtype of ['__proto__', 'constructor', 'toString'])
    refuses(() => parseSafetensors(build({ w: { dtype, shape: [2], data_offsets: [0, 8] } }, f32([1, 2]))),
      RangeError, `tensor 'w' has dtype "${dtype}"; supported: F32, F64, F16, BF16`);
});

test('regression (review): a header length of 2^64-1 was reported rounded (18446744073709552000)', () => {
  refuses(() => parseSafetensors(build('{}', new Uint8Array(0), 2n ** 64n - 1n)), RangeError,
    'the header claims 18446744073709551615 bytes but only 2 follow the length field');
});
