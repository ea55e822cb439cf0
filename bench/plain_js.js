// nn.MultiheadAttention (inference) in plain JavaScript on Float32Arrays: the
// "no library, no SIMD" baseline of the benchmark. Straightforward on purpose:
// the loops a competent developer writes first, no blocking, no unrolling.
// It does the same work as mha-wasm (including skipping the keys a causal
// mask blocks, which any hand-written loop would), and the bench checks its
// output against mha-wasm's, so its time is the time of equal work.
//
// Layout: batch-first, row-major; weights in PyTorch's state_dict layout.

// out[r, o] = b[o] + Σ_k x[r, k] · W[wRow + o, k]: both operands walk contiguous
// rows (PyTorch stores W as [out, in]), so the inner loop is a dot product.
function linear(x, rows, inDim, W, wRow, b, bOffset, outDim) {
  const out = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const xr = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = (wRow + o) * inDim;
      let s = b[bOffset + o];
      for (let k = 0; k < inDim; k++) s += x[xr + k] * W[wo + k];
      out[r * outDim + o] = s;
    }
  }
  return out;
}

/**
 * One forward pass.
 * @param {{ E: number, H: number, weights: Record<string, Float32Array> }} layer
 * @param {{ B: number, Lq: number, Lk: number, causal?: boolean }} dims
 * @param {Float32Array} query [B, Lq, E]
 * @param {Float32Array | null} key [B, Lk, E] (null: the query)
 * @param {Float32Array | null} value [B, Lk, E] (null: the key)
 * @returns {Float32Array} output [B, Lq, E]
 */
export function plainForward(layer, dims, query, key = null, value = null) {
  const { E, H, weights: w } = layer;
  const { B, Lq, Lk, causal = false } = dims;
  const d = E / H;
  const scale = 1 / Math.sqrt(d);
  const Win = w.in_proj_weight, bin = w.in_proj_bias;
  key = key ?? query;
  value = value ?? key;

  const q = linear(query, B * Lq, E, Win, 0, bin, 0, E);
  const k = linear(key, B * Lk, E, Win, E, bin, E, E);
  const v = linear(value, B * Lk, E, Win, 2 * E, bin, 2 * E, E);

  const concat = new Float32Array(B * Lq * E);
  const p = new Float64Array(Lk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const col = h * d;
      for (let i = 0; i < Lq; i++) {
        const qi = (b * Lq + i) * E + col;
        const last = causal ? Math.min(i, Lk - 1) : Lk - 1;
        // Scores, max-subtracted softmax, then the weighted sum of values.
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          const kj = (b * Lk + j) * E + col;
          let s = 0;
          for (let c = 0; c < d; c++) s += q[qi + c] * k[kj + c];
          s *= scale;
          p[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) { p[j] = Math.exp(p[j] - max); sum += p[j]; }
        const zi = (b * Lq + i) * E + col;
        for (let j = 0; j <= last; j++) {
          const pj = p[j] / sum;
          const vj = (b * Lk + j) * E + col;
          for (let c = 0; c < d; c++) concat[zi + c] += pj * v[vj + c];
        }
      }
    }
  }
  return linear(concat, B * Lq, E, w['out_proj.weight'], 0, w['out_proj.bias'], 0, E);
}
