// The plain-JavaScript layer of bench/plain_js.js as a peer. JavaScript on the
// main thread has one thread, so its multi-thread cells are n/a.
import { plainForward } from '../plain_js.js';

export function createPeer() {
  let layer = null;
  let dims = null;
  let inputs = null;
  let last = null;
  return {
    id: 'plain-js',
    name: 'plain JS',
    version: `Node ${process.versions.node}`,
    async load() {},
    unsupported: (shape, threads) => (shape.model ? 'bench/plain_js.js is nn.MultiheadAttention (no grouped heads, RoPE, QK-norm, softcap, window or cache)'
      : threads === 1 ? null : 'single-threaded by construction'),
    async setup(shape, weights, threads, shapeInputs) {
      layer = { E: shape.E, H: shape.H, weights };
      dims = { B: shape.B, Lq: shape.Lq, Lk: shape.Lk, causal: shape.causal };
      inputs = shapeInputs;
    },
    run() { last = plainForward(layer, dims, inputs.query, inputs.key, inputs.value); },
    output: () => last,
    dispose() { last = null; },
  };
}
