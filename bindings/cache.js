// The handles a layer gives for decoding: a key/value cache (self-attention
// over every earlier token) and an encoder memory (cross-attention over an
// encoder's output, projected once). Each owns WebAssembly memory: free it
// with dispose() (or `using`); a dropped one is reclaimed by the garbage
// collector. shared/DECODER_ATTENTION.md fixes the semantics.
import { callModule, brokenError, run } from './loader.js';
import { checkInteger } from './checks.js';

// Dropped handles: their native side is freed by the GC, unless their module
// was retired (its memory is gone with it).
const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ m, core }) => { if (m.broken == null) try { core.delete(); } catch { /* retired */ } })
  : null;

const CONSTRUCT = Symbol('made by a layer');

class Source {
  #m;
  #core;
  #layer;

  constructor(token, m, core, layer) {
    if (token !== CONSTRUCT) throw new TypeError(`use a layer's ${this.constructor === KVCache ? 'createCache' : 'projectMemory'}(), not new`);
    this.#m = m;
    this.#core = core;
    this.#layer = layer;
    registry?.register(this, { m, core }, this);
  }

  /** The core cache of `layer`'s calls: refused if another layer's, or disposed. */
  coreFor(layer, what) {
    if (this.#core == null) throw new Error(`${what}: this ${this.kind} was disposed`);
    if (this.#m.broken != null) throw brokenError(this.#m);
    if (layer !== this.#layer) throw new TypeError(`${what}: this ${this.kind} belongs to another layer`);
    return this.#core;
  }

  get kind() { return this instanceof KVCache ? 'cache' : 'memory'; }

  // A number the core reports (length, capacity, ...); 0 once disposed.
  read(fn) {
    if (this.#core == null || this.#m.broken != null) return 0;
    return callModule(this.#m, () => fn(this.#core));
  }

  status(what, fn) {
    if (this.#core == null) throw new Error(`${what}: this ${this.kind} was disposed`);
    run(this.#m, this.#core, `${what}: `, () => fn(this.#core));
  }

  /** The sequences it holds (B). */
  get batch() { return this.read((c) => c.batch()); }
  /** Whether dispose() has run. */
  get disposed() { return this.#core == null; }

  /** Frees its WebAssembly memory. A second call does nothing. */
  dispose() {
    if (this.#core == null) return;
    registry?.unregister(this);
    if (this.#m.broken == null) callModule(this.#m, () => this.#core.delete());
    this.#core = null;
  }

  [Symbol.dispose]() { this.dispose(); }
}

/**
 * A layer's key/value cache: per key/value head, the keys (after QK-norm and
 * RoPE) and values of the tokens run through the layer with `{ cache }`,
 * up to `capacity` positions. With a sliding window W it is a ring that
 * keeps what later queries can see (capacity >= W - 1 + the longest call).
 */
export class KVCache extends Source {
  /** Positions appended since the last reset. */
  get length() { return this.read((c) => c.length()); }
  /** Of those, the last ones held (a ring drops older ones). */
  get held() { return this.read((c) => c.held()); }
  get capacity() { return this.read((c) => c.capacity()); }
  /** Empties it: the next call starts at position 0. */
  reset() { this.status('reset', (c) => c.reset()); }
  /** Back to its state after the first `length` positions (rejected speculative tokens). */
  truncate(length) {
    const n = checkInteger(length, 'length', { min: 0, max: Number.MAX_SAFE_INTEGER });
    this.status('truncate', (c) => c.truncate(n));
  }
}

/** An encoder output's keys and values, projected once by a layer's projectMemory. */
export class EncoderMemory extends Source {
  /** Its frames (M). */
  get length() { return this.read((c) => c.held()); }
}

/** Makes a handle of `Class` over the core cache `core` for `layer` (index.js). */
export function makeSource(Class, m, core, layer) {
  return new Class(CONSTRUCT, m, core, layer);
}
