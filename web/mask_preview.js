// Which keys each query may see, from the options alone: the key padding and
// the keys clicked away, causal masking (a key after the query is hidden) and
// a sliding window of W keys counting the query itself (a key W or more
// positions back is hidden). It is what the options ask the package for, drawn
// before and independently of the run; the browser tests check it against
// the package's weights (a hidden key gets weight 0).

/**
 * A [L, S] Float32Array for sequence b: 1 = the query may see the key, 0 =
 * hidden. Keys past Lk (bias_k, the zero key) have no position and are
 * always visible. Positions are those of self-attention's tokens (any common
 * shift changes nothing here).
 */
export function visibleKeys({ L, Lk, S, mask, b, causal, window }) {
  const out = new Float32Array(L * S);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < S; j++) {
      let seen = true;
      if (j < Lk) {
        if (mask[b * Lk + j]) seen = false;
        if (causal && j > i) seen = false;
        if (window && i - j >= window) seen = false;
      }
      out[i * S + j] = seen ? 1 : 0;
    }
  }
  return out;
}
