// The drawn elements the page reuses across renders (heatmaps, head cards,
// readout lines), kept in the state's `views` maps by key, so a re-render
// updates canvases in place instead of rebuilding the page.
import { Heatmap, makeReadout } from './heatmap.js';

/** The heatmap under `key`, made on first use. */
export function heatmap(views, key, opts) {
  let m = views.maps.get(key);
  if (!m) {
    m = new Heatmap({ kind: opts.kind, onColumnClick: opts.onColumnClick, extraClass: opts.extraClass, readout: opts.readout });
    views.maps.set(key, m);
  }
  return m;
}

/** The readout line a card's maps share. */
export function cardReadout(views, key) {
  if (!views.readouts.has(key)) views.readouts.set(key, makeReadout(`readout-${key}`));
  return views.readouts.get(key);
}

/** A head card (title, notes, maps, readout), made on first use and updated in place. */
export function card(views, key, title, notes, children, head) {
  let c = views.cards.get(key);
  if (!c) {
    c = document.createElement('article');
    c.className = head === 'avg' ? 'head-card avg' : 'head-card';
    c.dataset.head = String(head);
    const h3 = document.createElement('h3');
    const span = document.createElement('span');
    span.textContent = title;
    h3.append(span);
    const body = document.createElement('div');
    body.className = 'head-maps';
    c.append(h3, body, cardReadout(views, key));
    views.cards.set(key, c);
  }
  const h3 = c.querySelector('h3');
  const want = notes.join('\n');
  if (h3.dataset.notes !== want) {
    h3.dataset.notes = want;
    h3.replaceChildren(h3.firstChild, ...notes.map((n) => { const sm = document.createElement('small'); sm.textContent = n; return sm; }));
  }
  const body = c.querySelector('.head-maps');
  if (children.some((ch, i) => body.children[i] !== ch)) body.replaceChildren(...children);
  return c;
}

/** Forgets the views of heads numbered h and above (after h shrinks). */
export function dropHeadsFrom(views, h) {
  for (let i = h; views.cards.has(`head${i}`); i++) {
    views.maps.delete(`head${i}w`);
    views.maps.delete(`head${i}z`);
    views.cards.delete(`head${i}`);
    views.readouts.delete(`head${i}`);
  }
}
