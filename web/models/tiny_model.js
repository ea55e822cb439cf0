// Runs one of the demo's trained models (web/models/<name>.json and .safetensors,
// written by scripts/train_demo.py) in the browser or in Node: embeddings,
// learned positions, layer norms, the MLP and the unembedding in plain JS
// (float64), every attention layer through mha-wasm (float32), so every
// attention weight the page shows is the package's.
//
// The package is a parameter, not an import: the page passes the module it
// loaded ('mha-wasm' through its import map), the Node tests pass dist/index.js.
//
//   const model = await loadTinyModel(pkg, config, weightsBytes);
//   const whole = model.run(model.encode('abcab'));      // one causal call per layer
//   const stepper = model.stepper();                      // a key/value cache per layer
//   const s = stepper.step(model.encode('a')[0]);         // { logits, prediction, weights, cacheLength, ... }
//   stepper.dispose(); model.dispose();
//
// No DOM here: fetching the files is fetchTinyModel's job, or the caller's.

/** Loads a model from its JSON description's URL (the weights file sits beside it). */
export async function fetchTinyModel(pkg, configUrl) {
  const configResponse = await fetch(configUrl);
  if (!configResponse.ok) throw new Error(`${configUrl}: HTTP ${configResponse.status}`);
  const config = await configResponse.json();
  const weightsUrl = new URL(config.weights, new URL(configUrl, globalThis.location?.href));
  const weightsResponse = await fetch(weightsUrl);
  if (!weightsResponse.ok) throw new Error(`${weightsUrl}: HTTP ${weightsResponse.status}`);
  return loadTinyModel(pkg, config, new Uint8Array(await weightsResponse.arrayBuffer()));
}

/**
 * A model from its JSON description (`config`) and safetensors bytes. Each
 * attention layer is a mha-wasm MultiheadAttention loaded with loadStateDict
 * under nn.MultiheadAttention's names.
 */
export async function loadTinyModel(pkg, config, weightsBytes) {
  const { tensors } = pkg.parseSafetensors(weightsBytes);
  const arch = config.architecture;
  const names = arch.tensors;
  const get = (name) => {
    const t = tensors[name];
    if (t === undefined) throw new RangeError(`${config.name}: the weights have no tensor '${name}'`);
    return t;
  };
  const norm = (prefix) => ({ weight: get(`${prefix}weight`).data, bias: get(`${prefix}bias`).data });
  const linear = (prefix) => ({ weight: get(`${prefix}weight`), bias: get(`${prefix}bias`).data });
  const attention = [];
  try {
    for (const layerNames of names.layers) {
      const mha = await pkg.MultiheadAttention.create({ embedDim: arch.dModel, numHeads: arch.numHeads });
      attention.push(mha);
      const p = layerNames.attention;
      mha.loadStateDict({
        in_proj_weight: get(`${p}in_proj_weight`), in_proj_bias: get(`${p}in_proj_bias`),
        'out_proj.weight': get(`${p}out_proj.weight`), 'out_proj.bias': get(`${p}out_proj.bias`),
      });
    }
    const layers = names.layers.map((n, i) => ({
      norm1: norm(n.norm1), attention: attention[i],
      norm2: n.norm2 ? norm(n.norm2) : null,
      mlpIn: n.mlpIn ? linear(n.mlpIn) : null, mlpOut: n.mlpOut ? linear(n.mlpOut) : null,
    }));
    return new TinyModel(config, {
      tokenEmbedding: get(names.tokenEmbedding).data, positionEmbedding: get(names.positionEmbedding).data,
      finalNorm: norm(names.finalNorm), unembedding: linear(names.unembedding), layers,
    });
  } catch (err) {
    for (const mha of attention) mha.dispose();
    throw err;
  }
}

export class TinyModel {
  #parts;

  constructor(config, parts) {
    this.config = config;
    this.vocab = config.vocab;
    this.dModel = config.architecture.dModel;
    this.numLayers = config.architecture.numLayers;
    this.numHeads = config.architecture.numHeads;
    this.maxLen = config.architecture.maxLen;
    this.#parts = parts;
  }

  /** Text to token ids, one vocabulary symbol per character; refuses others by name. */
  encode(text) {
    return Array.from(text, (ch, i) => {
      const id = this.vocab.indexOf(ch);
      if (id < 0) throw new RangeError(`${this.config.name}: '${ch}' (character ${i + 1}) is not in the vocabulary ${this.vocab.join('')}`);
      return id;
    });
  }

  decode(tokens) {
    return tokens.map((t) => this.vocab[t]).join('');
  }

  /**
   * The whole sequence at once, one causal call per attention layer:
   * logits [L][V] (Float64Array rows) and weights[layer] = Float32Array
   * [H, L, L] (the package's per-head weights).
   */
  run(tokens) {
    this.#checkPositions(tokens, 0);
    let x = this.#embed(tokens, 0);
    const weights = [];
    for (const layer of this.#parts.layers) {
      let w;
      ({ x, weights: w } = this.#block(layer, x, tokens.length, (mha, input) =>
        mha.forward(input, null, null, { isCausal: true, needWeights: 'per-head' })));
      weights.push(w.data);
    }
    return { logits: this.#logits(x, tokens.length), weights };
  }

  /** One token at a time, through a key/value cache per attention layer. */
  stepper() {
    return new Stepper(this, this.#parts.layers.map((l) => l.attention.createCache({ capacity: this.maxLen })),
      (token, caches) => this.#step(token, caches));
  }

  /** Frees the attention layers' WebAssembly memory. */
  dispose() {
    for (const layer of this.#parts.layers) layer.attention.dispose();
  }

  #step(token, caches) {
    const position = caches[0].length;
    this.#checkPositions([token], position);
    let x = this.#embed([token], position);
    const weights = [];
    this.#parts.layers.forEach((layer, i) => {
      let w;
      ({ x, weights: w } = this.#block(layer, x, 1, (mha, input) =>
        mha.forward(input, null, null, { cache: caches[i], needWeights: 'per-head' })));
      // [H, 1, S]: one new row per head, over every position the cache holds.
      const S = w.dims[2];
      weights.push(Array.from({ length: this.numHeads }, (_, h) => w.data.slice(h * S, (h + 1) * S)));
    });
    const logits = this.#logits(x, 1)[0];
    return { position, token, logits, prediction: argmax(logits), weights, cacheLength: caches[0].length };
  }

  #checkPositions(tokens, start) {
    if (start + tokens.length > this.maxLen)
      throw new RangeError(`${this.config.name}: positions run to ${start + tokens.length - 1}; the model learned 0 … ${this.maxLen - 1}`);
    for (const t of tokens)
      if (!Number.isInteger(t) || t < 0 || t >= this.vocab.length)
        throw new RangeError(`${this.config.name}: token ${t} is not in 0 … ${this.vocab.length - 1}`);
  }

  // Token embedding plus the learned position embedding, [L, E] in float64.
  #embed(tokens, start) {
    const E = this.dModel, { tokenEmbedding, positionEmbedding } = this.#parts;
    const x = new Float64Array(tokens.length * E);
    tokens.forEach((t, i) => {
      for (let e = 0; e < E; e++) x[i * E + e] = tokenEmbedding[t * E + e] + positionEmbedding[(start + i) * E + e];
    });
    return x;
  }

  // x + attn(ln1(x)), then x + mlp(ln2(x)); attention runs in mha-wasm.
  #block(layer, x, L, attend) {
    const E = this.dModel;
    const normed = layerNorm(x, L, E, layer.norm1, this.config.architecture.layerNormEps);
    const result = attend(layer.attention, { data: Float32Array.from(normed), dims: [L, E] });
    const out = Float64Array.from(x, (v, i) => v + result.output.data[i]);
    if (layer.mlpIn) {
      const hidden = linear(layerNorm(out, L, E, layer.norm2, this.config.architecture.layerNormEps), L, layer.mlpIn);
      for (let i = 0; i < hidden.length; i++) hidden[i] = Math.max(0, hidden[i]);
      const mlp = linear(hidden, L, layer.mlpOut);
      for (let i = 0; i < out.length; i++) out[i] += mlp[i];
    }
    return { x: out, weights: result.weights };
  }

  #logits(x, L) {
    const E = this.dModel, V = this.vocab.length;
    const flat = linear(layerNorm(x, L, E, this.#parts.finalNorm, this.config.architecture.layerNormEps), L, this.#parts.unembedding);
    return Array.from({ length: L }, (_, i) => flat.slice(i * V, (i + 1) * V));
  }
}

/** A decoding session: each step appends one token to every layer's cache. */
class Stepper {
  #caches;
  #step;

  constructor(model, caches, step) {
    this.model = model;
    this.#caches = caches;
    this.#step = step;
  }

  /** Positions fed so far (every layer's cache holds the same). */
  get length() { return this.#caches[0].length; }

  /**
   * Feeds one token: its logits (Float64Array [V]), the predicted next token,
   * weights[layer][head] = the new row of that head's weights (Float32Array,
   * one entry per cached position), and the cache length after the step.
   */
  step(token) { return this.#step(token, this.#caches); }

  /** Back to the state after the first `length` tokens. */
  truncate(length) { for (const c of this.#caches) c.truncate(length); }

  reset() { for (const c of this.#caches) c.reset(); }

  dispose() { for (const c of this.#caches) c.dispose(); }
}

// PyTorch's LayerNorm: biased variance, eps inside the square root.
function layerNorm(x, L, E, { weight, bias }, eps) {
  const out = new Float64Array(L * E);
  for (let i = 0; i < L; i++) {
    let mean = 0;
    for (let e = 0; e < E; e++) mean += x[i * E + e];
    mean /= E;
    let variance = 0;
    for (let e = 0; e < E; e++) variance += (x[i * E + e] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / E + eps);
    for (let e = 0; e < E; e++) out[i * E + e] = (x[i * E + e] - mean) * inv * weight[e] + bias[e];
  }
  return out;
}

// x [L, in] · Wᵀ + b, with W [out, in] as nn.Linear stores it.
function linear(x, L, { weight, bias }) {
  const [outDim, inDim] = weight.dims;
  const W = weight.data;
  const y = new Float64Array(L * outDim);
  for (let i = 0; i < L; i++)
    for (let o = 0; o < outDim; o++) {
      let s = bias[o];
      for (let k = 0; k < inDim; k++) s += x[i * inDim + k] * W[o * inDim + k];
      y[i * outDim + o] = s;
    }
  return y;
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
