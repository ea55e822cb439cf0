// The "Trained models" mode: pick a model (web/models/), type or pick a
// sequence, and step the model one token at a time. Models are fetched the
// first time the mode opens (the playground never pays for them) and kept;
// each one's session (stepper and steps) lives until another model is picked.
//
// Stepping is synchronous (the package's forward with a cache is), so only
// loading a model holds `#models-app` aria-busy="true"; the tests wait for
// "false", as they do for the playground's `#app`.
import { fetchTinyModel } from './models/tiny_model.js';
import { ModelSession } from './model_session.js';
import { renderSession } from './model_view.js';
import { behaviourLines } from './model_legend.js';
import { buildModelExport } from './model_export.js';
import { downloadJson } from './export.js';
import { $ } from './dom.js';

const MODELS_URL = '/models/';

export function createModelsApp(pkg) {
  const root = $('models-app');
  const models = new Map();  // name -> TinyModel, once loaded
  let session = null;
  let name = null;
  let loading = 0;

  const feedBack = () => $('models-feedback').checked;
  const setBusy = () => root.setAttribute('aria-busy', loading > 0 ? 'true' : 'false');
  const status = (text, kind = 'ok') => {
    $('models-status').textContent = text;
    $('models-status').dataset.kind = kind;
  };

  function showTextError(message) {
    $('models-text-msg').textContent = message ?? '';
    if (message) $('models-text').setAttribute('aria-invalid', 'true');
    else $('models-text').removeAttribute('aria-invalid');
  }

  function draw() {
    if (!session) return;
    renderSession(session, { feedBack: feedBack() });
    const more = session.next({ feedBack: feedBack() }) != null;
    $('models-step').disabled = !more;
    $('models-run').disabled = !more;
    $('models-reset').disabled = session.fed.length === 0;
    $('models-export').disabled = false;
    if ($('models-text').getAttribute('aria-invalid') === 'true') {
      status('Showing the last valid sequence: fix the sequence (its message is next to it).', 'stale');
    } else {
      const { fed, typed } = session;
      status(`${fed.length} of ${Math.max(typed.length, fed.length)} symbols fed${fed.length > typed.length ? `, ${fed.length - typed.length} written by the model` : ''}.`);
    }
  }

  function readText() {
    try {
      session.setText($('models-text').value);
      showTextError(null);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      showTextError(err.message);
    }
    draw();
  }

  async function pick(next) {
    loading++;
    setBusy();
    root.dataset.state = 'loading';
    try {
      if (!models.has(next)) models.set(next, await fetchTinyModel(pkg, `${MODELS_URL}${next}.json`));
      session?.dispose();
      const model = models.get(next);
      name = next;
      session = new ModelSession(model);
      showModel(model.config);
      readText();
      root.dataset.state = 'ready';
    } catch (err) {
      console.error(err);
      root.dataset.state = 'error';
      status(`Could not load the ${next} model: ${err.message}`, 'stale');
    } finally {
      loading--;
      setBusy();
    }
  }

  // The model's description, vocabulary, examples, legend; the first example as the sequence.
  function showModel(config) {
    $('models-summary').textContent = config.summary;
    $('models-vocab').textContent = config.vocab.join(' ');
    const examples = $('models-example');
    examples.replaceChildren(new Option('pick one…', ''), ...config.examples.map((e) => new Option(e, e)));
    $('models-text').value = config.examples[0];
    // Greedy writing is what the reverse model is for; the induction model may too, off by default.
    $('models-feedback').checked = config.name === 'reverse';
    $('models-legend').replaceChildren(...behaviourLines(config).map((line) => {
      const li = document.createElement('li');
      li.textContent = line;
      return li;
    }));
  }

  const act = (fn) => () => {
    if (!session) return;
    fn();
    draw();
  };
  const step = act(() => session.step({ feedBack: feedBack() }));
  const run = act(() => session.runToEnd({ feedBack: feedBack() }));
  const reset = act(() => session.reset());

  function wire() {
    for (const r of document.querySelectorAll('input[name="tiny-model"]')) r.addEventListener('change', () => pick(r.value));
    $('models-text').addEventListener('input', () => { if (session) readText(); });
    $('models-text').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); step(); }
    });
    $('models-example').addEventListener('change', () => {
      const value = $('models-example').value;
      if (!value || !session) return;
      $('models-text').value = value;
      readText();
      $('models-example').value = '';
    });
    $('models-feedback').addEventListener('change', () => draw());
    $('models-step').addEventListener('click', step);
    $('models-run').addEventListener('click', run);
    $('models-reset').addEventListener('click', reset);
    $('models-controls').addEventListener('submit', (e) => e.preventDefault());
    // Shortcuts anywhere while the mode shows (the page's body too), except in
    // fields, where arrows and Home edit or move.
    document.addEventListener('keydown', (e) => {
      if (root.hidden || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.target.closest?.('input, select, textarea, summary, canvas')) return;
      const action = { ArrowRight: step, n: step, End: run, Home: reset }[e.key];
      if (action) { e.preventDefault(); action(); }
    });
    $('models-export').addEventListener('click', () => {
      if (session) downloadJson(buildModelExport(session, { name, feedBack: feedBack(), text: $('models-text').value }, pkg.capabilities(), pkg.version), `mha-wasm-${name}.json`);
    });
  }

  let started = false;
  return {
    /** Called when the mode is shown: loads the picked model the first time. */
    open() {
      if (started) return;
      started = true;
      wire();
      pick(document.querySelector('input[name="tiny-model"]:checked').value);
    },
  };
}
