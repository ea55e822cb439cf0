/**
 * mha-wasm: multi-head attention exactly as `torch.nn.MultiheadAttention`
 * computes it at inference, in WebAssembly SIMD.
 *
 * Layout everywhere: batch-first, row-major float32.
 *
 * | tensor          | dims                                   |
 * |-----------------|----------------------------------------|
 * | query           | `[B, Lq, E]` (unbatched `[Lq, E]`)     |
 * | key             | `[B, Lk, kdim]`                        |
 * | value           | `[B, Lk, vdim]`                        |
 * | output          | `[B, Lq, E]`                           |
 * | weights         | `[B, Lq, S]` average, `[B, H, Lq, S]` per head |
 * | heads           | `[B, H, Lq, d]`, d = E / H             |
 * | concat          | `[B, Lq, E]`, head h in columns h·d … h·d+d−1 |
 *
 * S = Lk, plus one column with `addBiasKV`, plus one with `addZeroAttn`.
 * @packageDocumentation
 */

// Symbol.dispose for projects whose lib lacks esnext.disposable (target
// es2022's defaults): the same declaration that lib makes, so the two merge.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/** The package version. */
export declare const version: string;

/** A row-major tensor: `data.length` equals the product of `dims`. */
export interface TensorLike<D = Float32Array> {
  data: D;
  dims: readonly number[];
}

/** A float32 tensor; results are returned as Tensors whose `data` the caller owns. */
export declare class Tensor implements TensorLike<Float32Array> {
  constructor(data: Float32Array, dims: number[]);
  data: Float32Array;
  dims: number[];
  /** Number of elements. */
  readonly size: number;
}

/**
 * A mask: booleans (`Uint8Array` or `boolean[]`, true/nonzero = blocked, as in
 * nn.MultiheadAttention) or a `Float32Array` added to the scaled scores.
 */
export type Mask = TensorLike<Uint8Array | boolean[] | Float32Array>;

/** Options of {@link init}. */
export interface InitOptions {
  /**
   * Threads for every layer: `'auto'` (default: the hardware's count, at most
   * 4) or a count. More than 1 loads the threaded build, which needs
   * SharedArrayBuffer: Node, or a cross-origin-isolated page (COOP
   * `same-origin` + COEP `require-corp`); elsewhere the single-threaded build
   * runs and {@link capabilities} says why. Results are bit-identical for any count.
   */
  threads?: 'auto' | number;
  /**
   * The instruction set: `'auto'` (default) takes relaxed SIMD where the
   * runtime has it (Node 22+, current browsers), `'relaxed'` requires it,
   * `'strict'` takes the SIMD128 build. Relaxed SIMD's fused multiply-add may
   * change the last bits of results between CPUs (within the PyTorch
   * fixtures' tolerance); within one build results are bit-identical for any
   * thread count, in Node and in browsers.
   */
  simd?: 'auto' | 'relaxed' | 'strict';
  /**
   * Where the `.wasm` of the build `threads` and `simd` select is: a URL, a
   * `{ href }` (a Location), a string resolved against the page (in Node,
   * the working directory), its bytes, or a fetch `Response`. Default: next
   * to `index.js` (`mha-core.wasm`, `mha-core-mt.wasm`,
   * `mha-core-relaxed.wasm`, `mha-core-relaxed-mt.wasm`). Giving `wasm`
   * without `threads` means `threads: 1`.
   */
  wasm?: string | { href: string } | ArrayBuffer | ArrayBufferView | { arrayBuffer(): Promise<ArrayBuffer> };
}

/**
 * Loads the WebAssembly module once (`MultiheadAttention.create` calls it with
 * no options); later calls return the same promise and ignore their options.
 */
export declare function init(options?: InitOptions): Promise<void>;

/** What the loaded build can do, and why it was chosen. */
export interface Capabilities {
  /** WebAssembly SIMD (every build uses it). */
  simd: boolean;
  /** Whether the loaded build is a relaxed-SIMD one; null before loading. */
  relaxedSimd: boolean | null;
  /** Whether this runtime has WebAssembly relaxed SIMD. */
  relaxedSimdAvailable: boolean;
  /** Whether a threaded build can run here (SharedArrayBuffer available). */
  threadsAvailable: boolean;
  /** Threads in use; null before loading. */
  threads: number | null;
  /** The most threads the loaded build can use; null before loading. */
  maxThreads: number | null;
  crossOriginIsolated: boolean;
  /** Which of the four builds runs; null before loading (or after a trap retired it). */
  build: 'simd' | 'simd-threads' | 'relaxed' | 'relaxed-threads' | null;
  /** Why that build was chosen; null before loading. */
  reason: string | null;
  /** Where the .wasm came from; null before loading. */
  loadedFrom: string | null;
  version: string;
}
export declare function capabilities(): Capabilities;

/**
 * Threads every layer uses from now on, clamped to what the loaded build can
 * run; resolves to the count in use.
 */
export declare function setThreads(threads: number): Promise<number>;

/** What the WebAssembly side holds now; for finding leaks. */
export interface MemoryStats {
  /** Bytes the WebAssembly heap spans (it grows, never shrinks). */
  heapBytes: number;
  /** Bytes allocated in the heap now: layers' weights (in their weightDtype), caches, scratch. */
  allocatedBytes: number;
  /** Layers neither disposed nor yet reclaimed by the garbage collector. */
  liveLayers: number;
  /** Caches and encoder memories neither disposed nor yet reclaimed. */
  liveCaches: number;
  /** Live embind value handles (0 between calls when nothing leaks). */
  liveHandles: number;
}
export declare function memoryStats(): Promise<MemoryStats>;

/**
 * RoPE's scaling of the frequencies (`rope_scaling` of a config.json), as
 * Hugging Face's `_compute_<type>_parameters` (README, "RoPE scalings").
 * yarn and longrope also multiply cos and sin by an attention factor.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      /** Default 32. */
      betaFast?: number;
      /** Default 1. */
      betaSlow?: number;
      /** Round the ramp's ends outwards (floor, ceil). Default: true. */
      truncate?: boolean;
      /** Default: 0.1·ln(factor) + 1 (1 when factor <= 1). */
      attentionFactor?: number;
    }
  | {
      type: 'longrope';
      /** rope.dim / 2 divisors of the pairs' frequencies, for calls within the original context. */
      shortFactor: readonly number[];
      /** The same, for a call whose largest position + 1 exceeds originalMaxPositionEmbeddings. */
      longFactor: readonly number[];
      originalMaxPositionEmbeddings: number;
      /** The context's extension (max / original positions); used only for the default attentionFactor. Default: 1. */
      factor?: number;
      /** Default: sqrt(1 + ln(factor) / ln(originalMaxPositionEmbeddings)) (1 when factor <= 1). */
      attentionFactor?: number;
    };

/** Rotary position embedding of q and k (Llama, Qwen, Mistral, Gemma, Phi, GPT-NeoX). */
export interface RopeOptions {
  /** Rotary width r, even, <= headDim (partial rotary: the rest passes through). Default: headDim. */
  dim?: number;
  /** θ (`rope_theta`). Default: 10000. */
  base?: number;
  /** Pairs (x[t], x[t + r/2]) as Hugging Face's rotate_half, or (x[2t], x[2t+1]). Default: 'half'. */
  layout?: 'half' | 'interleaved';
  scaling?: RopeScaling | null;
}

/** Options of {@link MultiheadAttention.create}; defaults are PyTorch's. */
export interface CreateOptions {
  /** E, the model width. */
  embedDim: number;
  /** H; without headDim, `embedDim % numHeads` must be 0 (each head gets d = E / H columns). */
  numHeads: number;
  /** Hkv, key/value heads (grouped-query attention; 1: multi-query); query head h reads h / (H / Hkv). Default: numHeads. */
  numKVHeads?: number;
  /** d, each head's width (Gemma: H·d ≠ E). Default: embedDim / numHeads. */
  headDim?: number;
  /** Width of the key input. Default: embedDim. */
  kdim?: number;
  /** Width of the value input. Default: embedDim (Hugging Face names: kdim). */
  vdim?: number;
  /**
   * Projection biases: all or none, or per projection (Hugging Face names;
   * Qwen2: `{ q: true, k: true, v: true, o: false }`). Default: true.
   */
  bias?: boolean | { q?: boolean; k?: boolean; v?: boolean; o?: boolean };
  /**
   * The state_dict names: `'torch'` (nn.MultiheadAttention: in_proj_weight,
   * out_proj.weight, ...) or `'hf'` (q_proj, k_proj, v_proj, o_proj, q_norm,
   * k_norm). Default: 'hf' when any decoder option below is given, else 'torch'.
   */
  weightNames?: 'torch' | 'hf';
  /** Rotary position embedding; `true` for the defaults. */
  rope?: RopeOptions | boolean | null;
  /** The score scale (Gemma: query_pre_attn_scalar^-0.5). Default: 1/sqrt(headDim). */
  scale?: number | null;
  /** Gemma 2's attention logit softcapping c: scores become c·tanh(s/c). */
  softcap?: number | null;
  /** ALiBi position biases with BLOOM's slopes (any head count). Default: false. */
  alibi?: boolean;
  /** Sliding window of W keys counting the query itself (Mistral, Gemma local layers). */
  slidingWindow?: number | null;
  /** RMSNorm of q and k per head with q_norm/k_norm (Qwen3, Gemma 3); `true`: eps 1e-6. */
  qkNorm?: { eps?: number } | boolean | null;
  /**
   * A learned logit per query head (GPT-OSS's attention sinks, the parameter
   * `sinks` [numHeads], 0 until loaded) that joins each row's softmax as one
   * more column weighting no value: weights = exp(sᵢ) / (Σ exp(sⱼ) + exp(sink)),
   * so rows sum to less than 1, and a row whose every key is masked gives
   * weights and output 0 under either `fullyMaskedRows`. Default: false.
   */
  sinks?: boolean;
  /**
   * How the projection weights are stored: float32 (default), IEEE half,
   * bfloat16, or int8 quantized on load (symmetric, per output row in blocks
   * of 32 inputs: scale = max|w| / 127, q = round-half-away(w / scale)). The
   * GEMM reads them as stored and dequantizes in registers; `stateDict()`
   * returns the dequantized values. Biases, norms and activations stay float32.
   */
  weightDtype?: WeightDtype;
  /** Learned bias_k / bias_v appended as one more key and value. Default: false. */
  addBiasKV?: boolean;
  /** An all-zero key and value appended per head. Default: false. */
  addZeroAttn?: boolean;
  /** Seed of the PyTorch-style initial weights (deterministic). Default: 0. */
  seed?: number;
}

/** Options of {@link MultiheadAttention.forward}. */
export interface ForwardOptions {
  /** `[B, Lk]` (unbatched `[Lk]`): true = ignore that key, or additive floats. */
  keyPaddingMask?: Mask;
  /**
   * `[Lq, Lk]`, `[B·H, Lq, Lk]` with index `b·H + h` (unbatched `[H, Lq, Lk]`),
   * or Hugging Face's `[B, 1, Lq, Lk]` or `[B, H, Lq, Lk]`: true = not allowed,
   * or additive floats (finite ones, even finfo(float32).min, stay finite).
   */
  attnMask?: Mask;
  /** Blocks key j for query i when j > i (top-left aligned, like `torch.tril`); `causal: true`. */
  isCausal?: boolean;
  /**
   * Causal masking by position: a key is blocked when its position is after
   * the query's. `true` or 'top-left': queries at 0 .. Lq-1; 'bottom-right':
   * the last query at the last key's position (cross-attention, caches).
   */
  causal?: boolean | 'top-left' | 'bottom-right';
  /**
   * The queries' positions `[B, Lq]` (unbatched `[Lq]`), integers, which
   * RoPE, ALiBi, causal masking and the window use (left-padded batches);
   * self-attention only. Default: 0 .. Lq-1.
   */
  positions?: number[] | Int32Array | TensorLike<number[] | Int32Array>;
  /**
   * A {@link KVCache} of this layer: the call's keys and values are appended
   * and its queries attend over every position the cache holds, causally by
   * position. Weights then have one column per position since the cache's
   * reset (keys a ring dropped: 0); masks cover those columns too.
   */
  cache?: KVCache;
  /**
   * d2l.ai's valid_lens: key j is blocked when j >= the length. `[B]` (a plain
   * array works) or `[B, Lq]`; unbatched: a number or `[Lq]`.
   */
  validLens?: number | number[] | Int32Array | TensorLike<number[] | Int32Array>;
  /**
   * Attention weights: `'none'` (default; memory stays O(L)), `'average'` over
   * heads (PyTorch's default `need_weights=True`) or `'per-head'`
   * (`average_attn_weights=False`).
   */
  needWeights?: 'none' | 'average' | 'per-head';
  /** Also return the per-head outputs Z_i `[B, H, Lq, d]`. Default: false. */
  returnHeads?: boolean;
  /** Also return the concatenation of the heads `[B, Lq, E]`. Default: false. */
  returnConcat?: boolean;
  /**
   * A query row whose every key is blocked: `'zero'` (default) gives weights 0
   * and a head output of 0; `'nan'` gives NaN there, as PyTorch 1.13 does.
   */
  fullyMaskedRows?: 'zero' | 'nan';
}

/** What {@link MultiheadAttention.forward} returns; unbatched in, unbatched out. */
export interface ForwardResult {
  /** `[B, Lq, E]` */
  output: Tensor;
  /** `[B, Lq, S]` (average) or `[B, H, Lq, S]` (per-head), when asked for. */
  weights?: Tensor;
  /** `[B, H, Lq, d]`, with `returnHeads`. */
  heads?: Tensor;
  /** `[B, Lq, H·d]`, with `returnConcat`. */
  concat?: Tensor;
}

/** A tensor read from a safetensors file, converted to float32. */
export interface SafetensorsTensor extends TensorLike<Float32Array> {
  /** The dtype stored in the file: F32, F64, F16 or BF16. */
  dtype: 'F32' | 'F64' | 'F16' | 'BF16';
}

/**
 * Parses the bytes of a safetensors file (8-byte header length, JSON header,
 * raw little-endian data), validating every offset and size first. Throws a
 * RangeError naming what is malformed.
 */
export declare function parseSafetensors(bytes: ArrayBuffer | ArrayBufferView): {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
};

/**
 * The attention layer under `prefix` in a safetensors file as a PyTorch
 * state_dict, with the layer options its shapes imply.
 */
export declare function safetensorsToStateDict(
  bytes: ArrayBuffer | ArrayBufferView,
  options?: { prefix?: string; layout?: 'auto' | 'torch' | 'bert' | 'gpt2' },
): {
  layout: 'torch' | 'bert' | 'gpt2';
  stateDict: Record<string, TensorLike<Float32Array>>;
  options: { embedDim: number; kdim: number; vdim: number; bias: boolean; addBiasKV: boolean };
};

/** Options of {@link MultiheadAttention.fromSafetensors}. */
export interface FromSafetensorsOptions {
  /** H; the tensors cannot tell it. */
  numHeads: number;
  /** The layer's key prefix, e.g. `'encoder.layer.0.attention.'`. Default: ''. */
  prefix?: string;
  /**
   * Key names: `'torch'` (nn.MultiheadAttention), `'bert'` (Hugging Face BERT:
   * self.query/key/value, output.dense), `'gpt2'` (Hugging Face GPT-2: c_attn,
   * c_proj, stored transposed), or `'auto'` (default) to recognise them.
   */
  layout?: 'auto' | 'torch' | 'bert' | 'gpt2';
  /** As in {@link CreateOptions}; the file cannot tell it. */
  addZeroAttn?: boolean;
  /** As in {@link CreateOptions}. Default: what the file stores (F16 as 'f16', BF16 as 'bf16', else 'f32'). */
  weightDtype?: WeightDtype;
}

/** How a layer stores its projection weights. */
export type WeightDtype = 'f32' | 'f16' | 'bf16' | 'int8';

/** A Hugging Face model's config.json, as parsed JSON (its fields are the model's). */
export type HuggingFaceConfig = Record<string, unknown> & { model_type: string };

/**
 * Options of {@link MultiheadAttention.fromSafetensors} for one layer of a
 * Hugging Face checkpoint (llama, mistral, qwen2, qwen3, gemma, gemma2,
 * gemma3_text, phi3, smollm3, gpt_oss, granite, mixtral, qwen2_moe, qwen3_moe,
 * gpt_neox, bloom, whisper): its config.json says the rest. Config features
 * mha-wasm does not implement are refused by name.
 */
export interface FromHuggingFaceOptions {
  config: HuggingFaceConfig;
  /** The layer index (0-based). */
  layer: number;
  /** Whisper: the decoder's 'self' (default) or 'cross' attention, or the 'encoder''s. */
  attention?: 'self' | 'cross' | 'encoder';
  /** As in {@link CreateOptions}. Default: what the file stores (F16 as 'f16', BF16 as 'bf16', else 'f32'). */
  weightDtype?: WeightDtype;
}

/** Options of {@link MultiheadAttention.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Require every key of the layer (PyTorch's `strict`). Default: true. */
  strict?: boolean;
}

/** A PyTorch state_dict: `in_proj_weight`, `in_proj_bias`, `out_proj.weight`, … */
export type StateDict = Record<string, Float32Array | TensorLike<Float32Array>>;

/** Resources a layer made for decoding; free with `dispose()` (or `using`), else the GC reclaims them. */
declare class DecodingSource {
  protected constructor();
  /** The sequences it holds (B). */
  readonly batch: number;
  readonly disposed: boolean;
  dispose(): void;
  [Symbol.dispose](): void;
}

/**
 * A layer's key/value cache (from {@link MultiheadAttention.createCache}):
 * per key/value head the keys (after QK-norm and RoPE) and values of the
 * tokens run with `{ cache }`. Under a sliding window W it is a ring that
 * keeps what later queries can see (capacity >= W - 1 + the longest call).
 */
export declare class KVCache extends DecodingSource {
  /** Positions appended since the last reset. */
  readonly length: number;
  /** Of those, the last ones held. */
  readonly held: number;
  readonly capacity: number;
  /** Empties it. */
  reset(): void;
  /** Back to the state after the first `length` positions (rejected speculative tokens). */
  truncate(length: number): void;
}

/** An encoder output's keys and values, projected once ({@link MultiheadAttention.projectMemory}). */
export declare class EncoderMemory extends DecodingSource {
  /** Its frames (M). */
  readonly length: number;
}

/**
 * One `nn.MultiheadAttention` layer (inference). Holds WebAssembly memory:
 * call `dispose()` (or declare it with `using`) when done; a layer dropped
 * without it is reclaimed by the garbage collector eventually.
 */
export declare class MultiheadAttention {
  private constructor();
  /** Creates a layer; throws RangeError when `embedDim % numHeads !== 0`. */
  static create(options: CreateOptions): Promise<MultiheadAttention>;
  /**
   * Creates a layer from a safetensors file's bytes. embedDim, kdim, vdim,
   * bias and addBiasKV come from the tensors. BERT's output LayerNorm is not
   * applied; GPT-2 needs `isCausal: true` in forward.
   */
  static fromSafetensors(bytes: ArrayBuffer | ArrayBufferView,
    options: FromSafetensorsOptions | FromHuggingFaceOptions): Promise<MultiheadAttention>;

  readonly embedDim: number;
  readonly numHeads: number;
  /** d = embedDim / numHeads. */
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  /** true or false for every projection, or per projection when they differ. */
  readonly bias: boolean | { q: boolean; k: boolean; v: boolean; o: boolean };
  readonly addBiasKV: boolean;
  readonly addZeroAttn: boolean;
  /** Hkv. */
  readonly numKVHeads: number;
  /** The state_dict names. */
  readonly weightNames: 'torch' | 'hf';
  readonly rope: Readonly<Required<Omit<RopeOptions, 'scaling'>> & { scaling: RopeScaling | null }> | null;
  /** The score scale in use. */
  readonly scale: number;
  readonly softcap: number | null;
  readonly alibi: boolean;
  readonly slidingWindow: number | null;
  readonly qkNorm: { eps: number } | null;
  /** Whether each head has a learned sink logit (`sinks`). */
  readonly sinks: boolean;
  /** How the projection weights are stored. */
  readonly weightDtype: WeightDtype;
  /** Bytes the layer's weights hold in WebAssembly memory, in their stored format. */
  readonly weightBytes: number;
  /** True after `dispose()`. */
  readonly disposed: boolean;

  /** This layer's state_dict keys and their PyTorch shapes. */
  parameterShapes(): Record<string, number[]>;
  /**
   * Loads weights under PyTorch's state_dict names (row-major, as PyTorch
   * stores them). Missing, unexpected and misshapen keys are all named in one
   * error, and nothing is loaded unless everything fits.
   */
  loadStateDict(dict: StateDict, options?: LoadStateDictOptions): void;
  /** The current weights, as fresh tensors under PyTorch's names. */
  stateDict(): Record<string, Tensor>;
  /** A key/value cache for decoding: `capacity` positions of `batch` sequences (default 1). */
  createCache(options: { capacity: number; batch?: number }): KVCache;
  /** An encoder output `[B, M, kdim]` (or `[M, kdim]`) projected once, for cross-attention: forward's `key`. */
  projectMemory(encoderOutput: TensorLike<Float32Array>): EncoderMemory;
  /**
   * Runs the layer. `key` defaults to `query` and `value` to `key`; pass
   * `null` to use a default while giving later arguments.
   */
  forward(query: TensorLike, key?: TensorLike | EncoderMemory | null, value?: TensorLike | null,
          options?: ForwardOptions): ForwardResult;
  /** Frees the WebAssembly memory. A second call does nothing; any other use afterwards throws. */
  dispose(): void;
  [Symbol.dispose](): void;
}
