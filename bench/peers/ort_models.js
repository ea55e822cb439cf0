// onnxruntime-web on the model layers (bench/models.js): which graph of
// bench/make_onnx.py each variant runs for each step, and how a session of it
// is set up and fed. Used by bench/peers/ort.js, whose peers these are:
//   ORT GQA    prefill: MatMuls (+ QK-norm) around com.microsoft.GroupQueryAttention,
//              rotary inside it; decode step: the same with past_key/past_value
//   ORT basic  prefill: plain ONNX ops
//   ORT MHA    Whisper's cross-attention step: com.microsoft.MultiHeadAttention
//              against the encoder memory's keys and values, projected once
// A decode step's past keys and values come from a helper graph run once at
// set-up ("kv": the prompt's projections, QK-norm and RoPE in plain ops), the
// encoder memory's from another ("memory"); each step then runs on its own:
// every call feeds the same past and fetches only y, so every step sees the
// same length. onnxruntime-web copies each input into its heap at every run
// and present_key never aliases past_key there (its WebAssembly backend binds
// CPU tensors by copy), so GroupQueryAttention's shared past/present buffer
// form cannot be reached from JavaScript; the step feeds a past of exactly
// the cache's length.
import path from 'node:path';
import { MODELS, featuresOf, onnxLayout, onnxModelWeightsBin, ropeTables } from '../models.js';

// variant -> step -> graph kind
const GRAPHS = {
  gqa: { prefill: 'gqa-prefill', decode: 'gqa-step' },
  basic: { prefill: 'basic-prefill' },
  mha: { cross: 'mha-step' },
};
// Graphs run once at set-up, per step.
const HELPERS = { decode: 'kv', cross: 'memory' };

export const modelGraphKey = (shape) => `${shape.model}${shape.modifiers === false ? '-bare' : ''}`;
export const modelGraphFile = (dir, kind, key) => path.join(dir, `${kind}-${key}.onnx`);

/** The spec bench/make_onnx.py --models takes, for these model shapes. */
export function modelGraphSpecs(shapes) {
  const specs = {};
  for (const shape of shapes) {
    const key = modelGraphKey(shape);
    const m = MODELS[shape.model];
    const f = featuresOf(shape);
    const spec = (specs[key] ??= { E: m.E, H: m.H, Hkv: m.Hkv, d: m.d, ...f, layout: onnxLayout(shape), graphs: [] });
    const kinds = [...Object.values(GRAPHS).map((g) => g[shape.step]).filter(Boolean), HELPERS[shape.step]].filter(Boolean);
    for (const k of kinds) if (!spec.graphs.includes(k)) spec.graphs.push(k);
  }
  return specs;
}

/** null, or why `variant` has no graph for this model shape. */
export function unsupportedModel(variant, shape) {
  if (GRAPHS[variant]?.[shape.step]) return null;
  const what = { prefill: 'the prefill', decode: 'the decode step', cross: 'the cross-attention step' }[shape.step];
  if (variant === 'attention') return 'com.microsoft.Attention has no grouped-query heads, rotary tables, softcap or window';
  return `no ${variant} graph for ${what} (GroupQueryAttention and MultiHeadAttention graphs are the peers there)`;
}

// The additive mask [L, L] of the plain-op prefill: causal, and the window.
function prefillMask(L, window) {
  const mask = new Float32Array(L * L);
  for (let i = 0; i < L; i++)
    for (let j = 0; j < L; j++) if (j > i || (window && i - j >= window)) mask[i * L + j] = -Infinity;
  return mask;
}

/**
 * Sets one model shape up for `variant`: returns { session, feeds } for the
 * timed call (which fetches y only). `createSession(file, weightsBin)` opens a
 * session with the shared weights as external data.
 */
export async function setupModel(ort, createSession, dir, variant, shape, weights, inputs) {
  const m = MODELS[shape.model];
  const f = featuresOf(shape);
  const key = modelGraphKey(shape);
  const bin = onnxModelWeightsBin(shape, weights);
  const { B, Lq, Lk } = shape;
  const { E, d, H } = m;
  const float = (data, dims) => new ort.Tensor('float32', data, dims);
  const x = float(inputs.query, [B, Lq, E]);
  const session = await createSession(modelGraphFile(dir, GRAPHS[variant][shape.step], key), bin);
  const once = async (kind, feeds) => {
    const helper = await createSession(modelGraphFile(dir, kind, key), bin);
    try { return await helper.run(feeds); } finally { await helper.release(); }
  };
  const lengths = (total) => ({
    seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(total - 1), [B]),
    total_sequence_length: new ort.Tensor('int32', Int32Array.of(total), []),
  });

  if (shape.step === 'prefill' && variant === 'gqa') return { session, feeds: { x, ...lengths(Lq) } };
  if (shape.step === 'prefill') {
    const feeds = { x, mask: float(prefillMask(Lq, f.slidingWindow), [Lq, Lq]) };
    if (f.rope) {
      const t = ropeTables(f.rope, d, 0, Lq, 'full');
      Object.assign(feeds, { cos: float(t.cos, [Lq, d]), sin: float(t.sin, [Lq, d]) });
    }
    return { session, feeds };
  }
  if (shape.step === 'decode') {
    const kvFeeds = { x: float(inputs.prompt, [B, Lk, E]) };
    if (f.rope) {
      const t = ropeTables(f.rope, d, 0, Lk, 'full');
      Object.assign(kvFeeds, { cos: float(t.cos, [Lk, d]), sin: float(t.sin, [Lk, d]) });
    }
    const past = await once('kv', kvFeeds);
    return { session, feeds: { x, past_key: past.past_key, past_value: past.past_value, ...lengths(Lk + Lq) } };
  }
  const memory = await once('memory', { x: float(inputs.memory, [B, Lk, E]) });
  if (memory.mem_key.dims[1] !== H) throw new Error('memory graph: unexpected key layout');
  return { session, feeds: { x, mem_key: memory.mem_key, mem_value: memory.mem_value } };
}
