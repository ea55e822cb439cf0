// "Export JSON" in the trained-models mode: the session as one document:
// the model, the typed and fed tokens, and every step's logits, prediction,
// cache length and each head's new weights row, as the runner returned them
// (float32 weights written as the float64 numbers they convert to, so
// Math.fround gives back the package's exact values).

export function buildModelExport(session, { name, feedBack, text }, caps, version) {
  const { model } = session;
  return {
    generator: `mha-wasm ${version} demo page, trained models`,
    package: { version, capabilities: caps },
    model: { name, title: model.config.title, vocab: model.vocab, architecture: model.config.architecture, heads: model.config.heads ?? [] },
    text,
    feedBack,
    typed: session.typed,
    fed: session.fed,
    cacheLength: session.fed.length,
    steps: session.steps.map((s, i) => ({
      position: s.position,
      token: s.token,
      symbol: model.vocab[s.token],
      generated: session.isGenerated(i),
      cacheLength: s.cacheLength,
      logits: Array.from(s.logits),
      prediction: s.prediction,
      // weights[layer][head]: the new row, one entry per key in the cache.
      weights: s.weights.map((heads) => heads.map((row) => Array.from(row))),
    })),
  };
}
