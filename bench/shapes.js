// The benchmark's shapes (issue 5) and the FLOP count each is credited with.
//
// FLOPs count multiply + add as 2, for the matrix products only:
//   self-attention (and causal): 8·B·L·E² + 4·B·L²·E
//     (Q, K, V and output projections: 4 · 2·B·L·E²; QKᵀ and P·V: 2 · 2·B·L·L·E)
//   cross-attention (Lq ≠ Lk): 4·B·Lq·E² + 4·B·Lk·E² + 4·B·Lq·Lk·E
//     (Q and output projections on Lq rows, K and V projections on Lk rows)
// The causal shape is credited with the full non-causal count, so its GFLOP/s
// is an "effective" rate and the causal speed-up shows up directly.

/** @typedef {{ id: string, label: string, B: number, Lq: number, Lk: number, E: number, H: number,
 *   causal: boolean, cross: boolean, peers?: string[], note?: string }} Shape */

/** @type {Shape[]} */
export const SHAPES = [
  { id: 'L128', B: 1, Lq: 128, Lk: 128, E: 512, H: 8 },
  { id: 'L512', B: 1, Lq: 512, Lk: 512, E: 512, H: 8 },
  { id: 'L2048', B: 1, Lq: 2048, Lk: 2048, E: 512, H: 8 },
  { id: 'B4L256E768', B: 4, Lq: 256, Lk: 256, E: 768, H: 12 },
  { id: 'L512causal', B: 1, Lq: 512, Lk: 512, E: 512, H: 8, causal: true },
  { id: 'decode', B: 1, Lq: 1, Lk: 512, E: 512, H: 8, cross: true, note: 'one decoding step: 1 query against a 512-long key/value' },
  { id: 'teaching', B: 3, Lq: 4, Lk: 4, E: 16, H: 8, note: 'the README example; time is per-call overhead' },
  // mha-wasm only: memory must stay O(L) (no [L, L] score matrix), weights not requested.
  { id: 'L16384', B: 1, Lq: 16384, Lk: 16384, E: 512, H: 8, peers: ['mha-wasm'], note: 'memory test, weights not requested' },
].map((s) => ({ causal: false, cross: false, ...s, label: label({ causal: false, cross: false, ...s }) }));

function label(s) {
  const base = s.cross ? `(${s.B}, ${s.Lq}, ${s.E}, ${s.H}) × Lk ${s.Lk}` : `(${s.B}, ${s.Lq}, ${s.E}, ${s.H})`;
  return base + (s.causal ? ' causal' : '') + (s.cross ? ' cross' : '');
}

/** FLOPs credited to one forward pass of `shape` (see the header). */
export function flops({ B, Lq, Lk, E, cross }) {
  if (cross) return 4 * B * Lq * E * E + 4 * B * Lk * E * E + 4 * B * Lq * Lk * E;
  return 8 * B * Lq * E * E + 4 * B * Lq * Lk * E;
}

export const byId = (id) => {
  const s = SHAPES.find((x) => x.id === id);
  if (!s) throw new Error(`unknown shape '${id}'; known: ${SHAPES.map((x) => x.id).join(', ')}`);
  return s;
};

/** Shapes of the quick (development) run. */
export const QUICK_SHAPES = ['L128', 'L512', 'L512causal', 'decode', 'teaching'];

/**
 * Shapes measured in the same process, interleaved with each other: the causal
 * speed-up is a ratio of two of them, so they share the same noise.
 */
export const GROUPS = [['L512', 'L512causal']];

/** The L sweep of the plot: E = 512, H = 8, B = 1, self-attention. */
export const SWEEP = ['L128', 'L512', 'L2048'];
