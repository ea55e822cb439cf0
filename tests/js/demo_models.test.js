// The demo's trained models (web/models/, written by scripts/train_demo.py) run
// by web/models/tiny_model.js with every attention layer in mha-wasm:
//  - their logits and per-head weights equal PyTorch's (float64 fixtures in
//    tests/fixtures/demo_models/), whole-sequence and stepped through the cache;
//  - their heads do the jobs the training script measured, as properties over
//    fresh random sequences drawn here, held to the thresholds in each model's JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as pkg from '../../dist/index.js';
import { mulberry32 } from '../../common/prng.js';
import { loadTinyModel } from '../../web/models/tiny_model.js';

const modelsDir = new URL('../../web/models/', import.meta.url);
const fixturesDir = new URL('../fixtures/demo_models/', import.meta.url);
const SEQUENCES = 200;

const readJson = (url) => JSON.parse(readFileSync(url, 'utf8'));

async function load(name) {
  const config = readJson(new URL(`${name}.json`, modelsDir));
  const model = await loadTinyModel(pkg, config, readFileSync(new URL(config.weights, modelsDir)));
  return { config, model, fixture: readJson(new URL(`${name}.json`, fixturesDir)) };
}

// Integers from the project's one seeded PRNG.
function prng(seed) {
  const next = mulberry32(seed);
  return { below: (n) => Math.floor(next() * n), between: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

// |got - want| <= atol + rtol * |want|; returns the worst absolute error.
function assertNear(got, want, { atol, rtol }, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(err <= atol + rtol * Math.abs(want[i]), `${what}[${i}]: ${got[i]} vs PyTorch's ${want[i]}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

const headOf = (config, role) => config.heads.find((h) => h.role === role);
// Weight of (layer, head) from query q on key k in run()'s [H, L, L] weights.
const weightAt = (run, L, { layer, head }, q, k) => run.weights[layer][(head * L + q) * L + k];
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

function fraction(values, min) {
  return values.filter((v) => v >= min).length / values.length;
}

for (const name of ['induction', 'reverse']) {
  test(`${name}: logits and every head's weights equal PyTorch's, the whole sequence in one causal call per layer`, async () => {
    const { model, fixture } = await load(name);
    try {
      for (const c of fixture.cases) {
        const L = c.tokens.length;
        const run = model.run(c.tokens);
        run.logits.forEach((row, q) => assertNear(row, c.logits[q], fixture.tolerance.logits, `${c.text} logits[${q}]`));
        run.weights.forEach((w, layer) => assertNear(w, c.weights[layer].flat(2), fixture.tolerance.weights,
          `${c.text} layer ${layer} weights [H, ${L}, ${L}]`));
      }
    } finally {
      model.dispose();
    }
  });

  test(`${name}: stepping one token at a time through the key/value cache gives PyTorch's logits and each head's new weights row`, async () => {
    const { model, fixture } = await load(name);
    try {
      for (const c of fixture.cases) {
        const stepper = model.stepper();
        try {
          c.tokens.forEach((token, q) => {
            const s = stepper.step(token);
            assert.equal(s.cacheLength, q + 1, 'the cache holds every token fed');
            assert.equal(s.position, q);
            assertNear(s.logits, c.logits[q], fixture.tolerance.logits, `${c.text} step ${q} logits`);
            assert.equal(s.prediction, argmax(c.logits[q]), `${c.text} step ${q} prediction`);
            s.weights.forEach((heads, layer) => heads.forEach((row, h) =>
              assertNear(row, c.weights[layer][h][q].slice(0, q + 1), fixture.tolerance.weights,
                `${c.text} step ${q} layer ${layer} head ${h}`)));
          });
        } finally {
          stepper.dispose();
        }
      }
    } finally {
      model.dispose();
    }
  });
}

// As scripts/train_demo.py's induction_sequence: 32 letters, a segment of
// 5-12 letters at s1 repeated at s2 >= s1 + k.
function inductionSequence(rand) {
  const T = 32;
  const tokens = Array.from({ length: T }, () => rand.below(26));
  const k = rand.between(5, 12);
  const s1 = rand.between(0, T - 2 * k);
  const s2 = rand.between(s1 + k, T - k);
  for (let j = 0; j < k; j++) tokens[s2 + j] = tokens[s1 + j];
  return { tokens, s1, s2, k };
}

// Queries in the second copy whose letter occurs exactly once before (in the first copy).
function* inductionQueries({ tokens, s1, s2, k }) {
  for (let j = 0; j < k; j++) {
    const q = s2 + j;
    if (tokens.slice(0, q).filter((t) => t === tokens[q]).length === 1) yield { q, j, target: s1 + j + 1 };
  }
}

test('induction: on fresh sequences with a repeated segment, the previous-token head looks at the letter before, the induction head at the letter after the earlier copy, and the model predicts it', async () => {
  const { config, model } = await load('induction');
  const rand = prng(22);
  const prevHead = headOf(config, 'previousToken'), indHead = headOf(config, 'induction');
  const { previousToken, induction, copyAccuracy } = config.behaviour;
  const prev = [], ind = [];
  let copied = 0, copies = 0;
  try {
    for (let n = 0; n < SEQUENCES; n++) {
      const seq = inductionSequence(rand);
      const L = seq.tokens.length;
      const run = model.run(seq.tokens);
      for (let q = 1; q < L; q++) prev.push(weightAt(run, L, prevHead, q, q - 1));
      for (const { q, j, target } of inductionQueries(seq)) {
        ind.push(weightAt(run, L, indHead, q, target));
        if (j < seq.k - 1 && q + 1 < L) {
          copies++;
          copied += argmax(run.logits[q]) === seq.tokens[q + 1];
        }
      }
    }
  } finally {
    model.dispose();
  }
  const prevFraction = fraction(prev, previousToken.minWeight);
  const indFraction = fraction(ind, induction.minWeight);
  assert.ok(prevFraction >= previousToken.minFraction,
    `previous-token head: ${prevFraction} of ${prev.length} queries put >= ${previousToken.minWeight} on the previous letter; need ${previousToken.minFraction}`);
  assert.ok(indFraction >= induction.minFraction,
    `induction head: ${indFraction} of ${ind.length} queries put >= ${induction.minWeight} after the earlier copy; need ${induction.minFraction}`);
  assert.ok(copied / copies >= copyAccuracy.minFraction,
    `the model predicted the copied letter at ${copied} of ${copies} queries; need ${copyAccuracy.minFraction}`);
});

// As scripts/train_demo.py's reverse_sequence: 1-8 digits, '>', them reversed, '.'.
function reverseSequence(rand) {
  const n = rand.between(1, 8);
  const digits = Array.from({ length: n }, () => rand.below(10));
  return { n, tokens: [...digits, 10, ...digits.toReversed(), 11] };
}

test('reverse: on fresh digit strings, the reversal head looks at the mirror digit, and greedy decoding through the cache writes the reversal', async () => {
  const { config, model } = await load('reverse');
  const rand = prng(23);
  const revHead = headOf(config, 'reversal');
  const { reversal, exactReversal } = config.behaviour;
  const mirror = [];
  let exact = 0;
  try {
    for (let i = 0; i < SEQUENCES; i++) {
      const { n, tokens } = reverseSequence(rand);
      const input = tokens.slice(0, -1);
      const L = input.length;
      const run = model.run(input);
      // Query p, from '>' to the last digit written, reads key 2n-1-p: the digit it writes next.
      for (let p = n; p < 2 * n; p++) mirror.push(weightAt(run, L, revHead, p, 2 * n - 1 - p));
      // The prompt (digits and '>') one token at a time, then the model's own predictions.
      const stepper = model.stepper();
      try {
        let s;
        for (const t of tokens.slice(0, n + 1)) s = stepper.step(t);
        const written = [];
        while (written.length < n + 1) {
          written.push(s.prediction);
          if (written.length < n + 1) s = stepper.step(s.prediction);
        }
        exact += written.join() === tokens.slice(n + 1).join();
      } finally {
        stepper.dispose();
      }
    }
  } finally {
    model.dispose();
  }
  const mirrorFraction = fraction(mirror, reversal.minWeight);
  assert.ok(mirrorFraction >= reversal.minFraction,
    `reversal head: ${mirrorFraction} of ${mirror.length} queries put >= ${reversal.minWeight} on the mirror digit; need ${reversal.minFraction}`);
  assert.ok(exact / SEQUENCES >= exactReversal.minFraction,
    `greedy decoding reversed ${exact} of ${SEQUENCES} strings exactly; need ${exactReversal.minFraction}`);
});

test('the runner refuses symbols outside the vocabulary and positions past the learned ones', async () => {
  const { model } = await load('reverse');
  const stepper = model.stepper();
  try {
    assert.throws(() => model.encode('12a>'), /'a' \(character 3\) is not in the vocabulary/);
    assert.throws(() => model.run(new Array(model.maxLen + 1).fill(0)), RangeError);
    for (let i = 0; i < model.maxLen; i++) stepper.step(0);
    assert.throws(() => stepper.step(0), /positions run to 18; the model learned 0 … 17/);
    assert.equal(stepper.length, model.maxLen, 'a refused step leaves the cache as it was');
  } finally {
    stepper.dispose();
    model.dispose();
  }
});
