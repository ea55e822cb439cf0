import { MODELS } from './models.js';

// The benchmark's shapes (issue 5, and the model layers of issues 20 and 21) and the FLOP count each is credited with.
//
// FLOPs count multiply + add as 2, for the matrix products only:
//   self-attention (and causal): 8·B·L·E² + 4·B·L²·E
//     (Q, K, V and output projections: 4 · 2·B·L·E²; QKᵀ and P·V: 2 · 2·B·L·L·E)
//   cross-attention (Lq ≠ Lk): 4·B·Lq·E² + 4·B·Lk·E² + 4·B·Lq·Lk·E
//     (Q and output projections on Lq rows, K and V projections on Lk rows)
// The causal shape is credited with the full non-causal count, so its GFLOP/s
// is an "effective" rate and the causal speed-up shows up directly.

/** @typedef {{ id: string, label: string, B: number, Lq: number, Lk: number, E: number, H: number,
 *   causal: boolean, cross: boolean, peers?: string[], note?: string,
 *   model?: string, step?: 'prefill' | 'decode' | 'cross', modifiers?: boolean }} Shape */

/** @type {Shape[]} */
export const SHAPES = [
  { id: 'L128', B: 1, Lq: 128, Lk: 128, E: 512, H: 8 },
  { id: 'L512', B: 1, Lq: 512, Lk: 512, E: 512, H: 8 },
  { id: 'L2048', B: 1, Lq: 2048, Lk: 2048, E: 512, H: 8 },
  { id: 'B4L256E768', B: 4, Lq: 256, Lk: 256, E: 768, H: 12 },
  { id: 'L512causal', B: 1, Lq: 512, Lk: 512, E: 512, H: 8, causal: true },
  { id: 'decode', B: 1, Lq: 1, Lk: 512, E: 512, H: 8, cross: true, note: 'one decoding step: 1 query against a 512-long key/value' },
  { id: 'teaching', B: 3, Lq: 4, Lk: 4, E: 16, H: 8, note: 'the README example; time is per-call overhead' },
  // mha-wasm only: memory must stay O(L) (no [L, L] score matrix), weights not requested.
  { id: 'L16384', B: 1, Lq: 16384, Lk: 16384, E: 512, H: 8, peers: ['mha-wasm'], note: 'memory test, weights not requested' },
].map((s) => ({ causal: false, cross: false, ...s, label: label({ causal: false, cross: false, ...s }) }));

// The attention layers of real models (bench/models.js), B = 1: prefill of 512
// tokens, causal (issue 20), each also with its modifiers (RoPE, QK-norm,
// softcap, window, scale) off, to measure what they cost; and one decode step
// (issue 21): one new token against a cache of Lk tokens, or, for Whisper,
// against an encoder memory of Lk frames projected once.
const modelShape = (id, model, step, L, extra = {}) => {
  const m = MODELS[model];
  const s = { id, model, step, B: 1, Lq: step === 'prefill' ? L : 1, Lk: L, E: m.E, H: m.H, causal: step !== 'cross', cross: false, ...extra };
  const what = step === 'prefill' ? `prefill L ${L}${s.modifiers === false ? ', modifiers off' : ''}` : step === 'decode' ? `decode, cache ${L}` : `decode, memory ${L}`;
  return { ...s, label: `${m.label} ${what}` };
};
export const MODEL_SHAPES = [
  ...['llama1b', 'qwen06b', 'gemma2b'].flatMap((m) => [
    modelShape(`${m}-L512`, m, 'prefill', 512),
    modelShape(`${m}-L512-bare`, m, 'prefill', 512, { modifiers: false }),
  ]),
  ...['llama1b', 'qwen06b'].flatMap((m) => [1024, 4096].map((P) => modelShape(`${m}-dec${P}`, m, 'decode', P))),
  modelShape('whisper-cross1500', 'whisper', 'cross', 1500),
];
SHAPES.push(...MODEL_SHAPES);

function label(s) {
  const base = s.cross ? `(${s.B}, ${s.Lq}, ${s.E}, ${s.H}) × Lk ${s.Lk}` : `(${s.B}, ${s.Lq}, ${s.E}, ${s.H})`;
  return base + (s.causal ? ' causal' : '') + (s.cross ? ' cross' : '');
}

/**
 * FLOPs credited to one forward pass of `shape` (see the header). Model
 * shapes: projections 2·Lq·E·(H·d + 2·Hkv·d) + 2·Lq·H·d·E (a decode step
 * against encoder memory: q and o only), attention 4·Lq·S·H·d over its S keys
 * (the prompt's: the full count, as for the causal shape; a decode step: the
 * cache and its own token).
 */
export function flops({ B, Lq, Lk, E, cross, model, step }) {
  if (model) {
    const { H, Hkv, d } = MODELS[model];
    const proj = step === 'cross' ? 4 * Lq * E * H * d : 2 * Lq * E * (H * d + 2 * Hkv * d) + 2 * Lq * H * d * E;
    const S = step === 'decode' ? Lk + 1 : Lk;
    return B * (proj + 4 * Lq * S * H * d);
  }
  if (cross) return 4 * B * Lq * E * E + 4 * B * Lk * E * E + 4 * B * Lq * Lk * E;
  return 8 * B * Lq * E * E + 4 * B * Lq * Lk * E;
}

export const byId = (id) => {
  const s = SHAPES.find((x) => x.id === id);
  if (!s) throw new Error(`unknown shape '${id}'; known: ${SHAPES.map((x) => x.id).join(', ')}`);
  return s;
};

/** Shapes of the quick (development) run. */
export const QUICK_SHAPES = ['L128', 'L512', 'L512causal', 'decode', 'teaching'];

/**
 * Shapes measured in the same process, interleaved with each other: the causal
 * speed-up is a ratio of two of them, so they share the same noise.
 */
export const GROUPS = [['L512', 'L512causal'],
  // The modifiers' cost is a ratio of the two: measured interleaved.
  ...['llama1b', 'qwen06b', 'gemma2b'].map((m) => [`${m}-L512`, `${m}-L512-bare`])];

/** The L sweep of the plot: E = 512, H = 8, B = 1, self-attention. */
export const SWEEP = ['L128', 'L512', 'L2048'];
