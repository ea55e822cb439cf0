// TensorFlow.js on @tensorflow/tfjs-backend-wasm (its SIMD build), in Node.
//
// The layer is written the way that reaches tfjs-wasm's fast path: its 2-D,
// un-transposed MatMul runs on XNNPACK, while its batched (3-D) and transposed
// MatMuls fall back to a plain loop (measured at about 1 GFLOP/s while writing
// this). So the projections are 2-D fused MatMuls against pre-transposed
// weights, and the attention is one 2-D MatMul pair per (batch, head).
//
// Threads: tfjs-backend-wasm 4.22 reports WASM_HAS_MULTITHREAD_SUPPORT = false
// under Node on purpose (tensorflow/tfjs#3830), and forcing the flag does not
// help: its pthread workers are started from blob: URLs, which Node's
// worker_threads refuse. So its multi-thread cells are n/a in Node.
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { transposed } from '../weights.js';

const require = createRequire(import.meta.url);
const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;

// The backend initialises once per process (setWasmPaths must precede it).
let loaded = null;
function loadBackend() {
  loaded ??= (async () => {
    // In Node the wasm files are read from node_modules through this prefix.
    tfwasm.setWasmPaths(wasmDir);
    tfwasm.setThreadsCount(1);
    await tf.setBackend('wasm');
    await tf.ready();
    if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')))
      throw new Error('tfjs-backend-wasm did not select its SIMD build');
  })();
  return loaded;
}

/** A fresh peer (it holds one shape's tensors). */
export function createPeer() {
  let t = null;      // the layer's tensors
  let dims = null;
  let inputs = null;
  let last = null;

  return {
    id: 'tfjs',
    name: 'tfjs-wasm',
    version: tf.version_core,
    load: loadBackend,

    unsupported: (shape, threads) => (shape.model ? 'the bench\'s tfjs layer is nn.MultiheadAttention\'s (no grouped heads, RoPE, QK-norm, softcap, window or cache)'
      : threads === 1 ? null
      : 'tfjs-backend-wasm disables threads under Node (its pthread workers need blob: URLs)'),

    async setup(shape, weights, threads, shapeInputs) {
      const { E, Lq, Lk } = shape;
      const W = weights.in_proj_weight, b = weights.in_proj_bias;
      t = {
        WqT: tf.tensor2d(transposed(W, E, E, 0), [E, E]),
        WkT: tf.tensor2d(transposed(W, E, E, E), [E, E]),
        WvT: tf.tensor2d(transposed(W, E, E, 2 * E), [E, E]),
        WoT: tf.tensor2d(transposed(weights['out_proj.weight'], E, E), [E, E]),
        bq: tf.tensor1d(b.slice(0, E)), bk: tf.tensor1d(b.slice(E, 2 * E)), bv: tf.tensor1d(b.slice(2 * E)),
        bo: tf.tensor1d(weights['out_proj.bias']),
        // Causal: an additive [Lq, Lk] mask, built once like a constant.
        mask: shape.causal ? tf.tensor2d(Float32Array.from({ length: Lq * Lk }, (_, i) => ((i % Lk) > Math.floor(i / Lk) ? -Infinity : 0)), [Lq, Lk]) : null,
      };
      dims = shape;
      inputs = shapeInputs;
    },

    run() {
      const { B, Lq, Lk, E, H } = dims;
      const d = E / H;
      // tidy must return the tensor, not its data: tidy walks whatever it
      // returns looking for tensors, which on a large Float32Array takes seconds.
      const y = tf.tidy(() => {
        const xq = tf.tensor2d(inputs.query, [B * Lq, E]);
        const xk = inputs.key ? tf.tensor2d(inputs.key, [B * Lk, E]) : xq;
        const xv = inputs.value ? tf.tensor2d(inputs.value, [B * Lk, E]) : xk;
        const q = tf.mul(tf.fused.matMul({ a: xq, b: t.WqT, bias: t.bq }), 1 / Math.sqrt(d));
        const k = tf.fused.matMul({ a: xk, b: t.WkT, bias: t.bk });
        const v = tf.fused.matMul({ a: xv, b: t.WvT, bias: t.bv });
        // [B·L, E] -> per (batch, head) 2-D matrices; K transposed up front so
        // every product is an un-transposed 2-D MatMul.
        const heads = (x, L, perm, shape) => tf.unstack(tf.reshape(tf.transpose(tf.reshape(x, [B, L, H, d]), perm), shape));
        const qs = heads(q, Lq, [0, 2, 1, 3], [B * H, Lq, d]);
        const kTs = heads(k, Lk, [0, 2, 3, 1], [B * H, d, Lk]);
        const vs = heads(v, Lk, [0, 2, 1, 3], [B * H, Lk, d]);
        const zs = qs.map((qi, i) => {
          let scores = tf.matMul(qi, kTs[i]);
          if (t.mask) scores = tf.add(scores, t.mask);
          return tf.matMul(tf.softmax(scores), vs[i]);
        });
        const concat = tf.reshape(tf.transpose(tf.reshape(tf.stack(zs), [B, H, Lq, d]), [0, 2, 1, 3]), [B * Lq, E]);
        return tf.fused.matMul({ a: concat, b: t.WoT, bias: t.bo });
      });
      last = y.dataSync();
      y.dispose();
    },

    output: () => last,
    dispose() {
      if (t) for (const x of Object.values(t)) x?.dispose();
      t = null;
      last = null;
    },
  };
}
