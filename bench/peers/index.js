// Every peer of the benchmark, in report column order. mha-wasm comes first:
// its output is the reference the others are checked against. It is two
// peers, each its own instance of the library (see mha_wasm.js):
//   'mha-wasm'          init({ simd: 'auto' }), the package's default: the
//                       relaxed-SIMD build wherever the engine has relaxed SIMD
//   'mha-wasm-simd128'  init({ simd: 'strict' }): the SIMD128 build
// and, on the decode steps, the default instance with f16 and int8 weights
// ('mha-wasm-f16', 'mha-wasm-bf16', 'mha-wasm-int8': create's weightDtype, where the build
// takes it).
import { createPeer as mhaWasm } from './mha_wasm.js';
import { createPeers as ortPeers } from './ort.js';
import { createPeer as tfjs } from './tfjs.js';
import { createPeer as plainJs } from './plain_js.js';

export const PEER_IDS = ['mha-wasm', 'mha-wasm-simd128', 'mha-wasm-f16', 'mha-wasm-bf16', 'mha-wasm-int8', 'ort-attention', 'ort-mha', 'ort-gqa', 'ort-basic', 'tfjs', 'plain-js'];

/** mha-wasm's default (relaxed where available) peer and its SIMD128 one. */
export const MHA_RELAXED = 'mha-wasm';
export const MHA_SIMD128 = 'mha-wasm-simd128';

// In rows of more than one thread, mha-wasm ('mha-wasm', the default build) at
// one thread in the same process (see mha_wasm.js): the 1-thread side of the
// scaling target, not a peer.
export const ONE_THREAD_REFERENCE = 'mha-wasm-1t';

/**
 * Fresh instances of all peers for a row of `threads` threads; `graphDir`
 * holds bench/make_onnx.py's graphs, `distDir` mha-wasm's build.
 */
export function createPeers({ graphDir, distDir, threads }) {
  const reference = threads > 1 ? [mhaWasm({ distDir, pinnedThreads: 1 })] : [];
  return [mhaWasm({ distDir }), mhaWasm({ distDir, simd: 'strict' }), mhaWasm({ distDir, weightDtype: 'f16' }), mhaWasm({ distDir, weightDtype: 'bf16' }),
    mhaWasm({ distDir, weightDtype: 'int8' }),
    ...reference, ...ortPeers(graphDir), tfjs(), plainJs()];
}
