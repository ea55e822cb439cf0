// mha-wasm itself, through its public JS API, exactly as a user calls it:
// forward() copies the input in and returns a fresh output array. Loaded from
// `distDir` (bench/run.js passes its frozen copy of dist/; default: dist/).
//
// Threads: the library's default is 'auto' (every hardware thread), so the
// bench always asks for the row's count with init({ threads }) before anything
// else loads the module, then believes only capabilities().threads (the count
// actually in use). A build that cannot run that count makes the cell n/a with
// the library's own reason, never a number measured at another thread count.
// Builds from before threads existed reject the option and report
// `threads: false`; they count as single-threaded.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DEFAULT_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

let lib = null;     // the module, once per process: it fixes its build when it loads
let loaded = null;
let noThreadOption = null;

function load(distDir, threads) {
  loaded ??= (async () => {
    lib = await import(pathToFileURL(path.resolve(distDir, 'index.js')).href);
    try {
      await lib.init({ threads });
    } catch (e) {
      if (!(e instanceof TypeError) || !/threads/.test(e.message)) throw e;
      noThreadOption = 'threads not implemented in this build (init has no threads option)';
      await lib.init();
    }
  })();
  return loaded;
}

function threadsInUse() {
  const n = lib.capabilities().threads;
  return typeof n === 'number' ? n : 1;
}

export function createPeer({ distDir = DEFAULT_DIST } = {}) {
  let layer = null;
  let args = null;
  let options = null;
  let last = null;

  return {
    id: 'mha-wasm',
    name: 'mha-wasm',
    get version() { return lib?.version ?? null; },
    load: (threads) => load(distDir, threads),

    unsupported(shape, threads) {
      const inUse = threadsInUse();
      if (inUse === threads) return null;
      const caps = lib.capabilities();
      return noThreadOption ?? `asked for ${threads} thread${threads > 1 ? 's' : ''}, the ${caps.build ?? 'loaded'} build runs ${inUse}` +
        (caps.reason ? ` (${caps.reason})` : '');
    },

    async setup(shape, weights, threads, inputs) {
      layer = await lib.MultiheadAttention.create({ embedDim: shape.E, numHeads: shape.H });
      layer.loadStateDict(weights);
      const { B, Lq, Lk, E } = shape;
      args = [new lib.Tensor(inputs.query, [B, Lq, E]),
        inputs.key ? new lib.Tensor(inputs.key, [B, Lk, E]) : null,
        inputs.value ? new lib.Tensor(inputs.value, [B, Lk, E]) : null];
      options = shape.causal ? { isCausal: true } : {};
    },

    run() { last = layer.forward(args[0], args[1], args[2], options).output.data; },
    output() { return last; },
    dispose() { layer?.dispose(); layer = null; last = null; },
    heapBytes: async () => (await lib.memoryStats()).heapBytes,
    /** The build and thread count in use, for the report. */
    describe() {
      const c = lib.capabilities();
      return { build: c.build ?? 'simd', threads: threadsInUse(), reason: c.reason ?? noThreadOption };
    },
  };
}
