// How spread out each query's attention is: the entropy of its row of
// weights, H = −Σ w·ln w (nats), from 0 (all weight on one key) to ln S (the
// same weight on all S keys). The package has no entropy function, so this is
// the page's one derived quantity, read from the package's weights only.

/** Entropy (nats) of each of `rows` rows of `cols` weights starting at `offset`. */
export function rowEntropies(weights, offset, rows, cols) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let h = 0;
    const at = offset + r * cols;
    for (let c = 0; c < cols; c++) {
      const w = weights[at + c];
      if (w > 0) h -= w * Math.log(w);  // 0·ln 0 = 0; a fully masked row (all 0) has entropy 0
    }
    out[r] = h;
  }
  return out;
}

/** The mean of the entropies of the rows not listed as padding. */
export function meanEntropy(entropies, rowIsPadding) {
  let sum = 0, n = 0;
  entropies.forEach((h, r) => { if (!rowIsPadding[r]) { sum += h; n++; } });
  return n === 0 ? 0 : sum / n;
}

/**
 * Per head of sequence b: { head, entropies, mean }, from per-head weights
 * [B, H, L, S], sorted from the most focused head (lowest mean) to the most spread.
 */
export function rankHeads(weights, { b, H, L, S, rowIsPadding }) {
  const heads = [];
  for (let h = 0; h < H; h++) {
    const entropies = rowEntropies(weights, (b * H + h) * L * S, L, S);
    heads.push({ head: h, entropies, mean: meanEntropy(entropies, rowIsPadding) });
  }
  return heads.sort((a, b2) => a.mean - b2.mean || a.head - b2.head);
}
