// Token embeddings for the demo page: the only numbers the page computes itself.
// Everything attention-related comes from the package; this module only turns
// text into the input X [B, L, E] that the package is fed.
//
// It is a pure ES module (no DOM), so the browser tests import it from Node and
// rebuild the page's exact input, then run the package in Node on it.
//
// Why these choices:
// - A token's vector depends only on the token (lower-cased) and E: a hash of
//   the string seeds the project's PRNG (mulberry32, common/prng.js). The same word gets the same
//   vector wherever it appears, so repeated words differ only by their
//   positional encoding, which is what a learner should see.
// - Values are uniform in [-√3, √3) (unit variance) and drawn with integer
//   arithmetic only, so they are bit-identical in every JS engine.
// - Positional encodings are "Attention Is All You Need" §3.5:
//   PE(pos, 2i) = sin(pos / 10000^(2i/E)), PE(pos, 2i+1) = cos(pos / 10000^(2i/E)).
// - Every stored value is float32 (what the package takes); X = fround(emb + PE).
// - Padding positions (a shorter line in a batch) are all-zero rows; the page
//   also masks them as keys with keyPaddingMask, so no query attends to them.
import { mulberry32 } from '../common/prng.js';

/** Largest sequence length the page accepts (heatmaps are L × S; weights grow as L²). */
export const MAX_L = 256;
/** Most lines (batch elements) the page accepts. */
export const MAX_B = 16;
/** Widest E the page accepts. */
export const MAX_E = 512;
/** What the page shows for a padding position. */
export const PAD = '⟨pad⟩';

// Words (letters/digits, with inner apostrophes: "didn't") or single other
// characters (punctuation), so "tired." gives "tired" and ".".
const TOKEN_RE = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu;

/** Splits one line into tokens. */
export function tokenize(line) {
  return line.match(TOKEN_RE) ?? [];
}

/** The non-blank lines of a text box: one line = one sequence. */
export function splitLines(text) {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}

/** 32-bit FNV-1a over the UTF-8 bytes of `s`: a stable seed per token. */
export function hashString(s) {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const SQRT3 = Math.sqrt(3);

/** Fills `out[offset … offset+E)` with the token's float32 embedding. */
export function tokenEmbedding(token, E, out = new Float32Array(E), offset = 0) {
  const next = mulberry32(hashString(token.toLowerCase()));
  for (let e = 0; e < E; e++) out[offset + e] = (next() * 2 - 1) * SQRT3;
  return out;
}

/** Sinusoidal positional encodings [L, E] (float32), §3.5 of Vaswani et al. */
export function positionalEncoding(L, E) {
  const pe = new Float32Array(L * E);
  for (let pos = 0; pos < L; pos++) {
    for (let e = 0; e < E; e++) {
      const i2 = e - (e % 2);  // the 2i shared by the sin/cos pair
      const angle = pos / Math.pow(10000, i2 / E);
      pe[pos * E + e] = e % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return pe;
}

/**
 * Embeds a batch of already tokenised sequences, padded to the longest.
 * Returns float32 arrays laid out [B, L, E] (X, its token part, its positional
 * part) and the padding mask [B, L] (1 = padding).
 */
export function embedTokens(tokenLists, E) {
  const B = tokenLists.length;
  const L = Math.max(0, ...tokenLists.map((t) => t.length));
  const pe = positionalEncoding(L, E);
  const emb = new Float32Array(B * L * E);
  const positional = new Float32Array(B * L * E);
  const data = new Float32Array(B * L * E);
  const padding = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) {
    const tokens = tokenLists[b];
    for (let l = 0; l < L; l++) {
      const row = (b * L + l) * E;
      if (l >= tokens.length) { padding[b * L + l] = 1; continue; }  // zero row
      tokenEmbedding(tokens[l], E, emb, row);
      for (let e = 0; e < E; e++) {
        positional[row + e] = pe[l * E + e];
        data[row + e] = Math.fround(emb[row + e] + pe[l * E + e]);
      }
    }
  }
  const labels = tokenLists.map((t) => Array.from({ length: L }, (_, l) => (l < t.length ? t[l] : PAD)));
  return { B, L, E, dims: [B, L, E], data, embedding: emb, positional, padding, tokens: tokenLists, labels };
}

/** Lines of text → embedded batch (see embedTokens). */
export function embedLines(lines, E) {
  return embedTokens(lines.map(tokenize), E);
}

/** A random [L, E] float32 matrix from a seed, uniform in [-√3, √3). */
export function randomMatrix(seed, L, E) {
  const next = mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ 0x5bd1e995);
  const data = new Float32Array(L * E);
  for (let i = 0; i < data.length; i++) data[i] = (next() * 2 - 1) * SQRT3;
  return data;
}
