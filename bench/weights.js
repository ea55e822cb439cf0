// The one set of weights and inputs every peer gets, so outputs can be compared.
//
// Deterministic (a seeded PRNG), in PyTorch's nn.MultiheadAttention layout
// (state_dict names, row-major). Unlike PyTorch's initialisation the biases are
// NOT zero: a peer that drops or misplaces a bias must fail the output check.
import { mulberry32 } from '../common/prng.js';

// The project's one seeded PRNG (the demo's token embeddings use it too),
// stretched to uniform in [-1, 1).
export function prng(seed) {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
}

export function uniform(n, scale, rand) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * scale;
  return a;
}

/**
 * The layer's parameters for embed dim E: xavier-uniform-sized in_proj_weight
 * [3E, E], in_proj_bias [3E], out_proj.weight [E, E] (±1/√E), out_proj.bias [E].
 */
export function makeWeights(E, seed = 5) {
  const rand = prng(seed * 7919 + E);
  return {
    in_proj_weight: uniform(3 * E * E, Math.sqrt(6 / (E + 3 * E)), rand),
    in_proj_bias: uniform(3 * E, 0.1, rand),
    'out_proj.weight': uniform(E * E, 1 / Math.sqrt(E), rand),
    'out_proj.bias': uniform(E, 0.1, rand),
  };
}

/** query [B, Lq, E] and, for cross-attention, key and value [B, Lk, E]; values in [-1, 1). */
export function makeInputs(shape, seed = 11) {
  const { B, Lq, Lk, E, cross } = shape;
  const rand = prng(seed * 104729 + B * 31 + Lq * 17 + E);
  const query = uniform(B * Lq * E, 1, rand);
  if (!cross) return { query, key: null, value: null };
  return { query, key: uniform(B * Lk * E, 1, rand), value: uniform(B * Lk * E, 1, rand) };
}

/** The [rows, cols] block of a row-major matrix, transposed to [cols, rows]. */
export function transposed(src, rows, cols, rowOffset = 0) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[(rowOffset + r) * cols + c];
  return out;
}

/**
 * The bytes of "weights.bin" that bench/make_onnx.py's graphs point into:
 * WqT, WkT, WvT, WoT [E, E] (each the PyTorch weight transposed, so x·WT is a
 * plain MatMul), then bq, bk, bv, bo [E].
 */
export function onnxWeightsBin(w, E) {
  const parts = [
    transposed(w.in_proj_weight, E, E, 0),
    transposed(w.in_proj_weight, E, E, E),
    transposed(w.in_proj_weight, E, E, 2 * E),
    transposed(w['out_proj.weight'], E, E, 0),
    w.in_proj_bias.subarray(0, E),
    w.in_proj_bias.subarray(E, 2 * E),
    w.in_proj_bias.subarray(2 * E, 3 * E),
    w['out_proj.bias'],
  ];
  const all = new Float32Array(4 * E * E + 4 * E);
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(all.buffer);
}
