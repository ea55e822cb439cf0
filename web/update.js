// One update of the page, in its steps:
//   readParams()   checks every field; a bad one gets its message next to it and
//                  the page keeps showing the last good result (never blank);
//   buildInput()   X [B, L, E], the key/value input, keyPaddingMask [B, Lk];
//   ensureLayer()  a layer per (E, h, bias, …, seed | state_dict), reused while
//                  those stay the same;
//   forward ×2     per-head weights + heads + concat, then the averaged weights
//                  (the average is the package's too, not the page's);
//   render()       from the last good run only, so a stale control never mixes
//                  with the numbers shown.
import { readParams, buildInput } from './input.js';
import { InputError } from './parse.js';
import { ensureLayer, layerKeyOf, FieldError, fieldOfError } from './layer.js';
import { render } from './render.js';
import { showErrors, showOutcome, syncModeFields, showHeadRule, showTimings } from './controls.js';
import { $ } from './dom.js';

// What the layer is, as the package reports it: the numbers the page shows about it.
function layerInfo(mha) {
  return {
    embedDim: mha.embedDim, numHeads: mha.numHeads, numKVHeads: mha.numKVHeads, headDim: mha.headDim,
    scale: mha.scale, rope: mha.rope, softcap: mha.softcap, alibi: mha.alibi, slidingWindow: mha.slidingWindow,
    qkNorm: mha.qkNorm, sinks: mha.sinks, weightNames: mha.weightNames,
  };
}

// positions [B, L] = k, k+1, … for every sequence (self-attention only).
function shiftedPositions(B, L, k) {
  const data = new Int32Array(B * L);
  for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) data[b * L + l] = k + l;
  return { data, dims: [B, L] };
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The forward passes the page shows (per-head with heads and concat; the
// package's own average), and with a shift k the same at positions 0, 1, …
// so the page can show how much the weights moved. Returns the run to draw.
function runForward(mha, p, input) {
  const options = {
    keyPaddingMask: { data: input.mask, dims: [input.B, input.Lk] },
    isCausal: p.causal,
    fullyMaskedRows: p.fullyMaskedRows,
  };
  const shift = p.decoder.shift;
  if (shift !== 0) options.positions = shiftedPositions(input.B, input.L, shift);
  const kv = input.cross ? input.key : null;
  const f0 = performance.now();
  const result = mha.forward(input.X, kv, kv, { ...options, needWeights: 'per-head', returnHeads: true, returnConcat: true });
  const f1 = performance.now();
  const average = mha.forward(input.X, kv, kv, { ...options, needWeights: 'average' }).weights;
  const f2 = performance.now();
  let shiftCheck = null;
  if (shift !== 0) {
    const { positions, ...unshifted } = options;
    const base = mha.forward(input.X, kv, kv, { ...unshifted, needWeights: 'per-head' }).weights;
    shiftCheck = { shift, maxDiff: maxAbsDiff(result.weights.data, base.data) };
  }
  return {
    p, input, result, average, options, shiftCheck, layer: layerInfo(mha),
    timings: { forward: f1 - f0, averageForward: f2 - f1, layer: 0, draw: 0, render: 0 },
  };
}

/** Reads the controls, runs the package if they are good, and draws. */
export async function update(state, pkg, handlers) {
  const app = $('app');
  const t0 = performance.now();
  const { p, errors, alsoInvalid } = readParams(state);
  syncModeFields(state, p.mode, p.matrix?.dims);
  let input = null;
  if (Object.keys(errors).length === 0) {
    try {
      input = buildInput(p, state);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      errors[err.field ?? (p.mode === 'text' ? 'text' : 'matrix')] = err.message;
    }
  }
  let pageError = null;
  let layerMs = 0;  // time spent creating a new layer (awaited), left out of the re-render time
  if (input) {
    try {
      const l0 = performance.now();
      const reused = state.layer.mha && state.layer.key === layerKeyOf(state, p);
      const mha = await ensureLayer(state, p, pkg);
      if (!reused) layerMs = performance.now() - l0;
      state.last = runForward(mha, p, input);
      state.last.timings.layer = layerMs;
    } catch (err) {
      const field = err instanceof FieldError ? err.field : fieldOfError(err);
      if (field) errors[field] = err.message;
      else pageError = `The package failed: ${err.name}: ${err.message}`;  // not about one field
    }
  }
  showErrors(errors, alsoInvalid);
  showHeadRule(p.E, p.h, p.decoder.headDim ?? (p.weights === 'checkpoint' ? state.checkpoint.mha?.headDim : null));
  const bad = Object.keys(errors).length > 0 || pageError != null;
  if (state.last) {
    const r0 = performance.now();
    render(state, handlers);  // the new run, or the last good one again (e.g. at a new width)
    const r1 = performance.now();
    if (!bad) {
      const t = state.last.timings;
      t.draw = r1 - r0;
      // Controls read → input built → forward ×2 → everything drawn; a new layer's creation excluded.
      t.render = r1 - t0 - layerMs;
      app.dataset.renderMs = t.render.toFixed(2);
      app.dataset.drawMs = t.draw.toFixed(2);
      app.dataset.forwardMs = t.forward.toFixed(3);
      showTimings(t);
    }
  }
  state.runs++;
  app.dataset.runs = String(state.runs);
  app.dataset.state = bad ? (state.last ? 'stale' : 'error') : 'ready';
  showOutcome({ errors, pageError, hasResult: state.last != null });
}
