// The model's prediction from a step's logits: the softmax over the
// vocabulary (in float64, shifted by the largest logit so exp never
// overflows) and the most likely tokens. The logits are the runner's.

/** Probabilities of the logits, in float64. */
export function softmax(logits) {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const p = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = p.reduce((a, b) => a + b, 0);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** The k most likely tokens: [{ token, symbol, p, logit }], most likely first. */
export function topTokens(logits, vocab, k = 5) {
  const p = softmax(logits);
  return Array.from(p, (prob, token) => ({ token, symbol: vocab[token], p: prob, logit: logits[token] }))
    .sort((a, b) => b.p - a.p || a.token - b.token)
    .slice(0, k);
}
