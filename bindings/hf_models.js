// One attention layer of a Hugging Face checkpoint: a model's config.json
// object turned into create options, and the layer's tensors, found under
// the model family's key names, turned into the layer's Hugging Face state
// dict (q_proj, k_proj, v_proj, o_proj, q_norm, k_norm, sinks). What a family does
// follows its modelling code in `transformers`; shared/DECODER_ATTENTION.md
// says which model does what. A config feature we do not implement is
// refused by name, never ignored.
import { typeError, rangeError, checkInteger, quotedList } from './checks.js';
import { yarnAttentionFactor, longropeAttentionFactor, ROPE_SCALINGS } from './layer_config.js';

// Per family: where layer i's attention lives, how its projections are
// stored, and which of the config's options apply:
//   defaults: its config class's values for the keys a config.json leaves
//     out (withDefaults), rope_theta included (else 10000);
//   window: which layers attend through config.sliding_window, as its
//     modelling code decides; a family without one never slides, whatever
//     the config says (Llama, Gemma, Granite, GPT-NeoX, BLOOM, Whisper):
//       slides(config, i): the family's own rule;
//       layerTypes: config.layer_types, when given, decides instead;
//       gated: no layer slides without use_sliding_window (the config class
//         drops the window); 'refuse': Qwen2-MoE's class makes the window 0
//         instead, which would block every key, so such a layer is refused;
//   scale: the config key holding the score scale itself.
const EVERY_LAYER = { slides: () => true };  // one mask for all layers; layer_types unread
const EVEN_LAYERS = { layerTypes: true, slides: (c, i) => i % 2 === 0 };
const QWEN2_LAYERS = { layerTypes: true, gated: true, slides: (c, i) => i >= (c.max_window_layers ?? 0) };
const FAMILIES = {
  llama: { attention: 'self_attn', fused: null },
  mistral: { attention: 'self_attn', fused: null, window: EVERY_LAYER },
  qwen2: { attention: 'self_attn', fused: null, window: QWEN2_LAYERS },
  qwen3: { attention: 'self_attn', fused: null, qkNorm: true, window: QWEN2_LAYERS },
  gemma: { attention: 'self_attn', fused: null },
  gemma2: { attention: 'self_attn', fused: null, window: EVEN_LAYERS },
  gemma3_text: { attention: 'self_attn', fused: null, qkNorm: true, normPlusOne: true,
    window: { layerTypes: true, slides: (c, i) => (i + 1) % (c.sliding_window_pattern ?? 6) !== 0 } },
  phi3: { attention: 'self_attn', fused: 'qkv_proj', window: EVERY_LAYER },
  // SmolLM3 slides only its RoPE-less layers.
  smollm3: { attention: 'self_attn', fused: null, noRopeLayers: true, defaults: { rope_theta: 2000000 },
    window: { layerTypes: true, gated: true, slides: (c, i) => !usesRope(c, 'smollm3', i) } },
  gpt_oss: { attention: 'self_attn', fused: null, sinks: true, window: EVEN_LAYERS, defaults: {
    head_dim: 64, num_key_value_heads: 8, sliding_window: 128, rope_theta: 150000,
    rope_scaling: { rope_type: 'yarn', factor: 32, beta_fast: 32, beta_slow: 1, truncate: false, original_max_position_embeddings: 4096 } } },
  // Llama's attention, scaled by attention_multiplier.
  granite: { attention: 'self_attn', fused: null, scale: 'attention_multiplier', defaults: { attention_multiplier: 1 } },
  // Mistral's attention.
  mixtral: { attention: 'self_attn', fused: null, window: EVERY_LAYER, defaults: { num_key_value_heads: 8, rope_theta: 1000000 } },
  // Qwen2's attention; the even layers below max_window_layers slide.
  qwen2_moe: { attention: 'self_attn', fused: null, defaults: { num_key_value_heads: 16, sliding_window: 4096, max_window_layers: 28 },
    window: { layerTypes: true, gated: 'refuse', slides: (c, i) => i % 2 === 0 && i < c.max_window_layers } },
  // Qwen3's attention; every layer slides with use_sliding_window.
  qwen3_moe: { attention: 'self_attn', fused: null, qkNorm: true, defaults: { num_key_value_heads: 4, sliding_window: 4096 },
    window: { gated: true, slides: () => true } },
  gpt_neox: { attention: 'attention', fused: 'query_key_value', output: 'dense' },
  bloom: { attention: 'self_attention', fused: 'query_key_value', output: 'dense', alibi: true },
  whisper: { attention: null, fused: null, output: 'out_proj' },
};
FAMILIES.gemma3 = FAMILIES.gemma3_text;

const SUPPORTED = Object.keys(FAMILIES).join(', ');
// rope_theta where a config (or its rope_parameters) has none: the config class's.
const defaultTheta = (family) => FAMILIES[family].defaults?.rope_theta ?? 10000;

// A config with its family's class defaults for the keys it leaves out.
// A null rope_scaling is the default too, as transformers 5 reads it
// (null elsewhere keeps its meaning: head_dim from hidden_size, no window).
function withDefaults(config, defaults) {
  const filled = { ...defaults, ...config };
  if (config.rope_scaling === null && defaults.rope_scaling !== undefined) filled.rope_scaling = defaults.rope_scaling;
  return filled;
}

function configNumber(config, name, { integer = false, optional = false } = {}) {
  const v = config[name];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw typeError(`config.${name}`, integer ? 'an integer' : 'a number', v);
  }
  if (integer) return checkInteger(v, `config.${name}`, { min: 1 });
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(`config.${name}`, 'a finite number', v);
  return v;
}

// A rope_scaling (or transformers 5's rope_parameters) object as the
// layer's rope.scaling, as transformers 5's _compute_<type>_parameters read
// it (yarn and longrope also read the config's max_position_embeddings);
// types we do not implement are refused by name.
function ropeScaling(s, where, config) {
  if (s === undefined || s === null) return null;
  if (typeof s !== 'object') throw typeError(where, 'null or an object', s);
  let type = s.rope_type ?? s.type;
  if (type === 'su') type = 'longrope';  // Phi-3's first name for it
  if (type === 'default') return null;
  if (type === 'linear') return { type, factor: s.factor };
  if (type === 'llama3')
    return { type, factor: s.factor, lowFreqFactor: s.low_freq_factor, highFreqFactor: s.high_freq_factor,
      originalMaxPositionEmbeddings: s.original_max_position_embeddings };
  const maxPositions = () => configNumber(config, 'max_position_embeddings');
  if (type === 'yarn') {
    const original = s.original_max_position_embeddings ?? maxPositions();
    const factor = s.factor ?? maxPositions() / original;
    const attentionFactor = s.attention_factor ?? (s.mscale && s.mscale_all_dim
      ? yarnAttentionFactor(factor, s.mscale) / yarnAttentionFactor(factor, s.mscale_all_dim)
      : yarnAttentionFactor(factor));
    return { type, factor, originalMaxPositionEmbeddings: original, betaFast: s.beta_fast || 32, betaSlow: s.beta_slow || 1,
      truncate: s.truncate ?? true, attentionFactor };
  }
  if (type === 'longrope') {
    const original = s.original_max_position_embeddings ?? config.original_max_position_embeddings ?? maxPositions();
    const factor = s.factor ?? maxPositions() / original;
    return { type, shortFactor: s.short_factor, longFactor: s.long_factor, originalMaxPositionEmbeddings: original, factor,
      attentionFactor: s.attention_factor ?? longropeAttentionFactor(factor, original) };
  }
  throw rangeError(where, `rope_type ${quotedList(ROPE_SCALINGS)} (the RoPE scalings mha-wasm implements)`, String(type),
    `${where} has rope_type ${JSON.stringify(type)}, which mha-wasm does not implement (it implements ${quotedList(ROPE_SCALINGS, 'and')})`);
}

// RoPE's base and scaling for a layer: transformers 5's rope_parameters
// (one dict, or one per layer type), else rope_theta (GPT-NeoX:
// rotary_emb_base) and rope_scaling; Gemma 3's sliding layers use
// rope_local_base_freq without scaling.
function ropeBaseAndScaling(config, family, sliding) {
  const p = config.rope_parameters;
  if (p !== undefined && p !== null) {
    if (typeof p !== 'object') throw typeError('config.rope_parameters', 'an object', p);
    const type = sliding ? 'sliding_attention' : 'full_attention';
    const params = Object.hasOwn(p, type) ? p[type] : p;
    const where = Object.hasOwn(p, type) ? `config.rope_parameters.${type}` : 'config.rope_parameters';
    return { base: configNumber(params, 'rope_theta', { optional: true }) ?? defaultTheta(family), scaling: ropeScaling(params, where, config) };
  }
  if (sliding && (family === 'gemma3' || family === 'gemma3_text'))
    return { base: configNumber(config, 'rope_local_base_freq', { optional: true }) ?? 10000, scaling: null };
  const base = configNumber(config, 'rope_theta', { optional: true }) ??
    configNumber(config, 'rotary_emb_base', { optional: true }) ?? defaultTheta(family);
  return { base, scaling: ropeScaling(config.rope_scaling, 'config.rope_scaling', config) };
}

// Whether layer i rotates q and k: SmolLM3 leaves every
// no_rope_layer_interval-th layer without RoPE ("NoPE"), by its config's
// no_rope_layers (1: RoPE) or, without them, by that interval (default 4).
function usesRope(config, family, layer) {
  if (!FAMILIES[family].noRopeLayers) return true;
  const list = config.no_rope_layers;
  if (list !== undefined && list !== null) {
    if (!Array.isArray(list)) throw typeError('config.no_rope_layers', 'an array of 0 and 1, one per layer', list);
    const v = list[layer];
    if (v !== 0 && v !== 1 && typeof v !== 'boolean')
      throw rangeError(`config.no_rope_layers[${layer}]`, '0 or 1 (1: the layer uses RoPE)', v);
    return Boolean(v);
  }
  const interval = config.no_rope_layer_interval === undefined || config.no_rope_layer_interval === null ? 4
    : checkInteger(config.no_rope_layer_interval, 'config.no_rope_layer_interval', { min: 1 });
  return (layer + 1) % interval !== 0;
}

// The window layer i attends through (FAMILIES' `window`), or null.
function slidingWindow(config, family, layer) {
  const rule = FAMILIES[family].window;
  if (!rule) return null;
  const off = rule.gated && !config.use_sliding_window;
  if (off && rule.gated !== 'refuse') return null;
  const window = () => checkInteger(config.sliding_window, 'config.sliding_window', { min: 1 });
  if (rule.layerTypes && Array.isArray(config.layer_types)) {
    const type = config.layer_types[layer];
    if (type !== 'sliding_attention' && type !== 'full_attention')
      throw rangeError(`config.layer_types[${layer}]`, "'sliding_attention' or 'full_attention'", String(type));
    if (type === 'full_attention') return null;
    if (off) throw rangeError(`config.layer_types[${layer}]`, "'full_attention' without use_sliding_window (Qwen2MoeConfig makes the window 0 then)", type);
    return window();
  }
  if (off || config.sliding_window === undefined || config.sliding_window === null || !rule.slides(config, layer)) return null;
  return window();
}

/**
 * Create options for layer `layer` of the model `config` describes, and the
 * family's description: `{ family, options }`.
 */
export function optionsFromConfig(config, { layer, attention }) {
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw typeError('config', "a model's config.json object", config);
  // A multimodal model (Gemma 3) keeps its language model's fields in text_config.
  if (config.model_type === 'gemma3' && config.text_config !== null && typeof config.text_config === 'object')
    config = { model_type: 'gemma3_text', ...config.text_config };
  const family = config.model_type;
  if (!Object.hasOwn(FAMILIES, family))
    throw rangeError('config.model_type', `one of ${SUPPORTED}`, String(family),
      `config.model_type ${JSON.stringify(family)} is not a family mha-wasm knows (${SUPPORTED})`);
  const f = FAMILIES[family];
  if (f.defaults) config = withDefaults(config, f.defaults);
  const whisper = family === 'whisper';
  // BLOOM's configs name these n_embed and n_head as often as not.
  const embedDim = configNumber(config, whisper ? 'd_model' : family === 'bloom' && config.hidden_size === undefined ? 'n_embed' : 'hidden_size', { integer: true });
  const numHeads = configNumber(config, whisper ? (attention === 'encoder' ? 'encoder_attention_heads' : 'decoder_attention_heads')
    : family === 'bloom' && config.n_head !== undefined ? 'n_head' : 'num_attention_heads', { integer: true });
  const numKVHeads = configNumber(config, 'num_key_value_heads', { integer: true, optional: true }) ?? numHeads;
  const headDim = configNumber(config, 'head_dim', { integer: true, optional: true }) ?? embedDim / numHeads;
  if (!Number.isInteger(headDim)) throw rangeError('config.head_dim', `given, since hidden_size ${embedDim} is not a multiple of ${numHeads} heads`, 'absent');
  const options = { embedDim, numHeads, numKVHeads, headDim, weightNames: 'hf' };
  const window = slidingWindow(config, family, layer);
  if (!whisper && !f.alibi && usesRope(config, family, layer)) {
    // GPT-NeoX rotates a quarter of each head unless rotary_pct says otherwise.
    const fraction = configNumber(config, 'partial_rotary_factor', { optional: true }) ??
      configNumber(config, 'rotary_pct', { optional: true }) ?? (family === 'gpt_neox' ? 0.25 : 1);
    const dim = Math.round(headDim * fraction);
    options.rope = { dim: dim - (dim % 2), layout: 'half', ...ropeBaseAndScaling(config, family, window !== null) };
  }
  if (f.alibi) options.alibi = true;
  if (window !== null) options.slidingWindow = window;
  const softcap = configNumber(config, 'attn_logit_softcapping', { optional: true });
  if (softcap !== undefined) options.softcap = softcap;
  const scalar = configNumber(config, 'query_pre_attn_scalar', { optional: true });
  if (scalar !== undefined) options.scale = scalar ** -0.5;
  if (f.scale) options.scale = configNumber(config, f.scale);
  if (f.qkNorm) options.qkNorm = { eps: configNumber(config, 'rms_norm_eps', { optional: true }) ?? 1e-6 };
  if (f.sinks) options.sinks = true;
  return { family, options };
}

// The prefix of layer i's attention among the file's tensor names: the
// family's path (model.layers.{i}.self_attn., gpt_neox.layers.{i}.attention.,
// transformer.h.{i}.self_attention., model.decoder.layers.{i}.encoder_attn. ...)
// after whatever the file puts in front of it (language_model., ...).
function findPrefix(names, family, layer, attention) {
  let tails;
  if (family === 'whisper') {
    const part = attention === 'encoder' ? 'encoder' : 'decoder';
    tails = [`${part}.layers.${layer}.${attention === 'cross' ? 'encoder_attn' : 'self_attn'}.`];
  } else if (family === 'bloom') {
    tails = [`h.${layer}.self_attention.`];
  } else {
    tails = [`layers.${layer}.${FAMILIES[family].attention}.`];
  }
  for (const name of names)
    for (const tail of tails) {
      const at = name.indexOf(tail);
      if (at >= 0 && (at === 0 || name[at - 1] === '.')) return name.slice(0, at + tail.length);
    }
  throw rangeError('layer', `a layer the file holds (no tensor is named like '…${tails[0]}…')`, String(layer));
}

// Rows r0 .. r1 of a [rows, cols] tensor, as a fresh { data, dims }.
const rowsOf = (t, r0, r1) => {
  const cols = t.dims.length === 2 ? t.dims[1] : 1;
  return { data: t.data.slice(r0 * cols, r1 * cols), dims: t.dims.length === 2 ? [r1 - r0, cols] : [r1 - r0] };
};

// GPT-NeoX and BLOOM store q, k, v of head 0, then of head 1, ...: rows
// [H, 3, d]. Returns the three [H*d, cols] (or [H*d]) blocks.
function splitPerHead(t, H, d) {
  const cols = t.dims.length === 2 ? t.dims[1] : 1;
  const parts = [0, 1, 2].map(() => new Float32Array(H * d * cols));
  for (let h = 0; h < H; h++)
    for (let p = 0; p < 3; p++)
      parts[p].set(t.data.subarray(((h * 3 + p) * d) * cols, ((h * 3 + p) * d + d) * cols), h * d * cols);
  return parts.map((data) => ({ data, dims: t.dims.length === 2 ? [H * d, cols] : [H * d] }));
}

/**
 * The layer's Hugging Face state dict from the file's tensors (name ->
 * { data, dims }) for layer `layer` of the family, and the options
 * (`optionsFromConfig`) it fits.
 */
export function stateDictFromModel(tensors, { family, options }, { layer, attention }) {
  const names = Object.keys(tensors);
  const prefix = findPrefix(names, family, layer, attention);
  const f = FAMILIES[family];
  const has = (key) => Object.hasOwn(tensors, prefix + key);
  const need = (key) => {
    if (!has(key)) throw rangeError('bytes', `a tensor '${prefix}${key}' (layer ${layer} of a ${family} checkpoint)`, 'none');
    return tensors[prefix + key];
  };
  const { numHeads: H, numKVHeads: Hkv, headDim: d } = options;
  const dict = {};
  const put = (name, t) => { if (t !== undefined) dict[name] = t; };
  if (f.fused === 'qkv_proj') {  // Phi-3: q rows, then k, then v
    const w = need('qkv_proj.weight');
    put('q_proj.weight', rowsOf(w, 0, H * d));
    put('k_proj.weight', rowsOf(w, H * d, (H + Hkv) * d));
    put('v_proj.weight', rowsOf(w, (H + Hkv) * d, (H + 2 * Hkv) * d));
  } else if (f.fused === 'query_key_value') {  // GPT-NeoX, BLOOM: [H, 3, d]
    const [q, k, v] = splitPerHead(need('query_key_value.weight'), H, d);
    Object.assign(dict, { 'q_proj.weight': q, 'k_proj.weight': k, 'v_proj.weight': v });
    if (has('query_key_value.bias')) {
      const [bq, bk, bv] = splitPerHead(need('query_key_value.bias'), H, d);
      Object.assign(dict, { 'q_proj.bias': bq, 'k_proj.bias': bk, 'v_proj.bias': bv });
    }
  } else {
    for (const p of ['q', 'k', 'v']) {
      put(`${p}_proj.weight`, need(`${p}_proj.weight`));
      if (has(`${p}_proj.bias`)) put(`${p}_proj.bias`, need(`${p}_proj.bias`));
    }
  }
  const out = f.output ?? 'o_proj';
  put('o_proj.weight', need(`${out}.weight`));
  if (has(`${out}.bias`)) put('o_proj.bias', need(`${out}.bias`));
  if (options.qkNorm) {
    for (const p of ['q', 'k']) {
      const t = need(`${p}_norm.weight`);
      // Gemma 3 multiplies by (1 + weight): the layer's norm weight is that.
      dict[`${p}_norm.weight`] = f.normPlusOne ? { data: t.data.map((x) => 1 + x), dims: t.dims } : t;
    }
  }
  if (options.sinks) dict.sinks = need('sinks');
  // The biases the file has decide which the layer has (the config's
  // attention_bias says the same, or less: Qwen2 and Whisper set their own).
  const bias = {};
  for (const p of ['q', 'k', 'v', 'o']) bias[p] = Object.hasOwn(dict, `${p}_proj.bias`);
  return { prefix, stateDict: dict, options: { ...options, bias } };
}

export const HF_ATTENTION = ['self', 'cross', 'encoder'];
