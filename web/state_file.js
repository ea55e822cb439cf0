// Reading the "state_dict file" control: a PyTorch state_dict saved as JSON,
// or a .safetensors file whose first attention layer the package reads.
import { parseStateDict, attentionPrefix, InputError } from './parse.js';

/** name → Float32Array of the file's layer; throws with a message for the field. */
export async function readStateFile(file, { parseSafetensors, safetensorsToStateDict }) {
  try {
    if (file.name.endsWith('.safetensors')) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const prefix = attentionPrefix(Object.keys(parseSafetensors(bytes).tensors));
      return safetensorsToStateDict(bytes, { prefix }).stateDict;
    }
    return parseStateDict(await file.text());
  } catch (err) {
    // The page's and the package's messages say what is wrong as they are;
    // anything else (the file vanished) gets the file's name.
    if (err instanceof InputError || err instanceof RangeError) throw err;
    throw new InputError(`Could not read ${file.name}: ${err.message}`);
  }
}
