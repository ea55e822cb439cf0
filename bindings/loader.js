// Finding, fetching and instantiating the WebAssembly module, once, and
// choosing which of the four builds runs here:
//
//   build              files                    needs
//   'simd'             mha-core.{mjs,wasm}      WebAssembly SIMD (every current runtime)
//   'simd-threads'     mha-core-mt.*            + SharedArrayBuffer (Node, cross-origin-isolated pages)
//   'relaxed'          mha-core-relaxed.*       + relaxed SIMD (Node 22+, current browsers)
//   'relaxed-threads'  mha-core-relaxed-mt.*    both
//
// Relaxed SIMD's f32x4.relaxed_madd is a fused multiply-add where the CPU has
// one, so the relaxed builds' results may differ in the last bits between
// CPUs; within one build they are bit-identical for any thread count.
//
// A module that trapped is never used again: instance() hands out a fresh
// one after markBroken().
import { checkInteger, readOptions, checkEnum, describe } from './checks.js';

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

// Node built-ins, hidden from bundlers, which must not pull them into a page.
const nodeImport = (name) => import(/* webpackIgnore: true */ /* @vite-ignore */ name);

// Whether a threaded build can run here: it needs SharedArrayBuffer, which
// Node has and a page has only when cross-origin isolated.
export const threadsAvailable = () =>
  isNode || (globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function');

// Smallest modules using one SIMD128 instruction and one relaxed-SIMD one:
// (func (drop (f32x4.add|relaxed_madd (v128.const 0) ...))).
const probeModule = (ops) => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,  // magic, version
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,              // type: () -> ()
  0x03, 0x02, 0x01, 0x00,                          // one function of that type
  0x0a, 4 + 18 * ops.operands + ops.code.length + 1, 0x01,  // code section, one body
  2 + 18 * ops.operands + ops.code.length + 1, 0x00,        // its size, no locals
  ...Array.from({ length: ops.operands }, () => [0xfd, 0x0c, ...new Array(16).fill(0)]).flat(),
  ...ops.code, 0x1a, 0x0b,                         // drop, end
]);
const SIMD128 = { operands: 2, code: [0xfd, 0xe4, 0x01] };          // f32x4.add
const RELAXED = { operands: 3, code: [0xfd, 0x85, 0x02] };          // f32x4.relaxed_madd
const validates = (ops) => typeof WebAssembly === 'object' && WebAssembly.validate(probeModule(ops));
export const simdAvailable = () => validates(SIMD128);
export const relaxedSimdAvailable = () => validates(RELAXED);

// The four builds, each imported by a literal specifier so that bundlers
// (Vite, webpack 5, Rollup) find the glue and, through it, the .wasm.
const FACTORIES = {
  simd: () => import('./mha-core.mjs'),
  'simd-threads': () => import('./mha-core-mt.mjs'),
  relaxed: () => import('./mha-core-relaxed.mjs'),
  'relaxed-threads': () => import('./mha-core-relaxed-mt.mjs'),
};

async function hardwareThreads() {
  if (isNode) {
    const os = await nodeImport('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 1;
}

// A user's `wasm` option as the bytes of a .wasm: bytes as they are, a fetch
// Response read, a URL, a { href } (a Location, an anchor) or a string
// resolved against the page (or, in Node, the working directory's file URL).
async function wasmBytes(source) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return source;
  if (typeof source === 'object' && typeof source.arrayBuffer === 'function') {  // a fetch Response
    if (source.ok === false) throw new Error(`init({ wasm }): the Response has HTTP status ${source.status}`);
    return source.arrayBuffer();
  }
  const href = typeof source === 'string' ? source : source instanceof URL ? source.href
    : typeof source === 'object' && typeof source.href === 'string' ? source.href : null;
  if (href == null)
    throw new TypeError(`init({ wasm }) must be a URL, a string, a { href }, bytes or a fetch Response, got ${describe(source)}`);
  const base = isNode ? (await nodeImport('node:url')).pathToFileURL(`${process.cwd()}/`).href : globalThis.location?.href;
  const url = new URL(href, base);
  if (url.protocol === 'file:' && isNode) {
    const [{ readFile }, { fileURLToPath }] = await Promise.all([nodeImport('node:fs/promises'), nodeImport('node:url')]);
    try {
      return await readFile(fileURLToPath(url));
    } catch (err) {
      throw new Error(`init({ wasm }): could not read ${url.href}: ${err.message}`, { cause: err });
    }
  }
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`init({ wasm }): could not fetch ${url.href}: ${err.message}`, { cause: err });
  }
  if (!response.ok) throw new Error(`init({ wasm }): could not fetch ${url.href}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

// One build, instantiated. A threaded build's pool worker that fails to
// start (its script blocked or missing) is only logged by the glue, whose
// promise then never settles: that message, or silence past a deadline,
// becomes a rejection.
async function instantiate(build, wasm) {
  const { default: factory } = await FACTORIES[build]();
  const options = {};
  if (wasm != null) options.wasmBinary = await wasmBytes(wasm);
  let timer;
  const failed = new Promise((_, reject) => {
    options.printErr = (text) => {
      if (/worker sent an error|failed to load|Aborted/.test(String(text))) reject(new Error(String(text)));
      else console.warn(text);
    };
    if (!build.endsWith('-threads')) return;
    timer = setTimeout(() => reject(new Error('its worker threads did not start within 15 s')), 15_000);
    if (isNode) timer.unref?.();
  });
  try {
    return await Promise.race([factory(options), failed]);
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    throw new Error(`mha-wasm: the '${build}' WebAssembly module failed to load: ${text.replace(/^Aborted\((.*)\)$/s, '$1')}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

const SIMD_MODES = ['auto', 'relaxed', 'strict'];

// The build to run and why, from what was asked and what this runtime has.
async function choose({ threads, simd }) {
  if (!simdAvailable())
    throw new Error('mha-wasm needs WebAssembly SIMD (Chrome 91, Firefox 89, Safari 16.4, Node 16.4 or later); this runtime has none');
  const relaxedHere = relaxedSimdAvailable();
  if (simd === 'relaxed' && !relaxedHere)
    throw new Error("init({ simd: 'relaxed' }): this runtime has no WebAssembly relaxed SIMD (Node 22+, Chrome 114+, Firefox 145+, Safari 26+ have it); use 'auto' or 'strict'");
  const relaxed = simd === 'relaxed' || (simd === 'auto' && relaxedHere);
  const simdWhy = simd === 'strict' ? "simd: 'strict' was asked for"
    : simd === 'relaxed' ? "simd: 'relaxed' was asked for"
    : relaxedHere ? "'auto' found relaxed SIMD" : "'auto' found no relaxed SIMD here";
  const want = threads === 'auto' ? await hardwareThreads() : threads;
  let threadsWhy;
  let threaded = false;
  if (want > 1 && threadsAvailable()) {
    threaded = true;
    threadsWhy = `${threads === 'auto' ? `'auto' found ${want} hardware threads` : `threads: ${want} was asked for`}; ${isNode ? 'Node has worker_threads and SharedArrayBuffer' : 'the page is cross-origin isolated'}`;
  } else if (want > 1) {
    threadsWhy = 'threads need SharedArrayBuffer, which this page lacks: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp';
  } else {
    threadsWhy = threads === 'auto' ? 'one hardware thread' : 'threads: 1 was asked for';
  }
  return { relaxed, threaded, want, simdWhy, threadsWhy };
}

// The module every layer of this package instance uses, and what it is.
// `broken` is the Error that retired it, if one did.
let current = null;   // { core, build, simd, reason, loadedFrom, broken }
let pending = null;   // the promise of `current`, while it loads
let requested = null; // the checked options of the last load, which a retired module's successor reuses

async function load({ wasm, threads, simd }) {
  const c = await choose({ threads, simd });
  const from = wasm == null ? 'the package (next to index.js)' : 'init({ wasm })';
  const single = c.relaxed ? 'relaxed' : 'simd';
  let build = c.threaded ? `${single}-threads` : single;
  let core, threadsWhy;
  try {
    core = await instantiate(build, wasm);
    threadsWhy = c.threaded ? `${c.threadsWhy}; ${core.setThreads(c.want)} in use` : c.threadsWhy;
  } catch (err) {
    // A threaded build may fail to start (a blocked worker script); the
    // package's single-threaded one then runs. A given `wasm` is one build's.
    if (!c.threaded || wasm != null) throw err;
    build = single;
    core = await instantiate(build, null);
    threadsWhy = `the threaded build failed to load (${err.message}), so the single-threaded one runs`;
  }
  return { core, build, simd: c.relaxed ? 'relaxed' : 'strict', loadedFrom: from,
    reason: `${c.simdWhy}; ${threadsWhy}`, broken: null };
}

/**
 * Loads the module (once; later calls return the same promise). After a
 * trap retired the module, the next call loads a fresh one.
 */
export function init(options) {
  try {
    const o = readOptions(options, ['wasm', 'threads', 'simd'], 'init options');
    const wasm = o.wasm;
    let threads = o.threads ?? (wasm != null ? 1 : 'auto');
    if (threads !== 'auto') threads = checkInteger(threads, 'threads', { min: 1 });
    const simd = o.simd ?? 'auto';
    checkEnum(simd, 'simd', SIMD_MODES);
    if (current != null && current.broken == null) return Promise.resolve();
    if (pending == null) {
      requested = { wasm, threads, simd };
      pending = load(requested).then((m) => { current = m; }).finally(() => { pending = null; });
    }
    return pending;
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The loaded, healthy module (loading it with the last options if need be). */
export async function instance() {
  if (current == null || current.broken != null) await init(current?.broken != null ? requested : undefined);
  return current;
}

/** The loaded module, or null, without loading one. */
export const loaded = () => current;

/**
 * Retires `module` after a trap: its memory may be corrupt, so every layer
 * made from it now throws `error`, and the next init()/create() loads anew.
 */
export function markBroken(module, error) {
  if (module.broken == null) module.broken = error;
}

/**
 * Runs `fn`, a call into `module`'s WebAssembly. An exception from inside
 * it is a trap (the core turns its own errors into statuses): the module
 * is retired (markBroken) and the caller gets an Error that says so.
 */
export function callModule(module, fn) {
  if (module.broken != null) throw brokenError(module);
  try {
    return fn();
  } catch (err) {
    // A trap is a RuntimeError; a sanitizer's stop an ExitStatus (not an Error, but named).
    const text = err != null && typeof err.message === 'string' ? `${err.name ?? 'Error'}: ${err.message}` : String(err);
    markBroken(module, new Error(`mha-wasm: the WebAssembly module trapped (${text}) and was retired; ` +
      'layers made from it can no longer run: create new ones (the next create() or init() loads a fresh module)', { cause: err }));
    throw brokenError(module);
  }
}

/** A fresh Error, for this caller's stack, carrying the message that retired `module`. */
export function brokenError(module) {
  return new Error(module.broken.message, { cause: module.broken.cause });
}

// The module's numbers (slot ids, flags, statuses), asked once per module.
export const codesOf = (m) => (m.codes ??= m.core.codes());

// Runs a method of a core object (a layer or a cache) that returns a status;
// throws its error, with the core's message after `what`, if any.
export function run(m, handle, what, fn) {
  const status = callModule(m, fn);
  const { status: s } = codesOf(m);
  if (status === s.ok) return;
  const message = `${what}${handle.error()}`;
  throw status === s.typeError ? new TypeError(message) : new RangeError(message);
}
