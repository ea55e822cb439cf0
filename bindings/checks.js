// Argument checks at the JS boundary, and the errors they raise.
//
// Every message names the argument, what was expected and what was given;
// the error also carries those as fields (`argument`, `expected`, `actual`)
// so that a page can route it without reading the message. Every value read
// from a caller's object is read once: a getter or Proxy that answers
// differently the second time sees its first answer checked and used. Only
// own properties count: nothing inherited (Object.prototype.isCausal = true)
// changes a call.

/** Adds the structured fields to an error and returns it. */
function withFields(error, argument, expected, actual) {
  return Object.assign(error, { argument, expected, actual });
}
export const typeError = (argument, expected, actual, message) =>
  withFields(new TypeError(message ?? `${argument} must be ${expected}, got ${describe(actual)}`), argument, expected, describe(actual));
export const rangeError = (argument, expected, actual, message) =>
  withFields(new RangeError(message ?? `${argument} must be ${expected}, got ${describe(actual)}`), argument, expected,
    typeof actual === 'string' ? actual : describe(actual));

// The intrinsic getters of typed arrays: right for arrays of any realm (an
// iframe's, a vm context's), and not fooled by a subclass's own `length`.
const TypedArray = Object.getPrototypeOf(Int8Array.prototype);
const tagOf = Object.getOwnPropertyDescriptor(TypedArray, Symbol.toStringTag).get;
const lengthOf = Object.getOwnPropertyDescriptor(TypedArray, 'length').get;

/** 'Float32Array', 'Uint8Array', … for a typed array of any realm; undefined otherwise. */
export const typedArrayKind = (v) => (v !== null && typeof v === 'object' ? tagOf.call(v) : undefined);
/** A typed array's element count (0 once its buffer is detached). */
export const typedLength = (v) => lengthOf.call(v);

export function describe(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  const kind = typedArrayKind(v);
  if (kind !== undefined) return `a ${kind}(${typedLength(v)})`;
  if (Array.isArray(v)) return `an Array(${v.length})`;
  if (typeof v === 'object' || typeof v === 'function') {
    let name = 'Object';
    try { name = Object.getPrototypeOf(v)?.constructor?.name ?? 'null-prototype object'; } catch { /* a hostile Proxy */ }
    return `an object (${name})`;
  }
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  if (typeof v === 'bigint') return `the BigInt ${v}n`;
  if (typeof v === 'symbol') return `a symbol`;
  return `${typeof v} ${String(v)}`;
}

export const shapeString = (dims) => `[${dims.join(', ')}]`;

function editDistance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

const isPlainObject = (o) => o !== null && typeof o === 'object' && !Array.isArray(o) && typedArrayKind(o) === undefined;

/**
 * The options object's own keys, each read once, into a null-prototype
 * snapshot: unknown names are refused with the nearest known one.
 * `undefined` options mean none.
 */
export function readOptions(options, known, what) {
  const snapshot = Object.create(null);
  if (options === undefined) return snapshot;
  if (!isPlainObject(options)) throw typeError(what, 'an object', options);
  for (const name of Object.getOwnPropertyNames(options)) {
    if (!known.includes(name)) {
      const nearest = known.reduce((best, k) => (editDistance(name, k) < editDistance(name, best) ? k : best), known[0]);
      throw withFields(new TypeError(`${what}: unknown option '${name}'; did you mean '${nearest}'? (known: ${known.join(', ')})`),
        what, known.join(', '), name);
    }
    snapshot[name] = options[name];
  }
  return snapshot;
}

/** Largest value of any size argument: sizes are 32-bit in wasm32. */
export const MAX_DIM = 2 ** 31 - 1;

export function checkInteger(value, name, { min = 0, max = MAX_DIM } = {}) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw typeError(name, 'an integer', value, `${name} must be an integer, got ${describe(value)}`);
  if (value < min) throw rangeError(name, `>= ${min}`, String(value), `${name} must be >= ${min}, got ${value}`);
  if (value > max) throw rangeError(name, `<= ${max}`, String(value), `${name} must be <= ${max}${max === MAX_DIM ? ' (sizes are 32-bit in WebAssembly)' : ''}, got ${value}`);
  return value;
}

export function checkBoolean(value, name) {
  if (typeof value !== 'boolean') throw typeError(name, 'a boolean', value);
  return value;
}

/** 'a', 'b' or 'c': names quoted, the last joined by `last` ('or', 'and'). */
export const quotedList = (names, last = 'or') =>
  names.length < 2 ? names.map((n) => `'${n}'`).join('') : `${names.slice(0, -1).map((n) => `'${n}'`).join(', ')} ${last} '${names.at(-1)}'`;

export function checkEnum(value, name, allowed) {
  if (!allowed.includes(value))
    throw rangeError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  return value;
}

/** A copy of `dims`, each element read once, checked as sizes. */
export function readDims(dims, name) {
  if (!Array.isArray(dims)) throw typeError(`${name}.dims`, 'an array of integers', dims);
  const n = dims.length;
  if (!Number.isSafeInteger(n) || n > 8) throw rangeError(`${name}.dims`, 'at most 8 dims', `${n} dims`);
  const copy = new Array(n);
  for (let i = 0; i < n; i++) {
    const d = dims[i];
    copy[i] = Number.isSafeInteger(d) && d >= 0 && d <= MAX_DIM ? d : checkInteger(d, `${name}.dims[${i}]`);
  }
  return copy;
}

export function product(dims) {
  let p = 1;
  for (let i = 0; i < dims.length; i++) p *= dims[i];
  return p;
}

// A boolean[] mask, read once into bytes (1 = blocked), or null if `data`
// is not an array of booleans.
function booleanBytes(data, need) {
  if (!Array.isArray(data)) return null;
  const n = data.length;
  // An array-like of the wrong length is refused before its elements are
  // read (a Proxy may claim 2^32 - 1 of them).
  if (n !== need) return { length: n };
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = data[i];
    if (typeof b !== 'boolean') return null;
    bytes[i] = b ? 1 : 0;
  }
  return bytes;
}

/**
 * A tensor argument `{ data, dims }` read once and checked: `data` one of
 * `kinds` (typed array names, or 'boolean[]', turned into a Uint8Array).
 * Returns `{ data, dims, kind }` of the snapshot.
 */
export function readTensor(t, name, kinds) {
  if (t === null || typeof t !== 'object' || typedArrayKind(t) !== undefined)
    throw typeError(name, 'a tensor { data, dims }', t);
  const rawData = t.data, rawDims = t.dims;
  if (rawData === undefined || rawDims === undefined) throw typeError(name, 'a tensor { data, dims }', t);
  const dims = readDims(rawDims, name);
  let data = rawData;
  let kind = typedArrayKind(rawData);
  const need = product(dims);
  if (kind === undefined && kinds.includes('boolean[]')) {
    const bytes = booleanBytes(rawData, need);
    if (bytes !== null && !(bytes instanceof Uint8Array))
      throw rangeError(`${name}.data`, `${need} values`, `${bytes.length} values`,
        `${name}.data has ${bytes.length} values but dims ${shapeString(dims)} need ${need}`);
    if (bytes !== null) { data = bytes; kind = 'boolean[]'; }
  }
  if (!kinds.includes(kind)) throw typeError(`${name}.data`, `a ${kinds.join(' or ')}`, rawData);
  const length = typedLength(data);
  if (length !== need)
    throw rangeError(`${name}.data`, `${need} values`, `${length} values`,
      `${name}.data has ${length} values but dims ${shapeString(dims)} need ${need}${length === 0 && need > 0 && data.buffer.byteLength === 0 ? ' (is its buffer detached?)' : ''}`);
  return { data, dims, kind };
}

export function expectDims(dims, expected, name, meaning) {
  const ok = dims.length === expected.length && dims.every((d, i) => expected[i] == null || d === expected[i]);
  if (!ok) {
    const want = shapeString(expected.map((e) => (e == null ? '*' : e)));
    throw rangeError(name, `dims ${want}`, shapeString(dims), `${name} must have dims ${want} (${meaning}), got ${shapeString(dims)}`);
  }
}
