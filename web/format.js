// Number and shape formatting shared by the page's modules.

/**
 * The shortest decimal that reads back as the same float32: the exact value
 * the package returned, without float64 noise (0.1832740 rather than
 * 0.18327400088310242). Number(s) then Math.fround gives the value back.
 */
export function f32(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  for (let p = 1; p < 10; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

/** A short form for previews: 4 significant digits. */
export function short(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return v.toPrecision(4).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

/** "[2, 6, 16]" */
export function dims(d) {
  return `[${d.join(', ')}]`;
}
