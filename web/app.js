// The demo page's wiring: loads the package, makes the page's state, and
// connects the controls to one scheduled update. The page does no attention
// maths: the weights, head outputs Zᵢ, concatenation and output are the arrays
// the package returns; the page only makes the token embeddings (embeddings.js).
//
//   input.js      reading and checking the controls, building X and the masks
//   layer.js      the package's layer, kept while its configuration stays
//   update.js     one update: read → build → layer → forward ×2 → draw
//   render.js     drawing the last good run (views.js keeps its elements)
//   controls.js   messages next to fields, the status line, the build info
//   schedule.js   one update per frame, one at a time, aria-busy while due
//   checkpoint_layer.js  one layer of a local checkpoint, read a layer's worth
//   head_compare.js      heads ranked by entropy, two side by side
//   mode.js, models_app.js  the "Trained models" mode (web/models/), stepped token by token
import { createState } from './state.js';
import { createScheduler } from './schedule.js';
import { update } from './update.js';
import { toggleMask } from './input.js';
import { readStateFile } from './state_file.js';
import { loadCheckpointLayer } from './checkpoint_layer.js';
import { parseWhole, InputError } from './parse.js';
import { setStatus, showBuild } from './controls.js';
import { buildExport, downloadJson } from './export.js';
import { $ } from './dom.js';
import { initModeSwitch } from './mode.js';
import { createModelsApp } from './models_app.js';

const app = $('app');

// The package, through its public entry (the import map's 'mha-wasm'). Loaded
// dynamically so that a missing build says so on the page instead of leaving
// it stuck at "Loading".
let pkg;
try {
  pkg = await import('mha-wasm');
  await pkg.init();
} catch (err) {
  setStatus(`Could not load the mha-wasm package from /dist/ (${err.message}). Build it (npm start does) and reload.`, 'stale');
  app.dataset.state = 'error';
  app.setAttribute('aria-busy', 'false');
  throw err;
}

const state = createState({ typedE: $('E').value });

const scheduler = createScheduler(app, () => update(state, pkg, { onToggleMask, onPickHead }), (err) => {
  // Never leave the page blank: say what broke, keep the last result.
  console.error(err);
  setStatus(`Unexpected error: ${err.message}`, 'stale');
  app.dataset.state = state.last ? 'stale' : 'error';
});
const { schedule } = scheduler;

function onToggleMask(b, j) {
  if (toggleMask(state, b, j)) schedule();
}

// Picking a head in the strip: two at most, the oldest pick dropped first.
function onPickHead(head) {
  const picked = state.compare;
  const at = picked.indexOf(head);
  if (at >= 0) picked.splice(at, 1);
  else picked.push(head);
  if (picked.length > 2) picked.shift();
  schedule();
}

function loadCheckpoint() {
  if (state.checkpoint.files.length === 0) return;
  document.querySelector('input[name="weights"][value="checkpoint"]').checked = true;
  const progress = $('ckpt-progress');
  scheduler.track((async () => {
    let layer;
    try {
      layer = parseWhole($('ckpt-layer').value, { name: 'The layer', min: 0, max: 100_000 });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      state.checkpoint = { ...state.checkpoint, error: { field: 'ckpt-layer', message: err.message } };
      schedule();
      return;
    }
    progress.value = 0;
    try {
      const loaded = await loadCheckpointLayer(state.checkpoint.files, layer, pkg, (done, total) => {
        progress.max = total || 1;
        progress.value = done;
      });
      state.checkpoint.mha?.dispose();
      state.checkpoint = { ...state.checkpoint, mha: loaded.mha, error: null, version: state.checkpoint.version + 1 };
      const m = loaded.mha;
      $('ckpt-info').textContent = `${loaded.config.model_type} layer ${layer}${loaded.layers ? ` of ${loaded.layers}` : ''}: ` +
        `E ${m.embedDim}, ${m.numHeads} heads, ${m.numKVHeads} key/value heads, d ${m.headDim}` +
        `${m.rope ? `, RoPE r ${m.rope.dim} θ ${m.rope.base}` : ''}${m.alibi ? ', ALiBi' : ''}${m.slidingWindow ? `, window ${m.slidingWindow}` : ''}` +
        `${m.softcap ? `, softcap ${m.softcap}` : ''}${m.qkNorm ? ', q/k norm' : ''}${m.sinks ? ', sinks' : ''}. ` +
        `Read ${loaded.bytesRead.toLocaleString('en')} of ${loaded.fileBytes.toLocaleString('en')} bytes.`;
      $('ckpt-info').dataset.bytesRead = String(loaded.bytesRead);
    } catch (err) {
      if (err.field == null) throw err;
      state.checkpoint = { ...state.checkpoint, error: { field: err.field, message: err.message } };
      $('ckpt-info').textContent = '';
    }
    schedule();
  })());
}

function onCheckpointFiles(files) {
  // Kept, so that another layer index rereads only that layer.
  state.checkpoint.files = [...files];
  loadCheckpoint();
}

function onStateFile() {
  const file = $('state-file').files[0];
  if (!file) return;
  document.querySelector('input[name="weights"][value="file"]').checked = true;
  scheduler.track((async () => {
    let dict = null, error = null;
    try {
      dict = await readStateFile(file, pkg);
    } catch (err) {
      error = err.message;
    }
    state.stateFile = { dict, error, name: file.name, version: state.stateFile.version + 1 };
    schedule();
  })());
}

function wire() {
  const form = $('controls');
  // The file input schedules itself once the file is read.
  const onEdit = (e) => { if (!['state-file', 'ckpt-files', 'ckpt-layer'].includes(e.target.id)) schedule(); };
  form.addEventListener('input', onEdit);
  form.addEventListener('change', onEdit);
  form.addEventListener('submit', (e) => e.preventDefault());
  $('batch').addEventListener('change', () => { state.selectedBatch = Number($('batch').value); schedule(); });
  for (const r of document.querySelectorAll('input[name="xview"]')) r.addEventListener('change', schedule);
  $('state-file').addEventListener('change', onStateFile);
  $('ckpt-files').addEventListener('change', () => onCheckpointFiles($('ckpt-files').files));
  $('ckpt-layer').addEventListener('change', loadCheckpoint);
  const drop = $('ckpt-drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    onCheckpointFiles(e.dataTransfer.files);
  });
  $('export').addEventListener('click', () => {
    if (state.last) downloadJson(buildExport(state.last, pkg.capabilities(), pkg.version), 'mha-wasm-demo.json');
  });
  // Heatmap cell sizes follow the column width.
  let lastWidth = $('results').clientWidth;
  new ResizeObserver(() => {
    const w = $('results').clientWidth;
    if (w !== lastWidth) { lastWidth = w; schedule(); }
  }).observe($('results'));
}

showBuild(pkg.capabilities(), pkg.version);
wire();
schedule();
const modelsApp = createModelsApp(pkg);
initModeSwitch({ onOpen: (mode) => { if (mode === 'models') modelsApp.open(); } });
