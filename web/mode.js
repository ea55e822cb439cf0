// The page's two modes, switched by the radio group in the header: the
// playground (#app: a layer with seeded or loaded weights) and the trained
// models (#models-app). The URL's hash names the mode (#models), so a link or
// a reload opens the same one.
import { $ } from './dom.js';

const PANES = { playground: 'app', models: 'models-app' };

export function initModeSwitch({ onOpen }) {
  const radios = [...document.querySelectorAll('input[name="page-mode"]')];
  const show = (mode) => {
    for (const [m, id] of Object.entries(PANES)) $(id).hidden = m !== mode;
    // The header's lede and the footer say what each mode computes itself.
    // (Not data-mode: the playground shows its input fields by that.)
    for (const el of document.querySelectorAll('[data-for-mode]')) el.hidden = el.dataset.forMode !== mode;
    onOpen(mode);
  };
  for (const r of radios) r.addEventListener('change', () => {
    if (!r.checked) return;
    history.replaceState(null, '', r.value === 'models' ? '#models' : location.pathname + location.search);
    show(r.value);
  });
  const initial = location.hash === '#models' ? 'models' : 'playground';
  radios.find((r) => r.value === initial).checked = true;
  show(initial);
}
