// A reader of the safetensors format (the weights format Hugging Face models
// ship): 8 bytes of little-endian header length N, N bytes of JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} },
// then the tensors' raw little-endian bytes, offsets relative to the end of
// the header. Everything is validated before anything is read; a malformed
// file is refused with an error that says what is wrong and where.
//
// The bytes are hostile until checked: every failure is a RangeError (or a
// TypeError for what is not bytes at all) whose message starts with
// 'safetensors:'. A tensor name is only a name: '__proto__', 'constructor'
// and the like become ordinary entries of a null-prototype `tensors`, and
// only the header's own properties are read (an Object.prototype.dtype set
// by someone else fills in nothing). Messages quote the file's values
// shortened, never by recursing into them, so any nesting is harmless.

import { typedArrayKind } from './checks.js';

const DTYPES = Object.assign(Object.create(null), {
  F32: { bytes: 4, read: (view, at) => view.getFloat32(at, true) },
  F64: { bytes: 8, read: (view, at) => view.getFloat64(at, true) },
  F16: { bytes: 2, read: (view, at) => halfToFloat(view.getUint16(at, true)) },
  // bfloat16 is the top half of a float32.
  BF16: { bytes: 2, read: (view, at) => bfloatToFloat(view.getUint16(at, true)) },
});

const scratch = new DataView(new ArrayBuffer(4));
function bfloatToFloat(bits) {
  scratch.setUint32(0, bits << 16, true);
  return scratch.getFloat32(0, true);
}

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);           // subnormal
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function fail(message) {
  throw new RangeError(`safetensors: ${message}`);
}

/** A name from the file, fit to quote: control characters escaped, long ones cut. */
export function quoteName(name) {
  const escaped = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name).slice(1, -1).replace(/'/g, "\\'");
  return `'${escaped}'`;
}

/** A JSON value from the file, shown short and without recursion. */
function show(v, nested = false) {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  if (!Array.isArray(v)) return nested ? '{…}' : 'an object';
  if (nested) return '[…]';
  const items = v.slice(0, 8).map((x) => show(x, true));
  if (v.length > 8) items.push(`… (${v.length} items)`);
  return `[${items.join(',')}]`;
}

/** The JSON type of a value from the file, with an article. */
function jsonType(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;  // string, number, boolean
}

/** A value from the file as its type and, short, itself: 'a number (5)', 'an array [1,2]', 'null'. */
function kind(v) {
  if (v === null || (typeof v === 'object' && !Array.isArray(v))) return jsonType(v);
  return `${jsonType(v)} ${Array.isArray(v) ? show(v) : `(${show(v)})`}`;
}

/** A shape for a message: all of it, up to 8 dims. */
const shapeText = (dims) => (dims.length <= 8 ? `[${dims.join(', ')}]` : `[${dims.slice(0, 8).join(', ')}, … (${dims.length} dims)]`);

/** An error message of the JSON parser or decoder, control characters escaped. */
const clean = (message) => String(message).slice(0, 200).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const ownValue = (o, key) => (Object.hasOwn(o, key) ? o[key] : undefined);

// The intrinsic getters: right for buffers and views of any realm, and not
// fooled by a subclass or a Proxy that answers `buffer` differently.
const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
const TypedArrayProto = Object.getPrototypeOf(Int8Array.prototype);
const VIEW_GETTERS = [
  [getter(TypedArrayProto, 'buffer'), getter(TypedArrayProto, 'byteOffset'), getter(TypedArrayProto, 'byteLength')],
  [getter(DataView.prototype, 'buffer'), getter(DataView.prototype, 'byteOffset'), getter(DataView.prototype, 'byteLength')],
];
const BUFFER_LENGTHS = [getter(ArrayBuffer.prototype, 'byteLength')];
if (typeof SharedArrayBuffer === 'function') BUFFER_LENGTHS.push(getter(SharedArrayBuffer.prototype, 'byteLength'));

function attempt(fn, v) {
  try { return fn.call(v); } catch { return undefined; }
}

function describeInput(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object' && typeof v !== 'function') return typeof v;
  const tag = typedArrayKind(v);
  if (tag !== undefined) return `a ${tag}`;
  let name;
  try { name = Object.getPrototypeOf(v)?.constructor?.name; } catch { /* a hostile Proxy */ }
  return typeof name === 'string' && name !== '' ? `an object (${name})` : 'an object';
}

function asBytes(input) {
  const notBytes = () => Object.assign(new TypeError('safetensors: bytes must be an ArrayBuffer or a typed array (e.g. a Node Buffer), ' +
    `got ${describeInput(input)}`), { argument: 'bytes', expected: 'an ArrayBuffer or a typed array', actual: describeInput(input) });
  if (input === null || typeof input !== 'object') throw notBytes();
  let buffer, offset, length;
  if (BUFFER_LENGTHS.some((byteLength) => attempt(byteLength, input) !== undefined)) {
    [buffer, offset, length] = [input, 0, undefined];
  } else {
    const getters = typedArrayKind(input) !== undefined ? VIEW_GETTERS[0]
      : attempt(VIEW_GETTERS[1][0], input) !== undefined ? VIEW_GETTERS[1] : undefined;
    if (getters === undefined) throw notBytes();
    [buffer, offset, length] = getters.map((get) => attempt(get, input));
  }
  try {
    return new Uint8Array(buffer, offset, length);
  } catch {  // a detached buffer, or a view past the end of a shrunk one
    throw Object.assign(new TypeError(`safetensors: bytes has a detached or out-of-bounds buffer, got ${describeInput(input)}`),
      { argument: 'bytes', expected: 'an ArrayBuffer or a typed array', actual: describeInput(input) });
  }
}

// Deeper nesting than this is refused, as the reference reader (serde_json's
// recursion limit) does; a header needs 3 levels.
const MAX_DEPTH = 128;

// What is wrong with the structure of the header text: nesting past
// MAX_DEPTH (`deep`: found before JSON.parse builds it), or an object that
// repeats a key (JSON.parse keeps the last of repeated keys and other readers
// the first, so such a file means different things to each; meaningful once
// the text is known to be JSON). Returns { message, deep } or null. Walks the
// text with an explicit stack and stops at MAX_DEPTH; text that is not JSON
// ends the walk early, leaving JSON.parse to say what is wrong.
function structureProblem(text) {
  const keys = [];   // per open container: null (an array, or an object with no key yet), a key, or a Set of keys
  const isObject = [];
  const names = [];  // per open container: its key in its parent
  let keyNext = false, lastKey;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {  // "
      let j = i + 1, escaped = false;
      for (let d; j < text.length && (d = text.charCodeAt(j)) !== 0x22; j += d === 0x5c ? 2 : 1) if (d === 0x5c) escaped = true;
      if (j >= text.length) return null;  // an unterminated string
      if (keyNext && keys.length > 0) {
        let key;
        try { key = escaped ? JSON.parse(text.slice(i, j + 1)) : text.slice(i + 1, j); } catch { return null; }
        const top = keys.length - 1, seen = keys[top];
        if (seen === key || (seen instanceof Set && seen.has(key))) {
          return { deep: false, message: top === 0 ? `the header names ${quoteName(key)} twice`
            : `the header repeats the key ${quoteName(key)} in ${quoteName(String(names[top]))}` };
        }
        if (seen === null) keys[top] = key;
        else if (seen instanceof Set) seen.add(key);
        else keys[top] = new Set([seen, key]);
        lastKey = key;
        keyNext = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {  // { [
      if (keys.length === MAX_DEPTH) return { deep: true, message: `the header nests deeper than ${MAX_DEPTH} levels of arrays and objects` };
      keys.push(null);
      isObject.push(c === 0x7b);
      names.push(lastKey);
      keyNext = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {  // } ]
      keys.pop();
      isObject.pop();
      names.pop();
      keyNext = false;
    } else if (c === 0x2c) {  // ,
      keyNext = isObject[isObject.length - 1] === true;
    }
  }
  return null;
}

// The number of elements of a checked shape, or fail.
function elementCount(name, shape) {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (count > Number.MAX_SAFE_INTEGER)
      fail(`tensor ${name} has shape ${show(shape)}: more than 2^53 elements`);
  }
  return count;
}

function readMetadata(value) {
  const metadata = {};
  if (value === undefined) return metadata;
  if (!isObject(value)) fail(`__metadata__ is ${kind(value)}; expected an object of string values`);
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (typeof v !== 'string')
      fail(`__metadata__ ${quoteName(key)} is ${kind(v)}; the format allows only string values`);
    // defineProperty: a key '__proto__' is an own entry, not the prototype.
    Object.defineProperty(metadata, key, { value: v, writable: true, enumerable: true, configurable: true });
  }
  return metadata;
}

// One header entry checked against the data's length: { name, type, dtype, shape, begin, end, count }.
function readEntry(rawName, entry, dataLength) {
  const name = quoteName(rawName);
  if (!isObject(entry))
    fail(`tensor ${name} is described by ${kind(entry)}; expected an object { dtype, shape, data_offsets }`);
  for (const field of ['dtype', 'shape', 'data_offsets'])
    if (!Object.hasOwn(entry, field)) fail(`tensor ${name} has no ${field}; expected { dtype, shape, data_offsets }`);
  const dtype = entry.dtype;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype))
    fail(`tensor ${name} has dtype ${typeof dtype === 'string' ? show(dtype) : kind(dtype)}; supported: ${Object.keys(DTYPES).join(', ')}`);
  const type = DTYPES[dtype];

  const shape = entry.shape;
  if (!Array.isArray(shape)) fail(`tensor ${name} has shape ${kind(shape)}; expected an array of non-negative integers`);
  const bad = shape.findIndex((d) => !Number.isSafeInteger(d) || d < 0);
  if (bad >= 0) {
    const d = shape[bad];
    const what = typeof d !== 'number' ? kind(d)
      : `${d}, ${d < 0 ? 'negative' : d > Number.MAX_SAFE_INTEGER ? 'beyond 2^53' : 'not an integer'}`;
    fail(`tensor ${name} has shape ${show(shape)}; expected an array of non-negative integers (dim ${bad} is ${what})`);
  }
  const dims = shape.map((d) => d + 0);  // -0 -> 0

  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1])
    fail(`tensor ${name} has data_offsets ${Array.isArray(offsets) ? show(offsets) : kind(offsets)}; ` +
      'expected [begin, end] with 0 <= begin <= end, integers below 2^53');
  const begin = offsets[0] + 0, end = offsets[1] + 0;
  if (end > dataLength) fail(`tensor ${name} ends at byte ${end} of the data, which has only ${dataLength}`);

  const count = elementCount(name, dims);
  const size = count * type.bytes;
  if (end - begin !== size)
    fail(`tensor ${name} of shape ${shapeText(dims)} and dtype ${dtype} needs ${size} bytes, its offsets span ${end - begin}` +
      (size > dataLength ? ` (and the data has only ${dataLength})` : ''));
  return { rawName, name, type, dtype, dims, begin, end, count };
}

/**
 * Parses safetensors bytes. Returns `{ tensors, metadata }`: `tensors` (an
 * object without prototype) maps each name to `{ data: Float32Array, dims,
 * dtype }` (F32, F64, F16 and BF16 are read, converted to float32),
 * `metadata` is the header's __metadata__ (string values only).
 */
export function parseSafetensors(input) {
  const bytes = asBytes(input);
  if (bytes.length < 8) fail(`the file has ${bytes.length} bytes, fewer than the 8 of its header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const claimed = view.getBigUint64(0, true);
  if (claimed > BigInt(bytes.length - 8))
    fail(`the header claims ${claimed} bytes but only ${bytes.length - 8} follow the length field`);
  const headerLength = Number(claimed);
  const notJSON = (err) => fail(`the header is not valid UTF-8 JSON (${clean(err?.message)})`);
  let text, header;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch (err) {
    notJSON(err);
  }
  const problem = structureProblem(text);
  if (problem?.deep) fail(problem.message);
  try {
    header = JSON.parse(text);
  } catch (err) {
    notJSON(err);
  }
  if (!isObject(header)) fail(`the header is not a JSON object, it is ${kind(header)}`);
  if (problem !== null) fail(problem.message);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata = readMetadata(ownValue(header, '__metadata__'));
  const entries = Object.keys(header).filter((name) => name !== '__metadata__')
    .map((name) => readEntry(name, header[name], dataLength));

  // The format requires tensors not to overlap (empty ones take no bytes).
  const spans = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1, reach = spans[0]; i < spans.length; i++) {
    if (spans[i].begin < reach.end) fail(`tensors ${reach.name} and ${spans[i].name} overlap`);
    if (spans[i].end > reach.end) reach = spans[i];
  }

  const tensors = Object.create(null);
  for (const { rawName, type, dtype, dims, begin, count } of entries) {
    const data = new Float32Array(count);
    const at = dataStart + begin;
    if (dtype === 'F32' && (bytes.byteOffset + at) % 4 === 0) {
      data.set(new Float32Array(bytes.buffer, bytes.byteOffset + at, count));  // little-endian hosts
    } else {
      for (let i = 0; i < count; i++) data[i] = type.read(view, at + i * type.bytes);
    }
    tensors[rawName] = { data, dims, dtype };
  }
  return { tensors, metadata };
}
