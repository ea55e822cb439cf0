// Everything the page remembers that is not in the controls themselves, in
// one object that app.js makes and passes to each module: no module keeps
// state of its own, so what a function may change is what it is given.

export function createState({ typedE }) {
  return {
    /** User-masked keys, as "b:j:token" (dropped when that token changes). */
    masked: new Set(),
    /** The sequence of the batch shown. */
    selectedBatch: 0,
    /** The state_dict file: name → Float32Array, or the reason it could not be read. */
    stateFile: { dict: null, name: null, version: 0, error: null },
    /** Field values as typed, by id, restored when a field stops being read-only (E in matrix mode, E and h with a checkpoint). */
    typedFields: new Map([['E', typedE]]),
    /** A checkpoint's files and layer (kept apart: switching weights back and forth does not reread it), or why it failed: { field, message }. */
    checkpoint: { mha: null, error: null, version: 0, files: [] },
    /** Heads picked in the strip, to compare side by side (at most two, the oldest dropped first). */
    compare: [],
    /** The layer, kept while its configuration (`key`) stays the same. */
    layer: { mha: null, key: '' },
    /** The last good run: { p, input, result, average, options, timings }; what is drawn. */
    last: null,
    /** Updates run so far. */
    runs: 0,
    /** Drawn elements reused across renders (heatmaps, head cards, readout lines), by key. */
    views: { maps: new Map(), cards: new Map(), readouts: new Map() },
  };
}
