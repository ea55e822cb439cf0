// How long to measure. Every cell (shape × peer) gets at least `minReps` timed
// runs and keeps going, round-robin with the other cells, until it has spent
// `budgetMs` or reached `maxReps`. Slow cells (the plain JS loop at L = 2048
// takes ~10 s a call) therefore get few runs and fast ones many, and a full
// `npm run bench` stays around 10–15 minutes.
// Warm-up: at least `warmCalls` untimed calls, more while under `warmMs`
// (WebAssembly starts in V8's baseline compiler and tiers up while it runs).
// A cell whose call takes `slow.callMs` or more is warm after one call and
// needs only `slow.minReps` timed runs.
// "tiny" shapes (the teaching shape) measure per-call overhead: many runs.
// Decoding steps (a token against a cache or an encoder memory) take
// milliseconds, and a median of 21 moved by a quarter between runs on this
// shared host: `step` gives them more runs for the same few seconds.

export const PROFILES = {
  full: {
    warmCalls: 1, warmMs: 400, maxWarmCalls: 200,
    minReps: 3, maxReps: 21, budgetMs: 5000,
    slow: { callMs: 8000, minReps: 2 },
    tiny: { minReps: 200, maxReps: 4000, budgetMs: 1500 },
    step: { minReps: 3, maxReps: 101, budgetMs: 5000 },
    big: { warmupShape: 'L512', maxCalls: 2, budgetMs: 30000 },  // the L = 16384 memory test
    native: { minTime: 0.2, repetitions: 9 },
  },
  quick: {
    warmCalls: 1, warmMs: 150, maxWarmCalls: 100,
    minReps: 3, maxReps: 7, budgetMs: 1200,
    slow: { callMs: 4000, minReps: 2 },
    tiny: { minReps: 100, maxReps: 1000, budgetMs: 400 },
    step: { minReps: 3, maxReps: 21, budgetMs: 1200 },
    big: { warmupShape: 'L512', maxCalls: 1, budgetMs: 0 },
    native: { minTime: 0.05, repetitions: 3 },
  },
};

/** A decoding step's shape: one new token against a cache or a memory. */
export const isStep = (shape) => shape.step === 'decode' || shape.step === 'cross';

/** Shapes whose call is dominated by per-call overhead. */
export const isTiny = (shape) => shape.B * shape.Lq * shape.E * shape.E < 1e5;
