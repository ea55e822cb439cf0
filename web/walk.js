// The shape walk: the stages of the layer, each with its shape in symbols and
// in the real numbers of this run, and (for the tensors the package returns)
// the first values of the chosen sequence's first row. Q, K and V are computed
// inside the package and never returned, so for them only the shapes are shown:
// the page does no attention maths of its own.
import { dims, short } from './format.js';

const SUB = '₀₁₂₃₄₅₆₇₈₉';
/** 12 → "₁₂" */
export function sub(n) {
  return String(n).replace(/\d/g, (d) => SUB[d]);
}

function preview(data, offset, n, count = 2) {
  if (!data) return '';
  const vals = [];
  for (let i = 0; i < Math.min(n, count); i++) vals.push(short(data[offset + i]));
  return `${vals.join('  ')}${n > count ? '  …' : ''}`;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/**
 * run: { B, L, Lk, S, E, h, d, b, cross, X, heads, concat, output, weightsDims, tokens0 }
 * (b is the chosen batch element; arrays are the full package results.)
 */
export function renderWalk(list, run) {
  const { B, L, Lk, S, E, h, d, b, cross } = run;
  const Lks = cross ? 'Lk' : 'L';
  const stages = [
    {
      name: 'X', what: 'token embedding + positional encoding (in the page)',
      sym: '[B, L, E]', num: [B, L, E], href: '#input-sec',
      values: preview(run.X, b * L * E, E), valuesOf: `X[${b}, 0, :]`,
    },
    {
      name: 'Q, K, V', what: `Q = X·W_Qᵀ + b_Q; K, V likewise${cross ? ' from the key/value text' : ''}`,
      sym: cross ? `[B, L, E], [B, ${Lks}, E]` : '[B, L, E] ×3', num: cross ? [[B, L, E], [B, Lk, E]] : [B, L, E],
    },
    {
      name: 'split', what: `each row cut into h = ${h} pieces of d = ${d}`,
      sym: '[B, L, h, d]', num: [B, L, h, d],
    },
    {
      name: 'transpose', what: `heads first: ${h} independent attentions`,
      sym: '[B, h, L, d]', num: [B, h, L, d],
    },
    {
      name: 'Zᵢ', what: 'softmax(QᵢKᵢᵀ / √d + mask) · Vᵢ',
      sym: '[B, h, L, d]', num: [B, h, L, d], href: '#heads-sec',
      values: preview(run.heads, b * h * L * d, d), valuesOf: `Z${sub(1)}[${b}, 0, :]`,
      title: `attention weights [B, h, L, ${S === Lk ? Lks : 'S'}] = ${dims(run.weightsDims)}`,
    },
    {
      name: 'concat', what: `Z${sub(1)} … Z${sub(h)} side by side`,
      sym: '[B, L, h·d]', num: [B, L, h * d], href: '#concat-sec',
      values: preview(run.concat, b * L * E, E), valuesOf: `concat[${b}, 0, :]`,
    },
    {
      name: 'output', what: 'concat · W_Oᵀ + b_O',
      sym: '[B, L, E]', num: [B, L, E], href: '#output-sec',
      values: preview(run.output, b * L * E, E), valuesOf: `output[${b}, 0, :]`,
    },
  ];
  list.replaceChildren(...stages.map((s) => {
    const li = el('li', 'walk-step');
    li.dataset.stage = s.name;
    if (s.title) li.title = s.title;
    const name = s.href ? el('a', 'walk-name', s.name) : el('span', 'walk-name', s.name);
    if (s.href) name.href = s.href;
    const sym = el('code', 'walk-sym', s.sym);
    const num = Array.isArray(s.num[0]) ? s.num.map(dims).join(', ') : dims(s.num);
    const shape = el('code', 'walk-shape', `= ${num}`);
    shape.dataset.dims = JSON.stringify(s.num);
    li.append(name, sym, shape, el('p', 'walk-what', s.what));
    const vals = el('p', 'walk-values');
    if (s.values) {
      vals.append(el('span', 'walk-of', s.valuesOf), el('span', 'walk-nums', s.values));
      vals.title = `${s.valuesOf} = ${s.values}`;
    } else {
      vals.textContent = 'inside the package, not returned';
      vals.classList.add('walk-inside');
    }
    li.append(vals);
    return li;
  }));
}
