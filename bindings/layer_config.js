// A layer's configuration from MultiheadAttention.create's options: every
// option checked (read once, own properties only), defaults applied, and the
// result frozen. The core checks the same invariants again (src/checks.cpp).
import {
  readOptions, checkInteger, checkBoolean, checkEnum, typeError, rangeError, quotedList, MAX_DIM,
} from './checks.js';

export const CREATE_OPTIONS = ['embedDim', 'numHeads', 'numKVHeads', 'headDim', 'kdim', 'vdim', 'bias', 'addBiasKV',
  'addZeroAttn', 'seed', 'weightNames', 'rope', 'scale', 'softcap', 'alibi', 'slidingWindow', 'qkNorm', 'sinks', 'weightDtype'];
// How the projection weights are stored (src/weight_formats.hpp): int8 is
// symmetric, per output row in blocks of 32 along the input.
export const WEIGHT_DTYPES = ['f32', 'f16', 'bf16', 'int8'];
// A safetensors dtype the layer keeps as it is when fromSafetensors is not
// told a weightDtype; any other is loaded as float32.
const KEPT_DTYPES = { F16: 'f16', BF16: 'bf16' };

/**
 * The weightDtype that keeps what a file stores: 'f16' or 'bf16' when every
 * given projection weight is stored so, else 'f32'.
 */
export function storedWeightDtype(fileDtypes) {
  const kept = fileDtypes.map((d) => KEPT_DTYPES[d] ?? 'f32');
  return kept.length > 0 && kept.every((d) => d === kept[0]) ? kept[0] : 'f32';
}
// The options nn.MultiheadAttention's names cannot hold, or that come from
// today's decoders: any of them makes Hugging Face's names the default.
const DECODER_OPTIONS = ['numKVHeads', 'headDim', 'rope', 'scale', 'softcap', 'alibi', 'slidingWindow', 'qkNorm', 'sinks'];

function positiveNumber(value, name) {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0))
    throw (typeof value === 'number' ? rangeError : typeError)(name, 'a finite number > 0', value);
  return value;
}

// bias: true/false for every projection, or { q, k, v, o } (Hugging Face
// names: Qwen2 has q, k, v; Whisper q, v, o).
function readBias(value, names) {
  if (value === undefined) return { q: true, k: true, v: true, o: true };
  if (typeof value === 'boolean') return { q: value, k: value, v: value, o: value };
  if (value === null || typeof value !== 'object') throw typeError('bias', 'a boolean or { q, k, v, o } of booleans', value);
  const o = readOptions(value, ['q', 'k', 'v', 'o'], 'bias');
  const bias = {};
  for (const p of ['q', 'k', 'v', 'o']) bias[p] = o[p] === undefined ? true : checkBoolean(o[p], `bias.${p}`);
  if (names === 'torch' && !(bias.q === bias.k && bias.k === bias.v))
    throw rangeError('bias', 'the same for q, k and v under nn.MultiheadAttention\'s names (in_proj_bias)', JSON.stringify(bias));
  return bias;
}

const ROPE_OPTIONS = ['dim', 'base', 'layout', 'scaling'];
// Each RoPE scaling's options: required, then optional with their defaults
// (a function of the others for the attention factors: Hugging Face's).
const SCALINGS = {
  linear: { required: ['factor'], optional: {} },
  llama3: { required: ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings'], optional: {} },
  yarn: {
    required: ['factor', 'originalMaxPositionEmbeddings'],
    optional: { betaFast: () => 32, betaSlow: () => 1, truncate: () => true, attentionFactor: (s) => yarnAttentionFactor(s.factor) },
  },
  longrope: {
    required: ['shortFactor', 'longFactor', 'originalMaxPositionEmbeddings'],
    optional: { factor: () => 1, attentionFactor: (s) => longropeAttentionFactor(s.factor, s.originalMaxPositionEmbeddings) },
  },
};
const SCALING_OPTIONS = [...new Set(Object.values(SCALINGS).flatMap((t) => [...t.required, ...Object.keys(t.optional)]))];
/** The RoPE scalings the layer implements, by their Hugging Face names. */
export const ROPE_SCALINGS = Object.keys(SCALINGS);

/** YaRN's default attention factor (Hugging Face's get_mscale). */
export function yarnAttentionFactor(factor, mscale = 1) {
  return factor <= 1 ? 1 : 0.1 * mscale * Math.log(factor) + 1;
}
/** LongRoPE's default attention factor. */
export function longropeAttentionFactor(factor, originalMaxPositionEmbeddings) {
  return factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositionEmbeddings));
}

// longrope's per-pair factors: rope.dim / 2 finite numbers > 0, copied and frozen.
function pairFactors(value, name, half) {
  if (!Array.isArray(value) && !ArrayBuffer.isView(value)) throw typeError(name, `an array of ${half} numbers`, value);
  if (value.length !== half)
    throw rangeError(name, `${half} values (rope.dim / 2: one per rotated pair)`, value);
  // By index, each read once (not the array's own iterator, which may yield anything).
  return Object.freeze(Array.from({ length: half }, (_, i) => positiveNumber(value[i], `${name}[${i}]`)));
}

function readScaling(value, dim) {
  const s = readOptions(value, ['type', ...SCALING_OPTIONS], 'rope.scaling');
  const type = s.type;
  if (!Object.hasOwn(SCALINGS, type))
    throw rangeError('rope.scaling.type', `${quotedList(ROPE_SCALINGS)} (other RoPE scalings are not implemented)`, type);
  const { required, optional } = SCALINGS[type];
  const extra = SCALING_OPTIONS.find((name) => s[name] !== undefined && !required.includes(name) && !Object.hasOwn(optional, name));
  if (extra) throw rangeError(`rope.scaling.${extra}`, `absent with type '${type}'`, s[extra]);
  const scaling = { type };
  const read = (name) => {
    const where = `rope.scaling.${name}`;
    if (name === 'shortFactor' || name === 'longFactor') return pairFactors(s[name], where, dim / 2);
    if (name === 'truncate') return checkBoolean(s[name], where);
    return positiveNumber(s[name], where);
  };
  for (const name of required) scaling[name] = read(name);
  for (const [name, fallback] of Object.entries(optional)) scaling[name] = s[name] === undefined ? fallback(scaling) : read(name);
  if (!(scaling.attentionFactor === undefined || Number.isFinite(scaling.attentionFactor)))
    throw rangeError('rope.scaling.originalMaxPositionEmbeddings', '> 1 (the default attentionFactor divides by its logarithm), or an attentionFactor',
      scaling.originalMaxPositionEmbeddings);
  if (type === 'llama3' && !(scaling.highFreqFactor > scaling.lowFreqFactor))
    throw rangeError('rope.scaling.highFreqFactor', `> lowFreqFactor (${scaling.lowFreqFactor})`, String(scaling.highFreqFactor));
  return Object.freeze(scaling);
}

function readRope(value, headDim) {
  if (value === undefined || value === null || value === false) return null;
  const o = value === true ? {} : readOptions(value, ROPE_OPTIONS, 'rope');
  const dim = o.dim === undefined ? headDim : checkInteger(o.dim, 'rope.dim', { min: 2, max: headDim });
  if (dim % 2 !== 0) throw rangeError('rope.dim', 'an even number (features rotate in pairs)', String(dim));
  const base = o.base === undefined ? 10000 : positiveNumber(o.base, 'rope.base');
  if (!(base > 1)) throw rangeError('rope.base', '> 1', String(base));
  const layout = o.layout === undefined ? 'half' : checkEnum(o.layout, 'rope.layout', ['half', 'interleaved']);
  const scaling = o.scaling === undefined || o.scaling === null ? null : readScaling(o.scaling, dim);
  return Object.freeze({ dim, base, layout, scaling });
}

/** The checked, complete, frozen configuration of a layer. */
export function layerConfig(options) {
  if (options === undefined) throw typeError('MultiheadAttention.create options', 'an object', options);
  const o = readOptions(options, CREATE_OPTIONS, 'MultiheadAttention.create options');
  const embedDim = checkInteger(o.embedDim, 'embedDim', { min: 1 });
  const numHeads = checkInteger(o.numHeads, 'numHeads', { min: 1 });
  const decoder = DECODER_OPTIONS.some((name) => o[name] !== undefined) || (o.bias !== null && typeof o.bias === 'object');
  const weightNames = o.weightNames === undefined ? (decoder ? 'hf' : 'torch') : checkEnum(o.weightNames, 'weightNames', ['torch', 'hf']);
  const numKVHeads = o.numKVHeads === undefined ? numHeads : checkInteger(o.numKVHeads, 'numKVHeads', { min: 1 });
  if (numHeads % numKVHeads !== 0)
    throw rangeError('numKVHeads', `a divisor of numHeads=${numHeads} (each key/value head serves a group of query heads)`, String(numKVHeads));
  let headDim;
  if (o.headDim === undefined) {
    if (embedDim % numHeads !== 0)
      throw rangeError('numHeads', `a divisor of embedDim=${embedDim}`, String(numHeads),
        `embedDim must be divisible by numHeads (each head gets embedDim / numHeads columns), got embedDim=${embedDim} and numHeads=${numHeads}; or give headDim`);
    headDim = embedDim / numHeads;
  } else {
    headDim = checkInteger(o.headDim, 'headDim', { min: 1 });
  }
  if (weightNames === 'torch' && (numKVHeads !== numHeads || headDim * numHeads !== embedDim))
    throw rangeError('weightNames', "'hf': nn.MultiheadAttention's names hold numKVHeads == numHeads and headDim == embedDim / numHeads", weightNames);
  let qkNormEps = 0;
  if (o.qkNorm !== undefined && o.qkNorm !== null && o.qkNorm !== false) {
    const q = o.qkNorm === true ? {} : readOptions(o.qkNorm, ['eps'], 'qkNorm');
    qkNormEps = q.eps === undefined ? 1e-6 : positiveNumber(q.eps, 'qkNorm.eps');
    if (weightNames === 'torch') throw rangeError('qkNorm', "weightNames 'hf' (q_norm.weight, k_norm.weight)", 'torch names');
  }
  const sinks = o.sinks === undefined ? false : checkBoolean(o.sinks, 'sinks');
  if (sinks && weightNames === 'torch') throw rangeError('sinks', "weightNames 'hf' (the parameter sinks)", 'torch names');
  const addBiasKV = o.addBiasKV === undefined ? false : checkBoolean(o.addBiasKV, 'addBiasKV');
  const addZeroAttn = o.addZeroAttn === undefined ? false : checkBoolean(o.addZeroAttn, 'addZeroAttn');
  if (weightNames === 'hf' && (addBiasKV || addZeroAttn))
    throw rangeError(addBiasKV ? 'addBiasKV' : 'addZeroAttn', "false with Hugging Face's names (they are nn.MultiheadAttention's)", 'true');
  const rope = readRope(o.rope, headDim);
  const slidingWindow = o.slidingWindow === undefined || o.slidingWindow === null ? 0
    : checkInteger(o.slidingWindow, 'slidingWindow', { min: 1, max: MAX_DIM });
  const softcap = o.softcap === undefined || o.softcap === null ? 0 : positiveNumber(o.softcap, 'softcap');
  const alibi = o.alibi === undefined ? false : checkBoolean(o.alibi, 'alibi');
  if ((addBiasKV || addZeroAttn) && (rope || alibi || softcap || slidingWindow))
    throw rangeError('addBiasKV', 'false with rope, alibi, softcap or slidingWindow (its keys have no position)', 'true');
  // Key and value widths: nn.MultiheadAttention defaults each to embedDim;
  // a Hugging Face cross-attention reads keys and values from one tensor
  // (an encoder's output), so there vdim defaults to kdim.
  const kdim = o.kdim === undefined ? embedDim : checkInteger(o.kdim, 'kdim', { min: 1 });
  const config = {
    embedDim,
    numHeads,
    numKVHeads,
    headDim,
    kdim,
    vdim: o.vdim === undefined ? (weightNames === 'hf' ? kdim : embedDim) : checkInteger(o.vdim, 'vdim', { min: 1 }),
    bias: Object.freeze(readBias(o.bias, weightNames)),
    addBiasKV,
    addZeroAttn,
    seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', { max: Number.MAX_SAFE_INTEGER }),
    weightNames,
    rope,
    scale: o.scale === undefined || o.scale === null ? 0 : positiveNumber(o.scale, 'scale'),
    softcap,
    alibi,
    slidingWindow,
    qkNormEps,
    sinks,
    weightDtype: o.weightDtype === undefined ? 'f32' : checkEnum(o.weightDtype, 'weightDtype', WEIGHT_DTYPES),
  };
  return Object.freeze(config);
}
