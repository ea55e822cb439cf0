// mha-wasm itself, through its public JS API, exactly as a user calls it:
// forward() copies the input in and returns a fresh output array. Loaded from
// `distDir` (bench/run.js passes its frozen copy of dist/; default: dist/).
//
// Two peers, one per instruction mix, each its own instance of the library:
//   'mha-wasm'          init({ simd: 'auto' }): the package's default, which
//                       picks the relaxed build ('relaxed' / 'relaxed-threads',
//                       f32x4.relaxed_madd) wherever the engine has relaxed
//                       SIMD, as Node 24 does. Its output is the reference
//                       every other peer is checked against, so it must load
//                       in any engine; describe() says which build ran, and
//                       the relaxed targets count only when it was a relaxed one.
//   'mha-wasm-simd128'  init({ simd: 'strict' }): the SIMD128 build ('simd' /
//                       'simd-threads'), multiply then add.
//
// Threads: the library's default is 'auto' (every hardware thread), so the
// bench always asks for the row's count with init({ threads }) before anything
// else loads the module, then believes only capabilities().threads (the count
// actually in use). A build that cannot run that count makes the cell n/a with
// the library's own reason, never a number measured at another thread count.
// Builds from before threads existed reject the option and report
// `threads: false`; they count as single-threaded; builds from before the
// simd option reject it, and then the SIMD128 peer is n/a.
//
// `pinnedThreads` makes the in-process 1-thread reference of the multi-thread
// rows: its own instance of the library, initialised with that count
// whatever the row's. Why: the 2-thread scaling target divides a 1-thread
// time by a 2-thread one, and taken from two processes minutes apart the
// quotient mixed in how busy the shared machine was at each moment (1.64x in
// one run, 1.5-2.1x in one-process alternations the same day). Interleaved
// call by call in one process, both times see the same moments.
//
// Every instance but the row's default one ('mha-wasm') loads its own copy
// of the package's files, so that every module of it (index.js, loader.js,
// which holds the loaded module and the build it chose, and the glue) is
// another URL and so another module instance.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createOptions } from '../models.js';

const DEFAULT_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

// One loaded library per instance name ('' for the row's own): the module
// fixes its build when it loads.
const libraries = new Map();

function load(distDir, threads, simd, instance) {
  if (!libraries.has(instance)) {
    const state = { lib: null, noThreadOption: null, noSimdOption: null, loaded: null };
    state.loaded = (async () => {
      let dir = path.resolve(distDir);
      if (instance) {
        const copy = mkdtempSync(path.join(tmpdir(), `mha-wasm-${instance}-`));
        cpSync(dir, copy, { recursive: true });
        process.once('exit', () => rmSync(copy, { recursive: true, force: true }));
        dir = copy;
      }
      state.lib = await import(pathToFileURL(path.join(dir, 'index.js')).href);
      // Builds from before the simd option: the row's default peer runs what
      // they have; asking one for a mix it cannot choose is an n/a.
      const options = { threads, simd };
      try {
        await state.lib.init(options);
      } catch (e) {
        if (!(e instanceof TypeError) || !/simd|threads/.test(e.message)) throw e;
        if (/simd/.test(e.message)) {
          state.noSimdOption = 'this build of mha-wasm has no simd option in init()';
          delete options.simd;
        }
        try {
          await state.lib.init(options);
        } catch (e2) {
          if (!(e2 instanceof TypeError) || !/threads/.test(e2.message)) throw e2;
          state.noThreadOption = 'threads not implemented in this build (init has no threads option)';
          await state.lib.init();
        }
      }
    })();
    libraries.set(instance, state);
  }
  return libraries.get(instance);
}

// The peers' ids and names per init({ simd }) mode.
const MIX = {
  auto: { id: 'mha-wasm', name: 'mha-wasm relaxed' },
  strict: { id: 'mha-wasm-simd128', name: 'mha-wasm SIMD128' },
};

// Reduced-precision weights (issue 21's weightDtype), measured on the decode
// steps only: peers of the row's default instance with that create option.
// Their outputs differ from the float32 reference by the weights' rounding, so
// they are checked against a looser bound: a fraction of the reference's
// largest magnitude.
export const WEIGHT_DTYPES = {
  f16: { id: 'mha-wasm-f16', name: 'mha-wasm f16 weights', relativeTolerance: 0.01 },
  bf16: { id: 'mha-wasm-bf16', name: 'mha-wasm bf16 weights', relativeTolerance: 0.05 },
  int8: { id: 'mha-wasm-int8', name: 'mha-wasm int8 weights', relativeTolerance: 0.05 },
};
const largest = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

export function createPeer({ distDir = DEFAULT_DIST, pinnedThreads = null, simd = 'auto', weightDtype = null } = {}) {
  if (!MIX[simd]) throw new Error(`mha-wasm peer: simd '${simd}' has no peer (known: ${Object.keys(MIX).join(', ')})`);
  if (weightDtype && !WEIGHT_DTYPES[weightDtype]) throw new Error(`mha-wasm peer: weightDtype '${weightDtype}' has no peer`);
  const dtype = weightDtype ? WEIGHT_DTYPES[weightDtype] : null;
  // '' is the row's default instance; every other one gets its own copy of dist/.
  const instance = [simd === 'auto' ? '' : simd, pinnedThreads ? `${pinnedThreads}-thread` : ''].filter(Boolean).join('-');
  let state = null;
  let layer = null;
  let args = null;
  let options = null;
  let last = null;
  let source = null;  // a decode step's KVCache or EncoderMemory
  let noDtype = null;  // why this build cannot run weightDtype, if it cannot
  let cacheLength = 0;
  const lib = () => state.lib;
  const threadsInUse = () => {
    const n = lib().capabilities().threads;
    return typeof n === 'number' ? n : 1;
  };

  // A model's layer (bench/models.js) with the package's decoder options:
  // prefill (causal over the prompt), a decode step (the prompt run once
  // into a cache, then one token a call), or a cross-attention step (the
  // encoder output projected once, then one token a call against it).
  async function setupModel(shape, weights, inputs) {
    const { MultiheadAttention, Tensor } = lib();
    const E = shape.E;
    layer = await MultiheadAttention.create(createOptions(shape, dtype ? { weightDtype } : {}));
    layer.loadStateDict(weights);
    args = [new Tensor(inputs.query, [shape.B, shape.Lq, E]), null, null];
    if (shape.step === 'prefill') options = { causal: true };
    else if (shape.step === 'decode') {
      source = layer.createCache({ batch: shape.B, capacity: shape.Lk + shape.Lq });
      layer.forward(new Tensor(inputs.prompt, [shape.B, shape.Lk, E]), null, null, { cache: source });
      cacheLength = source.length;
      if (cacheLength !== shape.Lk) throw new Error(`the cache holds ${cacheLength} positions after a prompt of ${shape.Lk}`);
      options = { cache: source };
    } else {
      source = layer.projectMemory(new Tensor(inputs.memory, [shape.B, shape.Lk, E]));
      args[1] = source;
      options = {};
    }
  }

  return {
    id: dtype ? dtype.id : pinnedThreads ? `${MIX[simd].id}-${pinnedThreads}t` : MIX[simd].id,
    /** The output check's bound against the reference output, where it is not the bench's default. */
    tolerance: dtype ? (ref) => dtype.relativeTolerance * largest(ref) : undefined,
    // The default peer is named for the build 'auto' chose, once loaded.
    get name() {
      if (dtype) return dtype.name;
      const build = state?.lib?.capabilities().build;
      const base = simd === 'auto' && build && !build.startsWith('relaxed') ? `mha-wasm (${build}: no relaxed SIMD here)` : MIX[simd].name;
      return pinnedThreads ? `${base}, ${pinnedThreads} thread${pinnedThreads > 1 ? 's' : ''}` : base;
    },
    simd,
    get version() { return state?.lib?.version ?? null; },
    load(threads) {
      state = load(distDir, pinnedThreads ?? threads, simd, instance);
      if (!dtype) return state.loaded;
      // Whether this build takes the option: create refuses options it does
      // not know with a TypeError naming them.
      return state.loaded.then(async () => {
        try {
          (await lib().MultiheadAttention.create({ embedDim: 64, numHeads: 2, weightDtype })).dispose();
          noDtype = null;
        } catch (e) {
          if (!(e instanceof TypeError) && !(e instanceof RangeError)) throw e;
          noDtype = `this build of mha-wasm does not take weightDtype: '${weightDtype}' (${String(e.message).split(/[;\n]/)[0]})`;
        }
      });
    },

    unsupported(shape, rowThreads) {
      const threads = pinnedThreads ?? rowThreads;
      if (simd !== 'auto' && state.noSimdOption) return state.noSimdOption;
      if (dtype && shape.step !== 'decode' && shape.step !== 'cross') return `${weightDtype} weights are measured on the decode steps`;
      if (dtype && noDtype) return noDtype;
      const inUse = threadsInUse();
      if (inUse === threads) return null;
      const caps = lib().capabilities();
      return state.noThreadOption ?? `asked for ${threads} thread${threads > 1 ? 's' : ''}, the ${caps.build ?? 'loaded'} build runs ${inUse}` +
        (caps.reason ? ` (${caps.reason})` : '');
    },

    async setup(shape, weights, threads, inputs) {
      const { MultiheadAttention, Tensor } = lib();
      if (shape.model) return setupModel(shape, weights, inputs);
      layer = await MultiheadAttention.create({ embedDim: shape.E, numHeads: shape.H });
      layer.loadStateDict(weights);
      const { B, Lq, Lk, E } = shape;
      args = [new Tensor(inputs.query, [B, Lq, E]),
        inputs.key ? new Tensor(inputs.key, [B, Lk, E]) : null,
        inputs.value ? new Tensor(inputs.value, [B, Lk, E]) : null];
      options = shape.causal ? { isCausal: true } : {};
    },

    run() {
      last = layer.forward(args[0], args[1], args[2], options).output.data;
      // A decode step appends its token: back to the prompt, so every step
      // sees the same cache length.
      if (options.cache) options.cache.truncate(cacheLength);
    },
    output() { return last; },
    dispose() { source?.dispose(); source = null; layer?.dispose(); layer = null; last = null; },
    heapBytes: async () => (await lib().memoryStats()).heapBytes,
    /** The build and thread count in use, for the report. */
    describe() {
      const c = lib().capabilities();
      return { build: c.build ?? 'simd', simd, threads: threadsInUse(), reason: c.reason ?? state.noThreadOption };
    },
  };
}
