// mha-wasm: multi-head attention (torch.nn.MultiheadAttention at inference)
// in WebAssembly SIMD. This file is the public JS API: the classes and what
// they re-export. The rooms behind it: loader.js (which build, loaded once),
// checks.js (argument checks and their errors), plan.js (a forward call's
// arguments into the core's slots), safetensors.js and weight_layouts.js
// (reading weights). The Emscripten module itself is never handed out.
//
// Layout everywhere: batch-first, row-major float32.
//   query [B, Lq, E], key [B, Lk, kdim], value [B, Lk, vdim]   (or unbatched [L, *])
//   output [B, Lq, E], weights [B, Lq, S] | [B, H, Lq, S], heads [B, H, Lq, d], concat [B, Lq, E]
//   S = Lk (+1 with addBiasKV) (+1 with addZeroAttn), d = E / H.
import { parseSafetensors } from './safetensors.js';
import { toStateDict, LAYOUTS } from './weight_layouts.js';
import {
  init, instance, loaded, callModule, brokenError, threadsAvailable, relaxedSimdAvailable, codesOf, run,
} from './loader.js';
import { KVCache, EncoderMemory, makeSource } from './cache.js';
import {
  readOptions, readTensor, checkInteger, checkBoolean, checkEnum, typeError, describe, shapeString,
  typedArrayKind, typedLength, product,
} from './checks.js';
import { planForward, FORWARD_OPTIONS } from './plan.js';
import { layerConfig, storedWeightDtype, WEIGHT_DTYPES } from './layer_config.js';
import { optionsFromConfig, stateDictFromModel, HF_ATTENTION } from './hf_models.js';

export { parseSafetensors, init, KVCache, EncoderMemory };

/** The package version; tests check it equals package.json's. */
export const version = '0.1.0';

/**
 * The attention layer under `prefix` in a safetensors file, as a PyTorch
 * state_dict plus the layer options its shapes imply: `{ layout, stateDict,
 * options }`. `layout` 'auto' recognises nn.MultiheadAttention's, BERT's or
 * GPT-2's names. MultiheadAttention.fromSafetensors is this plus create().
 */
export function safetensorsToStateDict(bytes, options) {
  const o = readOptions(options, ['prefix', 'layout'], 'safetensorsToStateDict options');
  return toStateDict(parseSafetensors(bytes).tensors, prefixAndLayout(o));
}

function prefixAndLayout(o) {
  const prefix = o.prefix ?? '';
  if (typeof prefix !== 'string') throw typeError('prefix', 'a string', prefix);
  const layout = o.layout ?? 'auto';
  if (layout !== 'auto') checkEnum(layout, 'layout', LAYOUTS);
  return { prefix, layout };
}

/** What the loaded build can do and why it was chosen (null fields before loading). */
export function capabilities() {
  const m = loaded();
  const live = m != null && m.broken == null;
  return {
    simd: true,
    relaxedSimd: live ? m.simd === 'relaxed' : null,
    relaxedSimdAvailable: relaxedSimdAvailable(),
    threadsAvailable: threadsAvailable(),
    threads: live ? m.core.numThreads() : null,
    maxThreads: live ? m.core.maxThreads() : null,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    build: live ? m.build : null,
    reason: live ? m.reason : null,
    loadedFrom: live ? m.loadedFrom : null,
    version,
  };
}

/**
 * Threads every layer uses from now on, clamped to what the loaded build can
 * run (1 for the single-threaded builds). Returns the count in use. Results
 * are bit-identical for any count.
 */
export async function setThreads(threads) {
  checkInteger(threads, 'threads', { min: 1 });
  const m = await instance();
  return callModule(m, () => m.core.setThreads(threads));
}

/**
 * What the WebAssembly side holds now, for finding leaks and sizing models:
 * heap bytes, bytes allocated in it, layers and caches not yet disposed or
 * collected, and live embind value handles.
 */
export async function memoryStats() {
  const m = await instance();
  return callModule(m, () => ({ heapBytes: m.core.heapBytes(), allocatedBytes: m.core.allocatedBytes(), liveLayers: m.core.liveLayers(),
    liveCaches: m.core.liveCaches(), liveHandles: m.core.count_emval_handles() }));
}

/** A float32 tensor: row-major `data` with shape `dims`. */
export class Tensor {
  constructor(data, dims) {
    this.data = data;
    this.dims = dims;
  }
  get size() { return this.data.length; }
}

// Layers dropped without dispose(): their native side is freed by the GC,
// unless their module was retired (its memory is gone with it).
const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ m, layer }) => { if (m.broken == null) try { layer.delete(); } catch { /* retired */ } })
  : null;

const CONSTRUCT = Symbol('MultiheadAttention.create');

// An array read earlier, checked again now that no caller's code can run
// before it is copied in: a getter may have detached or resized it since.
function unchanged(src, length, name) {
  if (typedLength(src) !== length)
    throw Object.assign(new RangeError(`${name}: its array was detached or resized during the call (by a getter?): it had ${length} values, now ${typedLength(src)}`),
      { argument: name, expected: `${length} values`, actual: `${typedLength(src)} values` });
}
const slotName = (codes, slot) => Object.keys(codes.slot).find((k) => codes.slot[k] === slot);

/**
 * One nn.MultiheadAttention layer. Create with `await MultiheadAttention.create(...)`;
 * free with `dispose()` (or `using`); a dropped layer is also reclaimed by the GC.
 */
export class MultiheadAttention {
  #m;
  #layer;
  #config;

  constructor(token, m, layer, config) {
    if (token !== CONSTRUCT) throw new TypeError('use `await MultiheadAttention.create(options)`, not `new`');
    this.#m = m;
    this.#layer = layer;
    this.#config = config;
    registry?.register(this, { m, layer }, this);
  }

  /**
   * Creates a layer: nn.MultiheadAttention's options and defaults, and those
   * of today's decoder attention (numKVHeads, headDim, rope, scale, softcap,
   * alibi, slidingWindow, qkNorm, sinks). Initial weights are PyTorch-style, from `seed`;
   * sinks start at 0.
   */
  static async create(options) {
    const config = layerConfig(options);
    const m = await instance();
    const layer = callModule(m, () => new m.core.CoreLayer());
    try {
      run(m, layer, '', () => layer.configure(config));
    } catch (err) {
      if (m.broken == null) layer.delete();
      throw err;
    }
    return new MultiheadAttention(CONSTRUCT, m, layer, config);
  }

  /**
   * Creates a layer from a safetensors file's bytes: the tensors under
   * `prefix`, in nn.MultiheadAttention's, BERT's or GPT-2's names (`layout`
   * 'auto' recognises which). embedDim, kdim, vdim, bias and addBiasKV come
   * from the tensors; numHeads cannot, so it is required.
   */
  static async fromSafetensors(bytes, options) {
    if (options === undefined) throw typeError('fromSafetensors options', 'an object with numHeads, or with config and layer', options);
    const o = readOptions(options, ['numHeads', 'prefix', 'layout', 'addZeroAttn', 'config', 'layer', 'attention', 'weightDtype'],
      'fromSafetensors options');
    if (o.weightDtype !== undefined) checkEnum(o.weightDtype, 'weightDtype', WEIGHT_DTYPES);
    let stateDict, createOptions, tensors, prefix;
    if (o.config !== undefined) {
      // One layer of a Hugging Face checkpoint, described by its config.json.
      for (const name of ['numHeads', 'prefix', 'layout', 'addZeroAttn'])
        if (o[name] !== undefined) throw typeError(name, 'absent with config (the config says it)', o[name]);
      const layer = checkInteger(o.layer, 'layer', { min: 0 });
      const attention = o.attention === undefined ? 'self' : checkEnum(o.attention, 'attention', HF_ATTENTION);
      const model = optionsFromConfig(o.config, { layer, attention });
      tensors = parseSafetensors(bytes).tensors;
      ({ prefix, stateDict, options: createOptions } = stateDictFromModel(tensors, model, { layer, attention }));
    } else {
      for (const name of ['layer', 'attention'])
        if (o[name] !== undefined) throw typeError(name, 'given with config (a Hugging Face config.json object)', o[name]);
      const where = prefixAndLayout(o);
      tensors = parseSafetensors(bytes).tensors;
      prefix = where.prefix;
      const found = toStateDict(tensors, where);
      stateDict = found.stateDict;
      createOptions = { ...found.options, numHeads: o.numHeads, ...(o.addZeroAttn === undefined ? {} : { addZeroAttn: o.addZeroAttn }) };
    }
    // Unless told otherwise, the weights stay as the file stores them: the
    // layer's projection weights are its only 2-D tensors.
    const stored = Object.keys(tensors).filter((name) => name.startsWith(prefix) && tensors[name].dims.length === 2);
    const weightDtype = o.weightDtype ?? storedWeightDtype(stored.map((name) => tensors[name].dtype));
    const mha = await MultiheadAttention.create({ ...createOptions, weightDtype });
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
  get numKVHeads() { return this.#config.numKVHeads; }
  get headDim() { return this.#config.headDim; }
  get kdim() { return this.#config.kdim; }
  get vdim() { return this.#config.vdim; }
  /** true or false for all projections, or { q, k, v, o } when they differ. */
  get bias() {
    const b = this.#config.bias;
    return b.q === b.k && b.k === b.v && b.v === b.o ? b.q : b;
  }
  get addBiasKV() { return this.#config.addBiasKV; }
  get addZeroAttn() { return this.#config.addZeroAttn; }
  /** 'torch' (nn.MultiheadAttention's state_dict names) or 'hf' (q_proj, k_proj, v_proj, o_proj, ...). */
  get weightNames() { return this.#config.weightNames; }
  get rope() { return this.#config.rope; }
  /** The score scale; 1/sqrt(headDim) unless set. */
  get scale() { return this.#config.scale || 1 / Math.sqrt(this.#config.headDim); }
  get softcap() { return this.#config.softcap || null; }
  get alibi() { return this.#config.alibi; }
  get slidingWindow() { return this.#config.slidingWindow || null; }
  get qkNorm() { return this.#config.qkNormEps ? { eps: this.#config.qkNormEps } : null; }
  /** Whether each head has a learned sink logit (the parameter `sinks`, GPT-OSS). */
  get sinks() { return this.#config.sinks; }
  /** How the projection weights are stored: 'f32', 'f16', 'bf16' or 'int8'. */
  get weightDtype() { return this.#config.weightDtype; }
  /** Bytes this layer's weights hold in WebAssembly memory, in their stored format. */
  get weightBytes() {
    const layer = this.#live('weightBytes');
    return callModule(this.#m, () => layer.weightBytes());
  }
  /** Whether dispose() has run. */
  get disposed() { return this.#layer == null; }

  #live(method) {
    if (this.#layer == null)
      throw new Error(`MultiheadAttention.${method}: this layer was disposed; create a new one`);
    if (this.#m.broken != null) throw brokenError(this.#m);
    return this.#layer;
  }

  // A CoreLayer query that leaves its answer in result().
  #ask(layer, what, fn) {
    run(this.#m, layer, what, fn);
    return callModule(this.#m, () => layer.result());
  }

  /** PyTorch state_dict keys of this layer, with their shapes. */
  parameterShapes() {
    const layer = this.#live('parameterShapes');
    const shapes = {};
    for (const name of this.#ask(layer, 'parameterShapes: ', () => layer.parameterNames()))
      shapes[name] = this.#ask(layer, 'parameterShapes: ', () => layer.parameterShape(name));
    return shapes;
  }

  /**
   * Loads weights given under PyTorch's state_dict names. Each value is a
   * Float32Array in PyTorch's row-major layout, or a tensor { data, dims }.
   * Every missing, unexpected or misshapen key is named; nothing is loaded
   * unless everything is right. `strict: false` allows missing keys.
   */
  loadStateDict(dict, options) {
    const layer = this.#live('loadStateDict');
    const o = readOptions(options, ['strict'], 'loadStateDict options');
    const strict = o.strict === undefined ? true : checkBoolean(o.strict, 'strict');
    if (dict === null || typeof dict !== 'object' || Array.isArray(dict) || typedArrayKind(dict) !== undefined)
      throw typeError('stateDict', 'an object of Float32Arrays', dict, `loadStateDict: state dict must be an object of Float32Arrays, got ${describe(dict)}`);
    const shapes = new Map(Object.entries(this.parameterShapes()));
    const problems = [];
    const values = new Map();
    const given = Object.keys(dict);
    for (const name of given) {
      const shape = shapes.get(name);
      if (shape === undefined) { problems.push(`unexpected key '${name}'`); continue; }
      const value = dict[name];  // read once
      let data;
      try {
        data = typedArrayKind(value) === 'Float32Array' ? value : readTensor(value, `'${name}'`, ['Float32Array']);
      } catch (err) {
        problems.push(`'${name}' must be a Float32Array or { data: Float32Array, dims }: ${err.message}`);
        continue;
      }
      if (data !== value) {  // a tensor: its dims must be the parameter's
        if (shapeString(data.dims) !== shapeString(shape)) {
          problems.push(`'${name}' must have dims ${shapeString(shape)}, got ${shapeString(data.dims)}`);
          continue;
        }
        data = data.data;
      }
      if (typedLength(data) !== product(shape)) { problems.push(`'${name}' must have ${product(shape)} values (shape ${shapeString(shape)}), got ${typedLength(data)}`); continue; }
      values.set(name, data);
    }
    if (strict) for (const name of shapes.keys()) if (!given.includes(name)) problems.push(`missing key '${name}'`);
    if (problems.length > 0) {
      const kind = problems.every((p) => p.includes('must be a Float32Array')) ? TypeError : RangeError;
      throw Object.assign(new kind(`loadStateDict: ${problems.join('; ')}. This layer's keys: ${[...shapes].map(([n, s]) => `${n} ${shapeString(s)}`).join(', ')}`),
        { argument: 'stateDict', expected: [...shapes.keys()].join(', '), actual: given.join(', ') });
    }
    // Every value is read; the caller's getters may have disposed this
    // layer or detached an array read earlier.
    this.#live('loadStateDict');
    const { slot } = codesOf(this.#m);
    for (const [name, data] of values) unchanged(data, product(shapes.get(name)), `loadStateDict: '${name}'`);
    const send = (name, data, store) => {
      const n = typedLength(data);
      run(this.#m, layer, 'loadStateDict: ', () => layer.reserve(slot.parameter, n));
      if (n > 0) callModule(this.#m, () => layer.view(slot.parameter)).set(data);
      run(this.#m, layer, 'loadStateDict: ', () => layer.setParameter(name, n, store));
    };
    // A reduced weightDtype may refuse a value (f16's range, int8's finite
    // scales): every weight is checked before any is stored.
    if (this.#config.weightDtype !== 'f32') for (const [name, data] of values) send(name, data, false);
    for (const [name, data] of values) send(name, data, true);
  }

  /** The weights under PyTorch's state_dict names, as fresh tensors. */
  stateDict() {
    const layer = this.#live('stateDict');
    const dict = {};
    for (const [name, shape] of Object.entries(this.parameterShapes()))
      dict[name] = new Tensor(this.#ask(layer, 'stateDict: ', () => layer.parameterValues(name)), shape);
    return dict;
  }

  /**
   * A key/value cache for decoding with this layer: `capacity` positions of
   * `batch` sequences (default 1). Pass it as forward's `cache` option.
   */
  createCache(options) {
    const layer = this.#live('createCache');
    const o = readOptions(options, ['batch', 'capacity'], 'createCache options');
    const batch = o.batch === undefined ? 1 : checkInteger(o.batch, 'batch', { min: 1 });
    const capacity = checkInteger(o.capacity, 'capacity', { min: 1 });
    return this.#makeSource(KVCache, 'createCache', (core) => core.make(layer, batch, capacity));
  }

  /**
   * An encoder output `[B, M, kdim]` (unbatched `[M, kdim]`) projected into
   * keys and values once (Whisper's decoder, T5-style cross-attention): pass
   * it as forward's `key` on every decoding step.
   */
  projectMemory(encoderOutput) {
    const layer = this.#live('projectMemory');
    const t = readTensor(encoderOutput, 'encoderOutput', ['Float32Array']);
    if (t.dims.length !== 2 && t.dims.length !== 3)
      throw typeError('encoderOutput', 'dims [B, M, kdim] or [M, kdim]', shapeString(t.dims));
    const [B, M, width] = t.dims.length === 3 ? t.dims : [1, ...t.dims];
    if (width !== this.#config.kdim) throw typeError('encoderOutput', `a last dim of kdim=${this.#config.kdim}`, shapeString(t.dims));
    const m = this.#m, { slot } = codesOf(m);
    run(m, layer, 'projectMemory: ', () => layer.reserve(slot.key, typedLength(t.data)));
    callModule(m, () => layer.view(slot.key).set(t.data));
    return this.#makeSource(EncoderMemory, 'projectMemory', (core) => core.make(layer, B, M),
      (core) => layer.projectMemory(core, B, M));
  }

  // A cache or memory: its core object made (and filled) by the steps given.
  #makeSource(Class, what, ...steps) {
    const m = this.#m, layer = this.#layer;
    const core = callModule(m, () => new m.core.CoreCache());
    try {
      for (const step of steps) run(m, step === steps[0] ? core : layer, `${what}: `, () => step(core));
    } catch (err) {
      if (m.broken == null) core.delete();
      throw err;
    }
    return makeSource(Class, m, core, this);
  }

  /**
   * Runs the layer: `key` defaults to `query`, `value` to `key` (pass null to
   * skip one); `key` may be an EncoderMemory, and `options.cache` a KVCache
   * of this layer. Returns fresh tensors the caller owns.
   */
  forward(query, key = null, value = null, options = undefined) {
    const layer = this.#live('forward');
    const m = this.#m, c = this.#config, codes = codesOf(m);
    const o = readOptions(options, FORWARD_OPTIONS, 'forward options');
    let source = null, core = null, handle = null;
    if (key instanceof EncoderMemory) {
      handle = key;
      core = key.coreFor(this, 'forward');
      source = { kind: 'memory', batch: key.batch, frames: key.length };
      key = null;
    }
    if (o.cache != null) {
      if (!(o.cache instanceof KVCache)) throw typeError('cache', "a KVCache from this layer's createCache()", o.cache);
      if (source) throw typeError('cache', 'absent when key is an EncoderMemory', o.cache);
      handle = o.cache;
      core = o.cache.coreFor(this, 'forward');
      source = { kind: 'cache', batch: o.cache.batch, past: o.cache.length };
    }
    const plan = planForward(query, key, value, o, c, codes, source);
    const { B, Lq, Lk, flags } = plan;
    // Everything is read: no caller's code runs from here on. What it did
    // meanwhile (a getter that disposed this layer, or detached or resized
    // an array already read) is refused here, before the module is used.
    this.#live('forward');
    handle?.coreFor(this, 'forward');
    for (const [slot, src, length] of plan.writes) unchanged(src, length, slotName(codes, slot));
    const writes = plan.writes;

    if (source) callModule(m, () => layer.attach(core, source.kind === 'cache' ? 1 : 2));
    try {
      // The whole call must fit the heap before anything is allocated.
      run(m, layer, 'forward: ', () => layer.admit(B, Lq, Lk, flags));
      // Size every input slot first: any growth detaches earlier views.
      for (const [slot, , length] of writes) run(m, layer, 'forward: ', () => layer.reserve(slot, length));
      for (const [slot, src, length] of writes) if (length > 0) callModule(m, () => layer.view(slot)).set(src);
      run(m, layer, 'forward: ', () => layer.forward(B, Lq, Lk, flags));
    } finally {
      if (source && m.broken == null) layer.detach();
    }

    // Copy results out: views into wasm memory are never handed out.
    return callModule(m, () => {
      const take = (slot) => new Float32Array(layer.view(slot));
      const { slot } = codes;
      const lead = plan.batched ? [B] : [];
      const result = { output: new Tensor(take(slot.output), [...lead, Lq, c.embedDim]) };
      if (plan.needWeights !== 'none') {
        const S = plan.columns ?? layer.sourceLen(Lk);
        result.weights = new Tensor(take(slot.weights), plan.needWeights === 'average' ? [...lead, Lq, S] : [...lead, c.numHeads, Lq, S]);
      }
      if (plan.returnHeads) result.heads = new Tensor(take(slot.heads), [...lead, c.numHeads, Lq, c.headDim]);
      if (plan.returnConcat) result.concat = new Tensor(take(slot.concat), [...lead, Lq, c.numHeads * c.headDim]);
      return result;
    });
  }

  /** Frees the layer's WebAssembly memory. A second call does nothing. */
  dispose() {
    if (this.#layer == null) return;
    registry?.unregister(this);
    if (this.#m.broken == null) callModule(this.#m, () => this.#layer.delete());
    this.#layer = null;
  }

  [Symbol.dispose]() { this.dispose(); }
}
