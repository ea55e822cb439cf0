// mha-wasm: multi-head attention (torch.nn.MultiheadAttention at inference)
// in WebAssembly SIMD. This file is the whole public JS API; the Emscripten
// module behind it (mha-core.mjs / mha-core.wasm) is never handed out.
//
// Layout everywhere: batch-first, row-major float32.
//   query [B, Lq, E], key [B, Lk, kdim], value [B, Lk, vdim]   (or unbatched [L, *])
//   output [B, Lq, E], weights [B, Lq, S] | [B, H, Lq, S], heads [B, H, Lq, d], concat [B, Lq, E]
//   S = Lk (+1 with addBiasKV) (+1 with addZeroAttn), d = E / H.
import { parseSafetensors } from './safetensors.js';
import { toStateDict, LAYOUTS } from './weight_layouts.js';

export { parseSafetensors };

/**
 * The attention layer under `prefix` in a safetensors file, as a PyTorch
 * state_dict plus the layer options its shapes imply: `{ layout, stateDict,
 * options }`. `layout` 'auto' recognises nn.MultiheadAttention's, BERT's or
 * GPT-2's names. MultiheadAttention.fromSafetensors is this plus create().
 */
export function safetensorsToStateDict(bytes, options = {}) {
  checkOptionNames(options, ['prefix', 'layout'], 'safetensorsToStateDict options');
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw new TypeError(`prefix must be a string, got ${describe(prefix)}`);
  const layout = options.layout ?? 'auto';
  if (layout !== 'auto') checkEnum(layout, 'layout', LAYOUTS);
  return toStateDict(parseSafetensors(bytes).tensors, { prefix, layout });
}

/** The package version; tests check it equals package.json's. */
export const version = '0.1.0';

// ---------------------------------------------------------------------------
// Loading the WebAssembly module, once. Two builds ship: single-threaded
// (mha-core.*, runs everywhere) and threaded (mha-core-mt.*, needs
// SharedArrayBuffer: Node, or a cross-origin-isolated page). Node gets the
// threaded build's CommonJS variant (node/), whose workers are worker_threads.

let corePromise = null;
let loaded = null;  // { build, reason, loadedFrom }

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

// Whether a threaded build can run here: it needs SharedArrayBuffer, which
// Node has and a page has only when cross-origin isolated.
const threadsAvailable = () =>
  isNode || (globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function');

// Node built-ins, hidden from bundlers, which must not pull them into a page.
const nodeImport = (name) => import(/* webpackIgnore: true */ /* @vite-ignore */ name);

// The bytes of a .wasm given as bytes, a fetch Response, or a URL or path
// (resolved against this file). Callers default to the file next to this one
// with `new URL('./x.wasm', import.meta.url)`, the pattern bundlers (Vite,
// webpack 5, Rollup) recognise and emit.
async function wasmBytes(source) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return source;
  if (typeof source.arrayBuffer === 'function') return source.arrayBuffer();  // a fetch Response
  const url = new URL(String(source), import.meta.url);
  if (url.protocol === 'file:' && isNode) {
    const [{ readFile }, { fileURLToPath }] = await Promise.all([nodeImport('node:fs/promises'), nodeImport('node:url')]);
    return readFile(fileURLToPath(url));
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`mha-wasm: could not fetch ${url.href}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

async function hardwareThreads() {
  if (isNode) {
    const os = await nodeImport('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 1;
}

// Named through a variable, so that bundlers do not emit this Node-only file.
const NODE_WASM = './node/mha-core-mt.wasm';

async function loadThreaded(wasm) {
  if (isNode) {
    const { createRequire } = await nodeImport('node:module');
    const factory = createRequire(import.meta.url)('./node/mha-core-mt.cjs');
    const core = await factory({ wasmBinary: await wasmBytes(wasm ?? new URL(NODE_WASM, import.meta.url)) });
    // Idle pool workers must not keep Node alive after the program's last line.
    for (const w of [...core.PThread.unusedWorkers, ...core.PThread.runningWorkers]) w.unref?.();
    return core;
  }
  const { default: factory } = await import('./mha-core-mt.mjs');
  // A pool worker that fails to start (its script blocked or missing) is only
  // logged by the glue, whose promise then never settles: turn that message,
  // or silence past a deadline, into a rejection so load() falls back.
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the threaded build did not start within 15 s')), 15000);
    const printErr = (text) => {
      if (/worker sent an error|failed to load|Aborted/.test(String(text))) reject(new Error(String(text)));
      else console.warn(text);
    };
    wasmBytes(wasm ?? new URL('./mha-core-mt.wasm', import.meta.url))
      .then((wasmBinary) => factory({ wasmBinary, printErr }))
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

async function load({ wasm, threads }) {
  const want = threads === 'auto' ? await hardwareThreads() : threads;
  const shared = threadsAvailable();
  const from = wasm == null ? 'the package (next to index.js)' : 'init({ wasm })';
  let why;
  if (want > 1 && shared) {
    try {
      const core = await loadThreaded(wasm);
      const n = core.setThreads(want);
      loaded = { build: 'simd-threads', loadedFrom: from,
        reason: `${threads === 'auto' ? `'auto' found ${want} hardware threads` : `threads: ${want} was asked for`}; ${isNode ? 'Node has worker_threads and SharedArrayBuffer' : 'the page is cross-origin isolated'}; ${n} in use` };
      return core;
    } catch (err) {
      why = `the threaded build failed to load (${err.message}), so the single-threaded one runs`;
    }
  } else if (want > 1) {
    why = 'threads need SharedArrayBuffer, which this page lacks: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp';
  } else {
    why = threads === 'auto' ? 'one hardware thread' : 'threads: 1 was asked for';
  }
  const { default: factory } = await import('./mha-core.mjs');
  const core = await factory({ wasmBinary: await wasmBytes(wasm ?? new URL('./mha-core.wasm', import.meta.url)) });
  loaded = { build: 'simd', loadedFrom: from, reason: why };
  return core;
}

/**
 * Loads the WebAssembly module; `MultiheadAttention.create` calls it with no
 * options. Call it first to choose `threads` ('auto', the default, or a count)
 * or to say where the .wasm is (`wasm`: URL, path, bytes or a fetch Response,
 * of the build `threads` selects; giving `wasm` alone means `threads: 1`).
 * Later calls return the same promise.
 */
export function init(options = {}) {
  let threads;
  try {
    checkOptionNames(options, ['wasm', 'threads'], 'init options');
    threads = options.threads ?? (options.wasm != null ? 1 : 'auto');
    if (threads !== 'auto') threads = checkInteger(threads, 'threads', { min: 1 });
  } catch (err) {
    return Promise.reject(err);
  }
  if (corePromise == null) {
    corePromise = load({ wasm: options.wasm, threads }).then((c) => { coreRef.core = c; });
    corePromise.catch(() => { corePromise = null; });  // a failed load may be retried
  }
  return corePromise;
}

const coreRef = { core: null };  // the loaded module, once init() has resolved

async function core() {
  await init();
  return coreRef.core;
}

/** What the loaded build can do and why it was chosen (null fields before loading). */
export function capabilities() {
  const c = coreRef.core;
  return {
    simd: true,
    threadsAvailable: threadsAvailable(),
    threads: c ? c.numThreads() : null,
    maxThreads: c ? c.maxThreads() : null,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    build: loaded ? loaded.build : null,
    reason: loaded ? loaded.reason : null,
    loadedFrom: loaded ? loaded.loadedFrom : null,
    version,
  };
}

/**
 * Threads every layer uses from now on, clamped to what the loaded build can
 * run (1 for the single-threaded build). Returns the count in use. Results are
 * bit-identical for any count.
 */
export async function setThreads(threads) {
  checkInteger(threads, 'threads', { min: 1 });
  return (await core()).setThreads(threads);
}

// ---------------------------------------------------------------------------
// Tensors

/** A float32 tensor: row-major `data` with shape `dims`. */
export class Tensor {
  constructor(data, dims) {
    this.data = data;
    this.dims = dims;
  }
  get size() { return this.data.length; }
}

// ---------------------------------------------------------------------------
// Boundary checks. Every message names the argument, what was expected and what was given.

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an Array(${v.length})`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}(${v.length})`;
  if (typeof v === 'object') return `an object (${v.constructor ? v.constructor.name : 'Object'})`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function shapeString(dims) { return `[${dims.join(', ')}]`; }

function editDistance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function checkOptionNames(options, known, what) {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new TypeError(`${what} must be an object, got ${describe(options)}`);
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const nearest = known.reduce((best, k) => (editDistance(name, k) < editDistance(name, best) ? k : best), known[0]);
    throw new TypeError(`${what}: unknown option '${name}'; did you mean '${nearest}'? (known: ${known.join(', ')})`);
  }
}

function checkInteger(value, name, { min = 0 } = {}) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (value < min) throw new RangeError(`${name} must be >= ${min}, got ${value}`);
  return value;
}

function checkBoolean(value, name) {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

function checkEnum(value, name, allowed) {
  if (!allowed.includes(value))
    throw new RangeError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  return value;
}

// The checks below run on every forward call: their passing path is plain
// loops and comparisons, and an element's name is formatted only once it
// has failed.
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;

function checkDims(dims, name) {
  if (!Array.isArray(dims)) throw new TypeError(`${name}.dims must be an array of integers, got ${describe(dims)}`);
  for (let i = 0; i < dims.length; i++) if (!isCount(dims[i])) checkInteger(dims[i], `${name}.dims[${i}]`);
  return dims;
}

function product(dims) {
  let p = 1;
  for (let i = 0; i < dims.length; i++) p *= dims[i];
  return p;
}

const isBooleanArray = (data) => Array.isArray(data) && data.every((x) => typeof x === 'boolean');

// The data types a tensor argument may have: inputs, and masks.
const FLOATS = [Float32Array];
const MASKS = [Uint8Array, 'boolean[]', Float32Array];

// A {data, dims} whose data is one of `types` (constructors or 'boolean[]').
function checkTensor(t, name, types) {
  if (t === null || typeof t !== 'object' || !('data' in t) || !('dims' in t))
    throw new TypeError(`${name} must be a tensor { data, dims }, got ${describe(t)}`);
  const dims = checkDims(t.dims, name);
  const data = t.data;
  let ok = false;
  for (let i = 0; i < types.length && !ok; i++) ok = types[i] === 'boolean[]' ? isBooleanArray(data) : data instanceof types[i];
  if (!ok) {
    const names = types.map((T) => (T === 'boolean[]' ? 'boolean[]' : T.name)).join(' or ');
    throw new TypeError(`${name}.data must be a ${names}, got ${describe(data)}`);
  }
  if (data.length !== product(dims))
    throw new RangeError(`${name}.data has ${data.length} values but dims ${shapeString(dims)} need ${product(dims)}`);
  return { data, dims };
}

function expectDims(dims, expected, name, meaning) {
  const ok = dims.length === expected.length && dims.every((d, i) => expected[i] == null || d === expected[i]);
  if (!ok) {
    const want = expected.map((e) => (e == null ? '*' : e));
    throw new RangeError(`${name} must have dims ${shapeString(want)} (${meaning}), got ${shapeString(dims)}`);
  }
}

// ---------------------------------------------------------------------------
// The layer

// Every forward argument checked and turned into slot writes and flags.
// In pieces, and the options' piece only when an option is given: calling
// one big planner cost a small call 3-5 us when the caches were cold, even
// when it returned at its first line (bench/limits.md).
function planForward(query, key, value, options, c) {
  const given = !noOptionGiven(options);
  if (given) checkOptionNames(options, FORWARD_OPTIONS, 'forward options');
  const plan = planQuery(query, c);
  planKeyValue(plan, key, value, c);
  plan.S = plan.Lk + (c.addBiasKV ? 1 : 0) + (c.addZeroAttn ? 1 : 0);
  if (given) planOptions(plan, options, c);
  checkBufferSize(c, plan);
  return plan;
}

// Whether a forward call gives no option at all: no key in the object, and
// none of the names planOptions reads set (inherited or not enumerable either).
function noOptionGiven(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return false;
  for (const name in options) return false;  // any key: checkOptionNames checks its name
  for (let i = 0; i < FORWARD_OPTIONS.length; i++) if (options[FORWARD_OPTIONS[i]] !== undefined) return false;
  return true;
}

// The query's checks and shape: the plan of self-attention with no option.
function planQuery(query, c) {
  const q = checkTensor(query, 'query', FLOATS);
  if (q.dims.length !== 2 && q.dims.length !== 3)
    throw new RangeError(`query must have dims [B, Lq, E] or unbatched [Lq, E], got ${shapeString(q.dims)}`);
  const batched = q.dims.length === 3;
  const B = batched ? q.dims[0] : 1, Lq = q.dims[batched ? 1 : 0], E = q.dims[batched ? 2 : 1];
  if (E !== c.embedDim) throw new RangeError(`query's last dim must be embedDim=${c.embedDim}, got ${shapeString(q.dims)}`);
  return { B, Lq, Lk: Lq, S: 0, flags: 0, writes: [[Slot.query, q.data]], batched, needWeights: 'none',
    returnHeads: false, returnConcat: false };
}

// key and value, when given; when not, whether the query may stand in.
function planKeyValue(plan, key, value, c) {
  const { B, batched } = plan;
  const seq = (name, t, width) => {
    const rank = batched ? 3 : 2;
    if (t.dims.length !== rank)
      throw new RangeError(`${name} must have ${rank} dims like query (${batched ? '[B, Lk, ' : '[Lk, '}${width}]), got ${shapeString(t.dims)}`);
    const [b, l, w] = batched ? t.dims : [1, ...t.dims];
    if (b !== B) throw new RangeError(`${name}'s batch must equal query's (${B}), got ${shapeString(t.dims)}`);
    if (w !== width) throw new RangeError(`${name}'s last dim must be ${width}, got ${shapeString(t.dims)}`);
    return l;
  };
  if (key != null) {
    const k = checkTensor(key, 'key', FLOATS);
    plan.Lk = seq('key', k, c.kdim);
    plan.writes.push([Slot.key, k.data]);
    plan.flags |= Flag.hasKey;
  } else if (c.kdim !== c.embedDim) {
    throw new TypeError(`key is required: kdim=${c.kdim} differs from embedDim=${c.embedDim}, so the query cannot be the key`);
  }
  if (value != null) {
    const v = checkTensor(value, 'value', FLOATS);
    const Lv = seq('value', v, c.vdim);
    if (Lv !== plan.Lk) throw new RangeError(`value's length must equal key's (${plan.Lk}), got ${shapeString(v.dims)}`);
    plan.writes.push([Slot.value, v.data]);
    plan.flags |= Flag.hasValue;
  } else if (c.vdim !== (key != null ? c.kdim : c.embedDim)) {
    throw new TypeError(`value is required: vdim=${c.vdim} differs from the key's width`);
  }
}

// The options: masks, weights, extra outputs, the fully-masked policy.
function planOptions(plan, o, c) {
  const { B, Lq, Lk, batched, writes } = plan;
  const H = c.numHeads;
  const lead = batched ? [B] : [];
  let flags = 0;
  if (o.keyPaddingMask != null) {
    const m = checkTensor(o.keyPaddingMask, 'keyPaddingMask', MASKS);
    expectDims(m.dims, [...lead, Lk], 'keyPaddingMask', batched ? '[B, Lk]' : '[Lk]');
    const additive = m.data instanceof Float32Array;
    writes.push([additive ? Slot.keyPaddingAdditive : Slot.keyPaddingBlocked, m.data]);
    flags |= additive ? Flag.keyPaddingAdditive : Flag.keyPaddingBlocked;
  }
  if (o.attnMask != null) {
    const m = checkTensor(o.attnMask, 'attnMask', MASKS);
    if (m.dims.length === 3) {
      expectDims(m.dims, [B * H, Lq, Lk], 'attnMask', batched ? '[B * numHeads, Lq, Lk], index b * numHeads + h' : '[numHeads, Lq, Lk]');
      flags |= Flag.attnPerHead;
    } else {
      expectDims(m.dims, [Lq, Lk], 'attnMask', `[Lq, Lk] or ${batched ? '[B * numHeads, Lq, Lk]' : '[numHeads, Lq, Lk]'}`);
    }
    const additive = m.data instanceof Float32Array;
    writes.push([additive ? Slot.attnAdditive : Slot.attnBlocked, m.data]);
    flags |= additive ? Flag.attnAdditive : Flag.attnBlocked;
  }
  if (o.isCausal !== undefined && checkBoolean(o.isCausal, 'isCausal')) flags |= Flag.isCausal;
  if (o.validLens != null) {
    let t = o.validLens;
    if (typeof t === 'number') t = { data: [t], dims: [] };
    else if (Array.isArray(t) || t instanceof Int32Array) t = { data: t, dims: [t.length] };
    if (t === null || typeof t !== 'object' || !('data' in t))
      throw new TypeError(`validLens must be an integer array or a tensor { data, dims }, got ${describe(o.validLens)}`);
    const dims = checkDims(t.dims, 'validLens');
    if (!(t.data instanceof Int32Array) && !Array.isArray(t.data))
      throw new TypeError(`validLens.data must be an Int32Array or an array of integers, got ${describe(t.data)}`);
    if (t.data.length !== product(dims))
      throw new RangeError(`validLens.data has ${t.data.length} values but dims ${shapeString(dims)} need ${product(dims)}`);
    for (let i = 0; i < t.data.length; i++) checkInteger(t.data[i], `validLens[${i}]`);
    const perBatch = batched ? dims.length === 1 && dims[0] === B : dims.length === 0;
    const perQuery = batched ? dims.length === 2 && dims[0] === B && dims[1] === Lq : dims.length === 1 && dims[0] === Lq;
    if (!perBatch && !perQuery)
      throw new RangeError(`validLens must have dims ${batched ? `[${B}] (per sequence) or [${B}, ${Lq}] (per query)` : `[] (one length) or [${Lq}] (per query)`}, got ${shapeString(dims)}`);
    writes.push([Slot.validLens, t.data]);  // copied once, into the wasm slot
    flags |= perQuery ? Flag.validLensPerQuery : Flag.validLensPerBatch;
  }
  const needWeights = o.needWeights === undefined ? 'none' : checkEnum(o.needWeights, 'needWeights', NEED_WEIGHTS);
  if (needWeights === 'average') flags |= Flag.weightsAverage;
  if (needWeights === 'per-head') flags |= Flag.weightsPerHead;
  const returnHeads = o.returnHeads === undefined ? false : checkBoolean(o.returnHeads, 'returnHeads');
  const returnConcat = o.returnConcat === undefined ? false : checkBoolean(o.returnConcat, 'returnConcat');
  if (returnHeads) flags |= Flag.wantHeads;
  if (returnConcat) flags |= Flag.wantConcat;
  const fully = o.fullyMaskedRows === undefined ? 'zero' : checkEnum(o.fullyMaskedRows, 'fullyMaskedRows', FULLY_MASKED_ROWS);
  if (fully === 'nan') flags |= Flag.fullyMaskedNaN;
  plan.flags |= flags;
  Object.assign(plan, { needWeights, returnHeads, returnConcat });
}

// Refuses, before allocating anything, a call whose buffers cannot fit in
// wasm32's 4 GiB. JS numbers are exact to 2^53 and saturate beyond, so
// these products cannot wrap around the way C++ size_t would.
function checkBufferSize(c, { B, Lq, Lk, S, needWeights, returnHeads, returnConcat }) {
  const E = c.embedDim, rows = B * Lq;
  const floats = rows * E * (3 + (returnHeads ? 1 : 0) + (returnConcat ? 1 : 0)) +
    B * Lk * (c.kdim + c.vdim + 2 * E) +
    (needWeights === 'none' ? S : rows * S * (needWeights === 'per-head' ? c.numHeads : 1));
  if (floats * 4 > HEAP_LIMIT_BYTES)
    throw new RangeError(`forward: this call needs about ${(floats * 4 / 2 ** 30).toFixed(1)} GiB of buffers (B=${B}, Lq=${Lq}, Lk=${Lk}, E=${E}, needWeights='${needWeights}'); WebAssembly's limit is 4 GiB`);
}

// Slot ids and forward flags: mirrors of bindings/core_layer.cpp.
const Slot = {
  query: 0, key: 1, value: 2, keyPaddingBlocked: 3, attnBlocked: 4, keyPaddingAdditive: 5,
  attnAdditive: 6, validLens: 7, parameter: 8, output: 9, weights: 10, heads: 11, concat: 12,
};
const Flag = {
  hasKey: 1 << 0, hasValue: 1 << 1, keyPaddingBlocked: 1 << 2, keyPaddingAdditive: 1 << 3,
  attnBlocked: 1 << 4, attnAdditive: 1 << 5, attnPerHead: 1 << 6, isCausal: 1 << 7,
  validLensPerBatch: 1 << 8, validLensPerQuery: 1 << 9, weightsAverage: 1 << 10,
  weightsPerHead: 1 << 11, fullyMaskedNaN: 1 << 12, wantHeads: 1 << 13, wantConcat: 1 << 14,
};

const CREATE_OPTIONS = ['embedDim', 'numHeads', 'kdim', 'vdim', 'bias', 'addBiasKV', 'addZeroAttn', 'seed'];
const FORWARD_OPTIONS = ['keyPaddingMask', 'attnMask', 'isCausal', 'validLens', 'needWeights', 'returnHeads', 'returnConcat', 'fullyMaskedRows'];
const NEED_WEIGHTS = ['none', 'average', 'per-head'];
const FULLY_MASKED_ROWS = ['zero', 'nan'];
// wasm32 addresses 4 GiB; a call needing more is refused before allocating.
const HEAP_LIMIT_BYTES = 2 ** 32;

function raise(status, message) {
  if (status === 1) throw new TypeError(message);
  throw new RangeError(message);
}

const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry((coreLayer) => coreLayer.delete())
  : null;

/**
 * One nn.MultiheadAttention layer. Create with `await MultiheadAttention.create(...)`;
 * free with `dispose()` (or `using`); a dropped layer is also reclaimed by the GC.
 */
export class MultiheadAttention {
  #layer;
  #config;

  constructor(token, layer, config) {
    if (token !== CONSTRUCT) throw new TypeError('use `await MultiheadAttention.create(options)`, not `new`');
    this.#layer = layer;
    this.#config = config;
    registry?.register(this, layer, this);
  }

  /** Creates a layer with PyTorch's defaults and PyTorch-style initial weights from `seed`. */
  static async create(options) {
    checkOptionNames(options, CREATE_OPTIONS, 'MultiheadAttention.create options');
    const o = options;
    const embedDim = checkInteger(o.embedDim, 'embedDim', { min: 1 });
    const numHeads = checkInteger(o.numHeads, 'numHeads', { min: 1 });
    if (embedDim % numHeads !== 0)
      throw new RangeError(`embedDim must be divisible by numHeads (each head gets embedDim / numHeads columns), got embedDim=${embedDim} and numHeads=${numHeads}`);
    const config = {
      embedDim,
      numHeads,
      kdim: o.kdim === undefined ? embedDim : checkInteger(o.kdim, 'kdim', { min: 1 }),
      vdim: o.vdim === undefined ? embedDim : checkInteger(o.vdim, 'vdim', { min: 1 }),
      bias: o.bias === undefined ? true : checkBoolean(o.bias, 'bias'),
      addBiasKV: o.addBiasKV === undefined ? false : checkBoolean(o.addBiasKV, 'addBiasKV'),
      addZeroAttn: o.addZeroAttn === undefined ? false : checkBoolean(o.addZeroAttn, 'addZeroAttn'),
      seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'seed'),
      headDim: embedDim / numHeads,
    };
    const layer = new (await core()).CoreLayer();
    const status = layer.configure(config.embedDim, config.numHeads, config.kdim, config.vdim,
      config.bias, config.addBiasKV, config.addZeroAttn, config.seed);
    if (status !== 0) {
      const message = layer.error();
      layer.delete();
      raise(status, message);
    }
    return new MultiheadAttention(CONSTRUCT, layer, Object.freeze(config));
  }

  /**
   * Creates a layer from a safetensors file's bytes: the tensors under
   * `prefix`, in nn.MultiheadAttention's, BERT's or GPT-2's names (`layout`
   * 'auto' recognises which). embedDim, kdim, vdim, bias and addBiasKV come
   * from the tensors; numHeads cannot, so it is required.
   */
  static async fromSafetensors(bytes, options) {
    checkOptionNames(options, ['numHeads', 'prefix', 'layout', 'addZeroAttn'], 'fromSafetensors options');
    const { stateDict, options: shapes } = safetensorsToStateDict(bytes, { prefix: options.prefix, layout: options.layout });
    const mha = await MultiheadAttention.create({ ...shapes, numHeads: options.numHeads,
      ...(options.addZeroAttn === undefined ? {} : { addZeroAttn: options.addZeroAttn }) });
    try {
      mha.loadStateDict(stateDict);
    } catch (err) {
      mha.dispose();
      throw err;
    }
    return mha;
  }

  get embedDim() { return this.#config.embedDim; }
  get numHeads() { return this.#config.numHeads; }
  get headDim() { return this.#config.headDim; }
  get kdim() { return this.#config.kdim; }
  get vdim() { return this.#config.vdim; }
  get bias() { return this.#config.bias; }
  get addBiasKV() { return this.#config.addBiasKV; }
  get addZeroAttn() { return this.#config.addZeroAttn; }
  /** Whether dispose() has run. */
  get disposed() { return this.#layer == null; }

  #live(method) {
    if (this.#layer == null)
      throw new Error(`MultiheadAttention.${method}: this layer was disposed; create a new one`);
    return this.#layer;
  }

  /** PyTorch state_dict keys of this layer, with their shapes. */
  parameterShapes() {
    const layer = this.#live('parameterShapes');
    const shapes = {};
    for (const name of layer.parameterNames()) shapes[name] = layer.parameterShape(name);
    return shapes;
  }

  /**
   * Loads weights given under PyTorch's state_dict names. Each value is a
   * Float32Array in PyTorch's row-major layout, or a tensor { data, dims }.
   * Every missing, unexpected or misshapen key is named; nothing is loaded
   * unless everything is right. `strict: false` allows missing keys.
   */
  loadStateDict(dict, options = {}) {
    const layer = this.#live('loadStateDict');
    checkOptionNames(options, ['strict'], 'loadStateDict options');
    const strict = options.strict === undefined ? true : checkBoolean(options.strict, 'strict');
    if (dict === null || typeof dict !== 'object' || Array.isArray(dict))
      throw new TypeError(`loadStateDict: state dict must be an object of Float32Arrays, got ${describe(dict)}`);
    const shapes = this.parameterShapes();
    const problems = [];
    const values = {};
    for (const [name, value] of Object.entries(dict)) {
      const shape = shapes[name];
      if (shape === undefined) { problems.push(`unexpected key '${name}'`); continue; }
      const data = value instanceof Float32Array ? value : value && value.data instanceof Float32Array ? value.data : null;
      if (data === null) { problems.push(`'${name}' must be a Float32Array or { data: Float32Array, dims }, got ${describe(value)}`); continue; }
      if (!(value instanceof Float32Array) && value.dims !== undefined &&
          (!Array.isArray(value.dims) || shapeString(value.dims) !== shapeString(shape))) {
        problems.push(`'${name}' must have dims ${shapeString(shape)}, got ${Array.isArray(value.dims) ? shapeString(value.dims) : describe(value.dims)}`);
        continue;
      }
      if (data.length !== product(shape)) { problems.push(`'${name}' must have ${product(shape)} values (shape ${shapeString(shape)}), got ${data.length}`); continue; }
      values[name] = data;
    }
    if (strict) for (const name of Object.keys(shapes)) if (!(name in dict)) problems.push(`missing key '${name}'`);
    if (problems.length > 0) {
      const kind = problems.every((p) => p.includes('must be a Float32Array')) ? TypeError : RangeError;
      throw new kind(`loadStateDict: ${problems.join('; ')}. This layer's keys: ${Object.entries(shapes).map(([n, s]) => `${n} ${shapeString(s)}`).join(', ')}`);
    }
    for (const [name, data] of Object.entries(values)) {
      let status = layer.reserve(Slot.parameter, data.length);
      if (status === 0) {
        layer.view(Slot.parameter).set(data);
        status = layer.setParameter(name, data.length);
      }
      if (status !== 0) raise(status, `loadStateDict: ${layer.error()}`);
    }
  }

  /** The weights under PyTorch's state_dict names, as fresh tensors. */
  stateDict() {
    const layer = this.#live('stateDict');
    const dict = {};
    for (const name of layer.parameterNames())
      dict[name] = new Tensor(new Float32Array(layer.parameterView(name)), layer.parameterShape(name));
    return dict;
  }

  /**
   * Runs the layer: `key` defaults to `query`, `value` to `key` (pass null to
   * skip one). Returns fresh tensors the caller owns.
   */
  forward(query, key = null, value = null, options = {}) {
    const layer = this.#live('forward');
    const c = this.#config;
    const plan = planForward(query, key, value, options, c);
    const { B, Lq, Lk, S, flags } = plan;

    // Size every input slot first: any growth detaches earlier views.
    const writes = plan.writes;
    for (const [slot, src] of writes) {
      const status = layer.reserve(slot, src.length);
      if (status !== 0) raise(status, layer.error());
    }
    for (const [slot, src] of writes) {
      layer.view(slot).set(src);  // boolean[] and number[] convert on the way in
    }
    const status = layer.forward(B, Lq, Lk, flags);
    if (status !== 0) raise(status, layer.error());

    // Copy results out: views into wasm memory are never handed out.
    const take = (slot) => new Float32Array(layer.view(slot));
    const lead = plan.batched ? [B] : [];
    const result = { output: new Tensor(take(Slot.output), [...lead, Lq, c.embedDim]) };
    if (plan.needWeights === 'average') result.weights = new Tensor(take(Slot.weights), [...lead, Lq, S]);
    if (plan.needWeights === 'per-head') result.weights = new Tensor(take(Slot.weights), [...lead, c.numHeads, Lq, S]);
    if (plan.returnHeads) result.heads = new Tensor(take(Slot.heads), [...lead, c.numHeads, Lq, c.headDim]);
    if (plan.returnConcat) result.concat = new Tensor(take(Slot.concat), [...lead, Lq, c.embedDim]);
    return result;
  }


  /** Frees the layer's WebAssembly memory. A second call does nothing. */
  dispose() {
    if (this.#layer == null) return;
    registry?.unregister(this);
    this.#layer.delete();
    this.#layer = null;
  }

  [Symbol.dispose]() { this.dispose(); }
}

const CONSTRUCT = Symbol('MultiheadAttention.create');

/**
 * What the WebAssembly side holds now, for finding leaks: heap bytes, layers
 * not yet disposed or collected, and live embind value handles.
 */
export async function memoryStats() {
  const c = await core();
  return { heapBytes: c.heapBytes(), liveLayers: c.liveLayers(), liveHandles: c.count_emval_handles() };
}
