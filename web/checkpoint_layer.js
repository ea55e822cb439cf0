// A checkpoint's layer for the page: the files picked or dropped (a
// config.json and a .safetensors), the layer index, the bytes of that layer
// read (checkpoint.js), and the package's MultiheadAttention.fromSafetensors.
// Failures come back as { field, message }: the package's own message, next
// to the file input or the layer field (by err.argument).
import { readHeader, readLayerBytes, layerTensorNames, readConfig, layerCount } from './checkpoint.js';
import { InputError } from './parse.js';

/** Which of `files` is the config and which the weights; an InputError if one is missing. */
export function pickFiles(files) {
  const config = files.find((f) => f.name.endsWith('.json'));
  const model = files.find((f) => f.name.endsWith('.safetensors'));
  if (!config || !model) {
    const have = files.map((f) => f.name).join(', ') || 'nothing';
    throw new InputError(`Need a config.json and a model.safetensors together (got ${have}).`);
  }
  return { config, model };
}

const fail = (field, message) => Object.assign(new Error(message), { field });

/**
 * The layer `layer` of the checkpoint in `files`: { mha, config, bytesRead,
 * fileBytes, layers }. onProgress(done, total) follows the reading.
 */
export async function loadCheckpointLayer(files, layer, pkg, onProgress) {
  let picked, config;
  try {
    picked = pickFiles(files);
    config = await readConfig(picked.config);
  } catch (err) {
    throw fail('ckpt-files', err.message);
  }
  const layers = layerCount(config);
  if (layers != null && layer >= layers) throw fail('ckpt-layer', `This model has ${layers} layers: choose 0 to ${layers - 1}.`);
  const header = await readHeader(picked.model);
  if (header.broken) {
    // The package says what is wrong with a header (it cannot be read as one).
    try {
      pkg.parseSafetensors(header.broken);
    } catch (err) {
      throw fail('ckpt-files', `${picked.model.name}: ${err.message}`);
    }
    throw fail('ckpt-files', `${picked.model.name}: the header could not be read.`);
  }
  const names = layerTensorNames(header.names, layer);
  const bytes = await readLayerBytes(picked.model, header, names, onProgress);
  try {
    const mha = await pkg.MultiheadAttention.fromSafetensors(bytes, { config, layer });
    return { mha, config, bytesRead: bytes.length, fileBytes: picked.model.size, layers };
  } catch (err) {
    throw fail(err.argument === 'layer' ? 'ckpt-layer' : 'ckpt-files', `${err.message}`);
  }
}
