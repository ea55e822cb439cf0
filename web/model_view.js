// Drawing a trained model's decoding session: the keys in the cache (the
// tokens fed so far, then the typed ones still to feed), the prediction after
// the last step, and every head's weights, one row per step with the newest
// row marked. Every number drawn is a step's result from the runner (its
// weights are the package's); the probabilities are the softmax of its logits.
// Cells carry their exact value (data-weight, the float32's shortest decimal)
// so the tests read what the page shows.
import { f32, short } from './format.js';
import { topTokens } from './model_prediction.js';
import { headRole } from './model_legend.js';
import { $ } from './dom.js';

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};
// Spaces would vanish in a cell; show them as the open-box symbol.
const show = (symbol) => (symbol === ' ' ? '␣' : symbol);

/** Redraws the whole mode from the session (a few thousand cells at most: 32 positions). */
export function renderSession(session, { feedBack }) {
  renderCache(session, feedBack);
  renderPrediction(session);
  renderHeads(session);
}

function renderCache(session, feedBack) {
  const { model, fed, typed } = session;
  const chips = fed.map((t, i) => {
    const chip = el('span', `tok key${session.isGenerated(i) ? ' gen' : ''}${i === fed.length - 1 ? ' new' : ''}`, show(model.vocab[t]));
    chip.dataset.position = String(i);
    chip.title = `position ${i}${session.isGenerated(i) ? ' (written by the model)' : ''}`;
    return chip;
  });
  for (let i = fed.length; i < typed.length; i++) {
    const chip = el('span', 'tok pending', show(model.vocab[typed[i]]));
    chip.title = `position ${i}: not fed yet`;
    chips.push(chip);
  }
  $('models-cache').replaceChildren(...chips);
  const next = session.next({ feedBack });
  $('models-cache-note').textContent = `Cache length ${fed.length} of ${model.maxLen} positions in each of the ` +
    `${model.numLayers} layers' caches. ${next == null ? 'Nothing left to feed.' :
      `Next to feed: “${show(model.vocab[next])}”${fed.length >= typed.length ? ' (the prediction, fed back)' : ''}.`}`;
  $('models-cache').dataset.length = String(fed.length);
}

function renderPrediction(session) {
  const last = session.steps.at(-1);
  const list = $('models-prediction');
  const note = $('models-prediction-note');
  if (!last) {
    note.textContent = 'Step the model to see what it predicts next.';
    list.replaceChildren();
    return;
  }
  const { vocab } = session.model;
  note.textContent = `After “${show(vocab[last.token])}” at position ${last.position}, the next symbol:`;
  list.replaceChildren(...topTokens(last.logits, vocab).map((t) => {
    const li = el('li', t.token === last.prediction ? 'best' : '');
    li.dataset.token = String(t.token);
    li.dataset.p = String(t.p);
    li.style.setProperty('--p', `${(t.p * 100).toFixed(2)}%`);
    li.append(el('span', 'sym', show(t.symbol)), el('span', 'prob', `${(t.p * 100).toFixed(1)} %`),
      el('span', 'logit', `logit ${t.logit.toFixed(3)}`));
    return li;
  }));
}

function renderHeads(session) {
  const { model, steps, fed } = session;
  const labels = fed.map((t) => show(model.vocab[t]));
  const layers = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    const cards = [];
    for (let head = 0; head < model.numHeads; head++) cards.push(headCard(model, steps, labels, layer, head));
    const group = el('section', 'model-layer');
    group.append(el('h3', '', `Layer ${layer}`), el('div', 'model-heads', null));
    group.lastChild.append(...cards);
    layers.push(group);
  }
  $('models-heads').replaceChildren(...layers);
}

// One head: its rows so far as a lower-triangular grid (row q: query q's
// weights over keys 0 … q), the newest row outlined and summed up below.
function headCard(model, steps, labels, layer, head) {
  const role = headRole(model.config, layer, head);
  const card = el('article', `head-card model-head${role ? ' has-role' : ''}`);
  card.dataset.layer = String(layer);
  card.dataset.head = String(head);
  const h4 = el('h4', '', `layer ${layer} · head ${head}`);
  if (role) {
    const badge = el('span', 'role', role.label);
    badge.title = role.description;
    h4.append(' ', badge);
  }
  const n = steps.length;
  const grid = el('div', 'wgrid');
  grid.style.setProperty('--n', String(Math.max(n, 1)));
  grid.setAttribute('role', 'img');
  grid.setAttribute('aria-label', `Weights of layer ${layer}, head ${head}: one row per step (query), one column per key in the cache`);
  grid.append(el('span', 'corner'));
  for (let k = 0; k < n; k++) grid.append(el('span', 'col', labels[k]));
  steps.forEach((s, q) => {
    const row = s.weights[layer][head];
    grid.append(el('span', `rowlab${q === n - 1 ? ' new' : ''}`, labels[q]));
    for (let k = 0; k < n; k++) {
      const cell = el('span', `cell${q === n - 1 ? ' new' : ''}`);
      if (k < row.length) {
        const w = row[k];
        cell.style.setProperty('--w', String(w));
        cell.dataset.weight = f32(w);
        cell.title = `query ${q} “${labels[q]}” → key ${k} “${labels[k]}”: ${f32(w)}`;
      } else {
        cell.classList.add('future');
      }
      grid.append(cell);
    }
  });
  const summary = el('p', 'newrow');
  if (n > 0) {
    const row = steps[n - 1].weights[layer][head];
    const best = Array.from(row, (w, k) => ({ w, k })).sort((a, b) => b.w - a.w).slice(0, 2);
    summary.textContent = `New row (query ${n - 1} “${labels[n - 1]}”): ` +
      best.map(({ w, k }) => `${short(w)} on key ${k} “${labels[k]}”`).join(', ');
    summary.dataset.argmax = String(best[0].k);
  } else {
    summary.textContent = 'No rows yet.';
  }
  const scroll = el('div', 'wscroll');
  scroll.append(grid);
  card.append(h4, scroll, summary);
  return card;
}
