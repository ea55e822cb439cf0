// Summary statistics of timing samples. Medians, because the machine is shared
// and noisy: one descheduled run must not move the number.

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Median absolute deviation relative to the median: a robust spread. */
export function relativeSpread(xs) {
  const m = median(xs);
  return median(xs.map((x) => Math.abs(x - m))) / m;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > worst) worst = d;
  }
  return worst;
}
