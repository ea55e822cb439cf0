// One fixed forward pass whose digest several tests compare across builds,
// thread counts and runtimes (Node here; Chromium in tests/browser).
import { createHash } from 'node:crypto';

export const standardInput = () => {
  const B = 2, L = 70, E = 48;
  const data = Float32Array.from({ length: B * L * E }, (_, i) => Math.sin(i * 0.37) + 0.25 * Math.cos(i * 1.3));
  return { data, dims: [B, L, E] };
};

export async function digestOfStandardRun(MultiheadAttention) {
  const mha = await MultiheadAttention.create({ embedDim: 48, numHeads: 6, seed: 3, addBiasKV: true });
  const x = standardInput();
  const hash = createHash('sha256');
  for (const options of [{ needWeights: 'average', returnHeads: true }, { isCausal: true, needWeights: 'per-head' }]) {
    const r = mha.forward(x, null, null, options);
    for (const part of ['output', 'weights', 'heads']) if (r[part]) hash.update(new Uint8Array(r[part].data.buffer));
  }
  mha.dispose();
  return hash.digest('hex');
}
