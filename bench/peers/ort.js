// onnxruntime-web (its WebAssembly backend, in Node) running the graphs of
// bench/make_onnx.py. One peer per graph variant:
//   ORT Attention  com.microsoft.Attention (one packed QKV GEMM + fused attention), self-attention only
//   ORT MHA        three projection MatMuls + com.microsoft.MultiHeadAttention
//   ORT GQA        projection MatMuls + com.microsoft.GroupQueryAttention (model layers only)
//   ORT basic      MatMul/Add/Reshape/Transpose/Softmax
// The model layers of bench/models.js (grouped heads, RoPE, QK-norm, decode
// steps, encoder memory) run the graphs ort_models.js picks.
// All share one onnxruntime module (it is a singleton), hence one wasm heap.
//
// Threads: env.wasm.numThreads is read once, when the module initialises, so
// each bench process runs at one thread count (bench/run.js starts one per count).
//
// Relaxed SIMD: no variant, because in onnxruntime-web 1.30 there is none to
// measure. env.wasm.simd = 'relaxed' only makes initialisation check that the
// engine has relaxed SIMD; the same ort-wasm-simd-threaded.wasm loads either
// way, and none of the package's .wasm files holds a relaxed-SIMD instruction
// (bench/limits.md, "Relaxed SIMD", says how that was checked).
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { onnxWeightsBin } from '../weights.js';
import { setupModel, unsupportedModel } from './ort_models.js';

export const VARIANTS = [
  { id: 'attention', name: 'ORT Attention' },
  { id: 'mha', name: 'ORT MHA' },
  // com.microsoft.GroupQueryAttention: the model layers only (ort_models.js).
  { id: 'gqa', name: 'ORT GQA', modelsOnly: true },
  { id: 'basic', name: 'ORT basic' },
];

export const graphFile = (dir, variant, kind, E, H) => path.join(dir, `${variant}-${kind}-e${E}h${H}.onnx`);
const kindOf = (shape) => (shape.cross ? 'cross' : shape.causal ? 'causal' : 'self');

const sessionOptions = (weightsBin) => ({
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
  // The graphs' initializers live in "weights.bin": hand onnxruntime the bytes
  // of the shared weights, so it computes with exactly what mha-wasm has.
  externalData: [{ path: 'weights.bin', data: weightsBin }],
  // Peers take turns in one process: onnxruntime's pool threads, left
  // spinning after each run, would take the cores from the next peer's run.
  extra: { session: { intra_op: { allow_spinning: '0' } } },
});

// Initialising the module needs a session: a tiny graph does it, so the
// memory tracker sees the module's heap being created inside load(). Once per
// process, whatever the number of peer instances.
let loaded = null;
function loadModule(graphDir, threads) {
  if (!loaded) {
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    loaded = (async () => {
      const model = fs.readFileSync(graphFile(graphDir, 'basic', 'self', 16, 8));
      const s = await ort.InferenceSession.create(model, sessionOptions(new Uint8Array(4 * (4 * 16 * 16 + 4 * 16))));
      await s.release();
    })();
  }
  return loaded;
}

/** One fresh peer per graph variant (a peer holds one session: one per shape). */
export function createPeers(graphDir) {
  return VARIANTS.map(({ id, name, modelsOnly }) => {
    let session = null;
    let feeds = null;
    let fetches = undefined;
    let last = null;
    return {
      id: `ort-${id}`,
      name,
      variant: id,
      version: ort.env.versions?.web ?? 'unknown',
      sharedHeap: 'onnxruntime-web',
      load: (threads) => loadModule(graphDir, threads),
      unsupported(shape) {
        if (shape.model) return unsupportedModel(id, shape);
        if (modelsOnly) return 'its graphs are built for the model layers only';
        if (id === 'attention' && shape.cross) return 'com.microsoft.Attention is self-attention only';
        return null;
      },
      async setup(shape, weights, threads, inputs) {
        if (shape.model) {
          const open = async (file, bin) => ort.InferenceSession.create(fs.readFileSync(file), sessionOptions(bin));
          ({ session, feeds } = await setupModel(ort, open, graphDir, id, shape, weights, inputs));
          fetches = ['y'];  // a decode step's present_key/value stay inside
          return;
        }
        fetches = undefined;
        const { B, Lq, Lk, E, H } = shape;
        const model = fs.readFileSync(graphFile(graphDir, id, kindOf(shape), E, H));
        session = await ort.InferenceSession.create(model, sessionOptions(onnxWeightsBin(weights, E)));
        feeds = shape.cross
          ? { q: new ort.Tensor('float32', inputs.query, [B, Lq, E]),
              k: new ort.Tensor('float32', inputs.key, [B, Lk, E]),
              v: new ort.Tensor('float32', inputs.value, [B, Lk, E]) }
          : { x: new ort.Tensor('float32', inputs.query, [B, Lq, E]) };
      },
      async run() {
        const result = await (fetches ? session.run(feeds, fetches) : session.run(feeds));
        last = result.y.data;
      },
      output: () => last,
      async dispose() { await session?.release(); session = null; last = null; },
    };
  });
}
