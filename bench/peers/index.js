// Every peer of the benchmark, in report column order. mha-wasm comes first:
// its output is the reference the others are checked against.
import { createPeer as mhaWasm } from './mha_wasm.js';
import { createPeers as ortPeers } from './ort.js';
import { createPeer as tfjs } from './tfjs.js';
import { createPeer as plainJs } from './plain_js.js';

export const PEER_IDS = ['mha-wasm', 'ort-attention', 'ort-mha', 'ort-basic', 'tfjs', 'plain-js'];

/** Fresh instances of all peers; `graphDir` holds bench/make_onnx.py's graphs, `distDir` mha-wasm's build. */
export function createPeers({ graphDir, distDir }) {
  return [mhaWasm({ distDir }), ...ortPeers(graphDir), tfjs(), plainJs()];
}
