// The project's one seeded pseudo-random generator in JavaScript, imported by
// the demo page (token embeddings, random X), the tests and the benchmark, so
// that "seed 7" means the same numbers everywhere.
//
// mulberry32 (Tommy Ettinger's 32-bit generator): one 32-bit state, integer
// arithmetic only (Math.imul, >>>), so every JS engine gives the same
// sequence bit for bit. Not for cryptography; good enough to make test inputs
// and weights that look like noise.
//
// The demo page serves this folder at /common/ (scripts/serve.js), so the
// page's modules and Node resolve the same relative import.

/** A generator of uniform numbers in [0, 1) from a 32-bit seed. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n float32 values uniform in [-scale, scale) from a seed. */
export function randomFloats(n, seed, scale = 1) {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}
