// The measured head behaviour of a trained model, as a short legend: what the
// training script measured on fresh sequences (the model JSON's `behaviour`,
// every head of the layer too: `everyHead`), so the user knows which head to
// watch and how reliably it does its job.

const pct = (f) => `${(f * 100).toFixed(1)} %`;

/** A head's short name from the model JSON: "induction head" from "induction head: looks at …". */
export function headRole(config, layer, head) {
  const h = config.heads?.find((x) => x.layer === layer && x.head === head);
  return h ? { label: h.description.split(':')[0], description: h.description } : null;
}

/** Lines of the legend: one per measured property, as plain text. */
export function behaviourLines(config) {
  const lines = [];
  for (const [name, b] of Object.entries(config.behaviour ?? {})) {
    if (b.layer != null) {
      const role = headRole(config, b.layer, b.head)?.label ?? name;
      const others = (b.everyHead ?? []).map((e, h) => ({ ...e, h })).filter((e) => e.h !== b.head)
        .map((e) => `head ${e.h}: ${pct(e.fractionAboveThreshold)}`);
      lines.push(`${role} (layer ${b.layer}, head ${b.head}): weight ≥ ${b.minWeight} on its target in ` +
        `${pct(b.fractionAboveThreshold)} of ${b.queries.toLocaleString('en')} queries, mean weight ${b.meanWeight.toFixed(2)}` +
        `${others.length ? ` (same layer, ${others.join(', ')})` : ''}.`);
    } else if (name === 'copyAccuracy') {
      lines.push(`At those queries the top prediction is the copied letter ${pct(b.measured)} of the time (${b.queries.toLocaleString('en')} queries).`);
    } else if (name === 'exactReversal') {
      lines.push(`Greedy decoding writes the exact reversal and the end mark for ${pct(b.measured)} of ${b.sequences.toLocaleString('en')} strings.`);
    }
  }
  return lines;
}
