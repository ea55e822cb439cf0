// What the page writes into its form and status line: the message next to
// each field, which fields show for the input mode, the d = E / h rule, the
// status line and the build that runs.
import { $, radio } from './dom.js';
import { sub } from './walk.js';

// Fields that can be wrong; each has a message slot `${id}-msg` next to it.
const FIELD_NAMES = {
  text: 'Sentences', matrix: 'Matrix', 'rand-seed': 'Seed of X', 'rand-len': 'Length L', 'key-text': 'Key/value text',
  E: 'Width E', h: 'Heads h', seed: 'Weight seed', 'kv-heads': 'Key/value heads', 'head-dim': 'Head width d',
  scale: 'Score scale', 'rope-dim': 'Rotary width r', 'rope-base': 'Base θ', shift: 'Shift k', window: 'Sliding window W',
  softcap: 'Softcap c', decoder: 'Decoder attention', 'state-file': 'state_dict file', 'ckpt-files': 'Checkpoint files',
  'ckpt-layer': 'Layer',
};
const FIELDS = Object.keys(FIELD_NAMES);

/** Each field's message (or none) and aria-invalid; `alsoInvalid` fields are marked without a message. */
export function showErrors(errors, alsoInvalid = []) {
  for (const id of FIELDS) {
    const msg = $(`${id}-msg`);
    const text = errors[id] ?? '';
    if (msg.textContent !== text) msg.textContent = text;
    const input = $(id);
    if (text || alsoInvalid.includes(id)) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

export function setStatus(text, kind) {
  const s = $('status');
  s.textContent = text;
  s.dataset.kind = kind;
}

/** The status line after an update: up to date, or which field to fix. */
export function showOutcome({ errors, pageError, hasResult }) {
  if (pageError) {
    setStatus(hasResult ? `${pageError} Showing the last good result.` : pageError, 'stale');
    return;
  }
  const first = FIELDS.find((id) => errors[id]);
  if (first) {
    const label = FIELD_NAMES[first];
    setStatus(hasResult ? `Showing the last good result: fix “${label}” (its message is next to it).` : `Nothing to show yet: fix “${label}”.`, 'stale');
  } else {
    setStatus('Up to date.', 'ok');
  }
}

// Makes a field read-only showing `value` (remembering what was typed), or gives the typed value back.
function lockField(el, value, title, typed) {
  if (value != null) {
    if (!el.readOnly) typed.set(el.id, el.value);
    el.readOnly = true;
    el.value = value;
    el.title = title;
  } else if (el.readOnly) {
    el.readOnly = false;
    el.value = typed.get(el.id) ?? el.value;
    el.title = '';
  }
}

/**
 * Shows the fields of the input mode and weights. In matrix mode E is the
 * matrix's width; with a checkpoint's layer, E and h are the layer's and the
 * decoder options are its own (read-only, as the package reports them).
 */
export function syncModeFields(state, mode, matrixDims) {
  for (const el of document.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== mode;
  $('key-field').hidden = !$('cross').checked;
  const weights = radio('weights');
  $('seed').disabled = weights !== 'seeded';
  const ckpt = weights === 'checkpoint' ? state.checkpoint.mha : null;
  $('decoder').disabled = ckpt != null;
  $('rope-fields').hidden = !$('rope').checked;
  const typed = state.typedFields;
  if (ckpt) {
    lockField($('E'), String(ckpt.embedDim), 'E of the checkpoint\'s layer', typed);
    lockField($('h'), String(ckpt.numHeads), 'h of the checkpoint\'s layer', typed);
  } else {
    lockField($('E'), mode === 'matrix' ? (matrixDims ? String(matrixDims[2]) : '') : null, 'E is the width of the matrix', typed);
    lockField($('h'), null, '', typed);
  }
}

/** The d = E / h rule with this run's numbers (d as the layer reports it, when it was given). */
export function showHeadRule(E, h, headDim) {
  if (E == null || h == null) return;
  if (headDim != null) {
    $('h-rule').textContent = `Each head gets d = ${headDim} columns of Q, K and V (set, not E / h); ` +
      `the heads' outputs Z${sub(1)} … Z${sub(h)} are concatenated to width h·d = ${h * headDim}, projected back to E = ${E}.`;
    return;
  }
  if (E % h !== 0) return;
  $('h-rule').textContent = `Each head gets d = E / h = ${E} / ${h} = ${E / h} columns of Q, K and V; ` +
    `the heads' outputs Z${sub(1)} … Z${sub(h)} are concatenated back to width E.`;
}

/** The package version and the build that runs, with why it was chosen. */
export function showBuild(c, version) {
  $('info-version').textContent = `mha-wasm ${version}`;
  const yes = (v) => (v ? '✓' : '✗');
  const threads = `${c.threads} thread${c.threads === 1 ? '' : 's'}${c.maxThreads > 1 ? ` of ${c.maxThreads}` : ''}`;
  const info = $('info-build');
  info.textContent = `${c.build}: SIMD ${yes(c.simd)}, ${threads}, cross-origin isolated ${yes(c.crossOriginIsolated)}`;
  info.title = `${c.reason}. Loaded from: ${c.loadedFrom}`;
  info.dataset.simd = String(c.simd);
  info.dataset.threads = String(c.threads);
  const why = document.createElement('span');
  why.className = 'why';
  why.textContent = ` — ${c.reason}`;
  info.append(why);
}

/** The timings of the run shown. */
export function showTimings(t) {
  $('info-render').textContent = `${t.render.toFixed(1)} ms (drawing ${t.draw.toFixed(1)} ms)`;
}
