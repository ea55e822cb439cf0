// The attention layers of real models (issues 20 and 21), their seeded
// weights and inputs under Hugging Face's names, the rotary tables, the
// ONNX external-data layout of their graphs, and the bytes a decode step
// reads. The shapes that use them are in bench/shapes.js (`model` field).
//
// Configurations from each model's config.json:
//   llama1b   Llama-3.2-1B:  E 2048, H 32, Hkv 8, d 64, rope_theta 500000,
//                            rope_scaling llama3 (factor 32, low 1, high 4, original 8192)
//   qwen06b   Qwen3-0.6B:    E 1024, H 16, Hkv 8, d 128, rope_theta 1e6, q_norm/k_norm (rms_norm_eps 1e-6)
//   gemma2b   Gemma-2-2B:    E 2304, H 8, Hkv 4, d 256, rope_theta 10000, attn_logit_softcapping 50,
//                            sliding_window 4096, query_pre_attn_scalar 256 (scale 1/16)
//   whisper   Whisper-base decoder cross-attention: E 512, H 8, d 64, q/v/o biases (no k bias)
import { prng, uniform } from './weights.js';

export const MODELS = {
  llama1b: { label: 'Llama-3.2-1B', E: 2048, H: 32, Hkv: 8, d: 64, bias: false,
    rope: { base: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } } },
  qwen06b: { label: 'Qwen3-0.6B', E: 1024, H: 16, Hkv: 8, d: 128, bias: false, qkNorm: { eps: 1e-6 },
    rope: { base: 1e6, scaling: null } },
  gemma2b: { label: 'Gemma-2-2B', E: 2304, H: 8, Hkv: 4, d: 256, bias: false, softcap: 50, slidingWindow: 4096, scale: 1 / 16,
    rope: { base: 10000, scaling: null } },
  whisper: { label: 'Whisper-base cross', E: 512, H: 8, Hkv: 8, d: 64, bias: { q: true, k: false, v: true, o: true }, rope: null },
};

export const modelOf = (shape) => MODELS[shape.model];

/** Which features of the model a shape runs: all of them, or none (`modifiers: false`). */
export function featuresOf(shape) {
  const m = modelOf(shape);
  const on = shape.modifiers !== false;
  return {
    rope: on ? m.rope : null, qkNorm: on ? m.qkNorm ?? null : null, softcap: on ? m.softcap ?? null : null,
    slidingWindow: on ? m.slidingWindow ?? null : null, scale: on ? m.scale ?? null : null,
  };
}

/** MultiheadAttention.create's options for a model shape (plus `extra`, e.g. weightDtype). */
export function createOptions(shape, extra = {}) {
  const m = modelOf(shape);
  const f = featuresOf(shape);
  const o = { embedDim: m.E, numHeads: m.H, numKVHeads: m.Hkv, headDim: m.d, bias: m.bias, weightNames: 'hf', ...extra };
  if (f.rope) o.rope = { base: f.rope.base, layout: 'half', ...(f.rope.scaling ? { scaling: f.rope.scaling } : {}) };
  if (f.qkNorm) o.qkNorm = f.qkNorm;
  if (f.softcap) o.softcap = f.softcap;
  if (f.slidingWindow) o.slidingWindow = f.slidingWindow;
  if (f.scale) o.scale = f.scale;
  return o;
}

const hasBias = (m, p) => (typeof m.bias === 'object' ? m.bias[p] : m.bias);


/**
 * The layer's parameters under Hugging Face's names (row-major, [out, in]):
 * projections uniform ±1/√in, biases ±0.1 where the model has them,
 * q_norm/k_norm weights 1 ± 0.2 where it has QK-norm.
 */
export function makeModelWeights(shape, seed = 5) {
  const m = modelOf(shape);
  const rand = prng(seed * 7919 + m.E * 31 + m.H);
  const { E, H, Hkv, d } = m;
  const w = {
    'q_proj.weight': uniform(H * d * E, 1 / Math.sqrt(E), rand),
    'k_proj.weight': uniform(Hkv * d * E, 1 / Math.sqrt(E), rand),
    'v_proj.weight': uniform(Hkv * d * E, 1 / Math.sqrt(E), rand),
    'o_proj.weight': uniform(E * H * d, 1 / Math.sqrt(H * d), rand),
  };
  for (const [p, n] of [['q', H * d], ['k', Hkv * d], ['v', Hkv * d], ['o', E]])
    if (hasBias(m, p)) w[`${p}_proj.bias`] = uniform(n, 0.1, rand);
  if (featuresOf(shape).qkNorm) {
    w['q_norm.weight'] = uniform(d, 0.2, rand).map((v) => 1 + v);
    w['k_norm.weight'] = uniform(d, 0.2, rand).map((v) => 1 + v);
  }
  return w;
}

/**
 * Inputs of a model shape, values in [-1, 1): `query` [B, Lq, E] (the new
 * tokens), and for a decode step `prompt` [B, Lk, E] (the tokens already in
 * the cache), for cross-attention `memory` [B, Lk, E] (the encoder output).
 */
export function makeModelInputs(shape, seed = 11) {
  const m = modelOf(shape);
  const rand = prng(seed * 104729 + shape.Lq * 17 + shape.Lk * 13 + m.E);
  const inputs = { query: uniform(shape.B * shape.Lq * m.E, 1, rand), key: null, value: null };
  if (shape.step === 'decode') inputs.prompt = uniform(shape.B * shape.Lk * m.E, 1, rand);
  if (shape.step === 'cross') inputs.memory = uniform(shape.B * shape.Lk * m.E, 1, rand);
  return inputs;
}

/**
 * RoPE's inverse frequencies, in double precision, as ../shared/DECODER_ATTENTION.md
 * fixes them (θ^(-2t/r), then the llama3 rescaling of Hugging Face's
 * _compute_llama3_parameters).
 */
export function inverseFrequencies(rope, r) {
  const inv = Array.from({ length: r / 2 }, (_, t) => rope.base ** (-(2 * t) / r));
  const s = rope.scaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor;
    if (wavelen < highWavelen) return f;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * cos and sin of position·inv_freq for positions [from, to): `half` [n, r/2]
 * (onnxruntime's cos_cache/sin_cache) or `full` [n, r] (both halves, as
 * Hugging Face's rotary embedding returns them).
 */
export function ropeTables(rope, r, from, to, layout = 'half') {
  const inv = inverseFrequencies(rope, r);
  const width = layout === 'half' ? r / 2 : r;
  const cos = new Float32Array((to - from) * width);
  const sin = new Float32Array((to - from) * width);
  for (let p = from; p < to; p++)
    for (let j = 0; j < width; j++) {
      const a = p * inv[j % (r / 2)];
      cos[(p - from) * width + j] = Math.cos(a);
      sin[(p - from) * width + j] = Math.sin(a);
    }
  return { cos, sin };
}

/** Positions the onnxruntime graphs' rotary tables cover (the longest decode cache plus its step). */
export const ROPE_POSITIONS = 4096 + 1;

/**
 * The initializers of a model's onnxruntime graphs, in the order their bytes
 * follow each other in "weights.bin": [{ name, dims }], float32. The graph
 * generator (bench/make_onnx.py) gets this list, so the two never disagree.
 */
export function onnxLayout(shape) {
  const m = modelOf(shape);
  const f = featuresOf(shape);
  const { E, H, Hkv, d } = m;
  const L = [{ name: 'WqT', dims: [E, H * d] }, { name: 'WkT', dims: [E, Hkv * d] }, { name: 'WvT', dims: [E, Hkv * d] }, { name: 'WoT', dims: [H * d, E] }];
  for (const [p, n] of [['q', H * d], ['k', Hkv * d], ['v', Hkv * d], ['o', E]])
    if (hasBias(m, p)) L.push({ name: `b${p}`, dims: [n] });
  if (f.qkNorm) L.push({ name: 'q_norm', dims: [d] }, { name: 'k_norm', dims: [d] });
  if (f.rope) L.push({ name: 'cos_cache', dims: [ROPE_POSITIONS, d / 2] }, { name: 'sin_cache', dims: [ROPE_POSITIONS, d / 2] });
  return L;
}

function transpose(src, rows, cols) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

/** The bytes of "weights.bin" for a model shape's graphs (layout: onnxLayout). */
export function onnxModelWeightsBin(shape, w) {
  const m = modelOf(shape);
  const f = featuresOf(shape);
  const { E, H, Hkv, d } = m;
  const tables = f.rope ? ropeTables(f.rope, d, 0, ROPE_POSITIONS, 'half') : null;
  const parts = {
    WqT: transpose(w['q_proj.weight'], H * d, E), WkT: transpose(w['k_proj.weight'], Hkv * d, E),
    WvT: transpose(w['v_proj.weight'], Hkv * d, E), WoT: transpose(w['o_proj.weight'], E, H * d),
    bq: w['q_proj.bias'], bk: w['k_proj.bias'], bv: w['v_proj.bias'], bo: w['o_proj.bias'],
    q_norm: w['q_norm.weight'], k_norm: w['k_norm.weight'], cos_cache: tables?.cos, sin_cache: tables?.sin,
  };
  const layout = onnxLayout(shape);
  const all = new Float32Array(layout.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0));
  let at = 0;
  for (const t of layout) { all.set(parts[t.name], at); at += parts[t.name].length; }
  return new Uint8Array(all.buffer);
}

// Bytes per weight of each weightDtype: int8 counts its per-block scale too
// (one float32 per 32 weights, the blocks issue 21 fixes).
export const DTYPE_BYTES = { f32: 4, f16: 2, bf16: 2, int8: 1 + 4 / 32 };

/**
 * Bytes one decode step must read at least: every projection weight it uses
 * (in `dtype`) and biases and norm weights (float32), plus the float32 keys
 * and values it attends over. Self-attention: q, k, v, o projections and
 * Lk + 1 cached positions (the prompt and the step's own token);
 * cross-attention: q and o projections and the memory's Lk frames.
 */
export function bytesPerStep(shape, dtype = 'f32') {
  const m = modelOf(shape);
  const { E, H, Hkv, d } = m;
  const cross = shape.step === 'cross';
  const weights = cross ? 2 * E * H * d : 2 * E * H * d + 2 * E * Hkv * d;
  let small = 0;
  for (const [p, n] of [['q', H * d], ['k', Hkv * d], ['v', Hkv * d], ['o', E]])
    if (hasBias(m, p) && !(cross && (p === 'k' || p === 'v'))) small += n;
  if (featuresOf(shape).qkNorm) small += 2 * d;
  const positions = cross ? shape.Lk : shape.Lk + 1;
  return weights * DTYPE_BYTES[dtype] + 4 * small + 4 * 2 * Hkv * positions * d;
}
