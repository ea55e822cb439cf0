// One layer of a Hugging Face checkpoint from local files, without reading
// the whole file: the safetensors header first (8-byte little-endian length
// N, then N bytes of JSON naming each tensor's dtype, shape and byte range),
// then only the chosen layer's attention tensors, each through Blob.slice. A
// multi-gigabyte model.safetensors thus costs one layer's bytes.
//
// The bytes read are handed to the package as a small safetensors file of
// their own (the same names, offsets rebased), so everything past the header
// length (which tensors the family's layer needs, how fused projections
// split, what a config means) is the package's: MultiheadAttention.
// fromSafetensors(bytes, { config, layer }). A file cut short is left for the
// package to refuse with its own message.
import { InputError } from './parse.js';

const CHUNK = 8 << 20;  // bytes per read: progress moves, and no read holds much more than a tensor

async function bytesOf(blob) {
  return new Uint8Array(await blob.arrayBuffer());
}

/**
 * The header of a safetensors Blob: { names, entries, dataStart } or, when
 * the header itself is unreadable, { broken: Uint8Array } (the bytes read,
 * for the package to say what is wrong with them).
 */
export async function readHeader(file) {
  const head = await bytesOf(file.slice(0, 8));
  if (head.length < 8) return { broken: head };
  const length = new DataView(head.buffer).getBigUint64(0, true);
  if (length > BigInt(file.size - 8)) return { broken: await bytesOf(file.slice(0, Math.min(file.size, 8 + 4096))) };
  const bytes = await bytesOf(file.slice(0, 8 + Number(length)));
  let header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8)));
  } catch {
    return { broken: bytes };
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return { broken: bytes };
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  return { names, entries: header, dataStart: 8 + Number(length) };
}

/**
 * The names of layer `layer`'s attention tensors: a dotted segment equal to
 * the index (model.layers.3., h.3., gpt_neox.layers.3.) followed by a module
 * named like attention (self_attn, attention, self_attention, encoder_attn).
 * A superset is harmless (the package takes what the family needs); this is
 * only to avoid reading the MLP and the other layers.
 */
export function layerTensorNames(names, layer) {
  const index = String(layer);
  return names.filter((name) => {
    const parts = name.split('.');
    for (let i = 1; i < parts.length - 1; i++)
      if (parts[i] === index && !/^\d+$/.test(parts[i - 1]) && /attn|attention/.test(parts[i + 1])) return true;
    return false;
  });
}

/**
 * Reads the chosen tensors of `file` into a safetensors file of their own.
 * onProgress(done, total) is told of each chunk read.
 */
export async function readLayerBytes(file, header, names, onProgress = () => {}) {
  const spans = names.map((name) => {
    const [begin, end] = header.entries[name].data_offsets;
    return { name, begin, end };
  }).sort((a, b) => a.begin - b.begin);
  const total = spans.reduce((n, s) => n + (s.end - s.begin), 0);
  const entries = {};
  const parts = [];
  let at = 0, done = 0;
  for (const s of spans) {
    const { dtype, shape } = header.entries[s.name];
    entries[s.name] = { dtype, shape, data_offsets: [at, at + (s.end - s.begin)] };
    at += s.end - s.begin;
    for (let from = header.dataStart + s.begin; from < header.dataStart + s.end; from += CHUNK) {
      const part = await bytesOf(file.slice(from, Math.min(from + CHUNK, header.dataStart + s.end)));
      parts.push(part);
      done += part.length;
      onProgress(done, total);
      if (part.length === 0) break;  // past the end of a truncated file
    }
  }
  const json = new TextEncoder().encode(JSON.stringify(entries));
  const out = new Uint8Array(8 + json.length + done);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const part of parts) { out.set(part, p); p += part.length; }
  onProgress(total, total);
  return out;
}

/** config.json's object, or an InputError saying why not. */
export async function readConfig(file) {
  let config;
  try {
    config = JSON.parse(await file.text());
  } catch (err) {
    throw new InputError(`${file.name} is not valid JSON (${err.message}).`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new InputError(`${file.name} is not a JSON object: a model's config.json is one.`);
  return config;
}

/** The number of layers the config says the model has, or null. */
export function layerCount(config) {
  const c = config.text_config ?? config;
  for (const k of ['num_hidden_layers', 'n_layer', 'decoder_layers']) if (Number.isInteger(c[k])) return c[k];
  return null;
}
