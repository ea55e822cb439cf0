// The heads strip and the side-by-side view: heads ranked by the mean
// entropy of their queries' weights (entropy.js), each a toggle button; the
// two picked last are drawn next to each other, bigger, each with its
// per-query entropy beside its weights.
import { heatmap } from './views.js';
import { sub } from './walk.js';
import { $ } from './dom.js';

/** The strip of heads, most focused first; pressed buttons are the heads picked. */
export function renderRanking(run, picked, onPickHead) {
  const { ranking, input, layer, p } = run;
  const lnS = Math.log(input.S) || 1;
  const perGroup = p.h / layer.numKVHeads;
  const box = $('rank');
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.head : null;
  box.replaceChildren(...ranking.map(({ head, mean }, rank) => {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.dataset.head = String(head);
    btn.dataset.rank = String(rank);
    btn.dataset.entropy = String(mean);
    btn.textContent = `${head + 1}: ${mean.toFixed(3)}`;
    btn.style.setProperty('--fill', `${Math.round((100 * mean) / lnS)}%`);
    if (layer.numKVHeads < p.h) btn.classList.add(`kv${Math.floor(head / perGroup) % 8}`);
    btn.setAttribute('aria-pressed', picked.includes(head) ? 'true' : 'false');
    btn.setAttribute('aria-label', `Head ${head + 1}, mean entropy ${mean.toFixed(3)} nats, rank ${rank + 1} of ${ranking.length}`);
    btn.addEventListener('click', () => onPickHead(head));
    return btn;
  }));
  if (focused != null) box.querySelector(`[data-head="${focused}"]`)?.focus();
}

/** The picked heads side by side: weights [L, S] and per-query entropy [L, 1]. */
export function renderCompare(views, run, f, picked) {
  const { p, input, result, ranking } = run;
  const { L, S } = input;
  const heads = picked.filter((h) => h < p.h);
  const box = $('compare');
  if (heads.length < 2) {
    box.replaceChildren();
    $('compare-note').textContent = heads.length === 1
      ? `Head ${heads[0] + 1} picked: pick one more in the strip above.` : 'Pick two heads in the strip above.';
    return;
  }
  const width = Math.floor((f.width - 12) / 2);
  const cell = Math.max(3, Math.min(26, Math.floor((width - f.rowW - 40) / (S + 1))));
  const byHead = new Map(ranking.map((r) => [r.head, r]));
  const lnS = Math.log(S) || 1;
  const figures = [];
  heads.forEach((head, slot) => {
    const off = (f.b * p.h + head) * L * S;
    const wm = heatmap(views, `compare${slot}w`, { kind: 'compare-weights' });
    wm.el.dataset.head = String(head);
    wm.update({
      data: result.weights.data.subarray(off, off + L * S), rows: L, cols: S, cell,
      title: `head ${head + 1} weights`, ariaLabel: `Head ${head + 1} attention weights, ${L} queries by ${S} keys`,
      rowLabels: f.rowLabels, rowLabelWidth: f.rowW, rowDim: f.rowDim, colLabels: f.colLabels, colMode: 'text',
      colHeaderHeight: f.colHeaderHeight, colMasked: f.colMasked, scale: { kind: 'seq', max: 1 }, rowName: 'query', colName: 'key',
    });
    const em = heatmap(views, `compare${slot}h`, { kind: 'compare-entropy', extraClass: 'no-rows' });
    em.el.dataset.head = String(head);
    em.update({
      data: Float32Array.from(byHead.get(head).entropies), rows: L, cols: 1, cell,
      title: 'H', ariaLabel: `Head ${head + 1}: entropy of each query's weights, nats`,
      rowLabels: null, rowNames: f.rowLabels, rowDim: f.rowDim, colLabels: ['H'], colMode: 'text', colHeaderHeight: f.colHeaderHeight,
      scale: { kind: 'seq', max: lnS }, rowName: 'query', colName: 'entropy',
    });
    const pair = document.createElement('div');
    pair.className = 'head-maps';
    pair.dataset.head = String(head);
    pair.append(wm.el, em.el);
    figures.push(pair);
  });
  box.replaceChildren(...figures);
  $('compare-note').textContent = `Head ${heads[0] + 1} and head ${heads[1] + 1} of sequence ${f.b + 1}: ` +
    `mean entropy ${byHead.get(heads[0]).mean.toFixed(3)} and ${byHead.get(heads[1]).mean.toFixed(3)} nats (ln S = ${lnS.toFixed(3)}). ` +
    `Z${sub(heads[0] + 1)} and Z${sub(heads[1] + 1)} are in the cards above.`;
}
