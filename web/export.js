// "Export JSON": everything the page shows, as one JSON document. Tensors are
// { dims, data } with data as plain numbers (float32 values written as the
// float64 JSON numbers they convert to, so reading them back and rounding with
// Math.fround gives the exact values the package returned).

const tensor = (data, dims) => (data == null ? null : { dims, data: Array.from(data) });

/** Builds the export document from the page's last good run. */
export function buildExport(run, caps, version) {
  const { p, input, result, average, timings, layer, options } = run;
  const { B, L, Lk, S, E } = input;
  const h = p.h, d = layer.headDim;
  const weights = p.weights === 'file' ? { source: 'state_dict', file: p.stateDictName }
    : p.weights === 'checkpoint' ? { source: 'checkpoint' } : { source: 'seeded', seed: p.seed };
  return {
    generator: `mha-wasm ${version} demo page`,
    package: { version, capabilities: caps },
    config: {
      embedDim: E, numHeads: h, headDim: d, bias: p.bias, addBiasKV: p.addBiasKV, addZeroAttn: p.addZeroAttn,
      weights,
      // The decoder options as the layer reports them (numKVHeads, rope, …).
      layer,
    },
    forwardOptions: {
      isCausal: p.causal, fullyMaskedRows: p.fullyMaskedRows,
      keyPaddingMask: tensor(input.mask, [B, Lk]),
      positions: options.positions ? tensor(options.positions.data, options.positions.dims) : null,
    },
    input: {
      mode: p.mode,
      lines: input.lines ?? null,
      tokens: input.labels,
      keyTokens: input.cross ? input.keyLabels : null,
      embedding: input.embedding ? {
        method: 'token: FNV-1a hash of the lower-cased token seeds mulberry32, uniform in [-√3, √3); plus sinusoidal positional encoding (Vaswani et al. §3.5); padding rows are zero',
        tokenEmbedding: tensor(input.embedding, [B, L, E]),
        positionalEncoding: tensor(input.positional, [B, L, E]),
      } : null,
      query: tensor(input.X.data, [B, L, E]),
      key: input.cross ? tensor(input.key.data, [B, Lk, E]) : null,
      value: input.cross ? tensor(input.key.data, [B, Lk, E]) : null,
    },
    output: {
      output: tensor(result.output.data, result.output.dims),
      weightsPerHead: tensor(result.weights.data, result.weights.dims),
      weightsAverage: tensor(average.data, average.dims),
      heads: tensor(result.heads.data, result.heads.dims),
      concat: tensor(result.concat.data, result.concat.dims),
      S,
    },
    timingMs: timings,
  };
}

/** Starts a download of `doc` as a JSON file. */
export function downloadJson(doc, filename) {
  const blob = new Blob([JSON.stringify(doc)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
