// Parsing and checking what people type or load, with messages meant to be
// shown next to the field. Pure functions (no DOM), so they are testable from
// Node. Each failure throws an InputError whose message says what was wrong
// and where, in the person's terms (row and column numbers from 1).

export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = 'InputError';
  }
}

/** The divisors of n, ascending: the head counts that split E evenly. */
export function divisors(n) {
  const out = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}

/** "1, 2, 5 or 10" */
export function listOr(items) {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/**
 * Explains why E cannot be split into h heads (null when it can). The rule is
 * shown, not just enforced: each head gets d = E / h columns of Q, K and V.
 */
export function explainHeads(E, h) {
  if (E % h === 0) return null;
  const near = divisors(E);
  const shown = near.length > 12
    ? near.slice().sort((a, b) => Math.abs(a - h) - Math.abs(b - h)).slice(0, 8).sort((a, b) => a - b)
    : near;
  const q = E / h;
  const width = Number.isInteger(q * 100) ? String(q) : `${q.toFixed(2)}…`;
  return `E = ${E} cannot be split into ${h} heads of equal width (${E} / ${h} = ${width}): ` +
    `each head gets d = E / h columns, so h must divide E. Try h = ${listOr(shown)}.`;
}

/** Reads a whole number in [min, max] from a text field. */
export function parseWhole(text, { name, min, max }) {
  const s = String(text).trim();
  if (s === '') throw new InputError(`${name} is empty: type a whole number from ${min} to ${max}.`);
  if (!/^[+-]?\d+$/.test(s)) throw new InputError(`${name} must be a whole number from ${min} to ${max}, got "${s}".`);
  const n = Number(s);
  if (n < min || n > max) throw new InputError(`${name} must be from ${min} to ${max}, got ${n}.`);
  return n;
}

function toNumber(token, where) {
  const s = token.trim();
  // Number('') is 0 and Number('0x10') is 16: accept plain decimal notation only.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) && !/^[+-]?(Infinity|NaN)$/.test(s))
    throw new InputError(`"${s}" ${where} is not a number.`);
  const v = Number(s);
  if (!Number.isFinite(v)) throw new InputError(`${s} ${where} is not a finite number.`);
  return v;
}

// Rows of numbers → { data, dims: [L, E] }, checking it is rectangular.
function fromRows(rows, what) {
  if (rows.length === 0) throw new InputError(`The ${what} is empty: paste rows of numbers, one row per token.`);
  const E = rows[0].length;
  if (E === 0) throw new InputError(`Row 1 of the ${what} has no numbers.`);
  rows.forEach((r, i) => {
    if (r.length !== E)
      throw new InputError(`Row ${i + 1} has ${r.length} value${r.length === 1 ? '' : 's'} but row 1 has ${E}: every row (token) needs the same width E.`);
  });
  return { data: Float32Array.from(rows.flat()), dims: [rows.length, E] };
}

/**
 * A pasted matrix: JSON [[…], …] ([L, E]) or [[[…]]] ([B, L, E]), or CSV
 * (one row per line; values separated by commas, semicolons, tabs or spaces).
 * Returns { data: Float32Array, dims: [B, L, E] }.
 */
export function parseMatrix(text) {
  const s = text.trim();
  if (s === '') throw new InputError('The matrix is empty: paste rows of numbers (CSV) or JSON like [[0.1, 0.2], [0.3, 0.4]].');
  if (s.startsWith('[')) {
    let json;
    try {
      json = JSON.parse(s);
    } catch (err) {
      throw new InputError(`This is not valid JSON (${err.message}). Expected [[…], …] with one inner array per token.`);
    }
    if (!Array.isArray(json) || json.length === 0) throw new InputError('The JSON matrix must be a non-empty array of rows.');
    const depth = Array.isArray(json[0]) ? (Array.isArray(json[0][0]) ? 3 : 2) : 1;
    const rowsOf = (rows, prefix) => rows.map((row, i) => {
      if (!Array.isArray(row)) throw new InputError(`${prefix}row ${i + 1} is not an array.`);
      return row.map((v, j) => {
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw new InputError(`${prefix}row ${i + 1}, column ${j + 1} is ${JSON.stringify(v)}, not a finite number.`);
        return v;
      });
    });
    if (depth === 1) throw new InputError('The JSON is a flat list: wrap each token\'s row in brackets, [[…], […]], so the page knows the width E.');
    if (depth === 2) {
      const m = fromRows(rowsOf(json, ''), 'matrix');
      return { data: m.data, dims: [1, ...m.dims] };
    }
    const mats = json.map((seq, b) => {
      if (!Array.isArray(seq)) throw new InputError(`Sequence ${b + 1} is not an array of rows.`);
      return fromRows(rowsOf(seq, `sequence ${b + 1}, `), `sequence ${b + 1}`);
    });
    mats.forEach((m, b) => {
      if (m.dims[0] !== mats[0].dims[0] || m.dims[1] !== mats[0].dims[1])
        throw new InputError(`Sequence ${b + 1} is [${m.dims}] but sequence 1 is [${mats[0].dims}]: a [B, L, E] batch needs equal shapes.`);
    });
    const data = new Float32Array(mats.length * mats[0].data.length);
    mats.forEach((m, b) => data.set(m.data, b * m.data.length));
    return { data, dims: [mats.length, ...mats[0].dims] };
  }
  const rows = s.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    .map((line, i) => line.split(/[,;\t ]+/).filter((t) => t !== '').map((t, j) => toNumber(t, `at row ${i + 1}, column ${j + 1}`)));
  const m = fromRows(rows, 'matrix');
  return { data: m.data, dims: [1, ...m.dims] };
}

// Flattens nested arrays of numbers (any depth) into `out`, checking each leaf.
function flatten(value, name, out, path = '') {
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, name, out, `${path}[${i}]`));
    return out;
  }
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new InputError(`'${name}'${path} is ${JSON.stringify(value)}, not a finite number.`);
  out.push(value);
  return out;
}

/**
 * A PyTorch state_dict saved as JSON: an object of name → flat or nested number
 * arrays (or { data, dims }). Returns name → Float32Array; whether the names and
 * sizes fit the layer is left to the package's loadStateDict, whose message the
 * page shows as it is.
 */
export function parseStateDict(text) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(`The file is not valid JSON (${err.message}).`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new InputError('A state_dict file must be a JSON object of name → array of numbers, like {"in_proj_weight": [[…]], …}.');
  const names = Object.keys(json);
  if (names.length === 0) throw new InputError('The state_dict object is empty.');
  const dict = {};
  for (const name of names) {
    let v = json[name];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'data' in v) v = v.data;
    if (!Array.isArray(v)) throw new InputError(`'${name}' must be an array of numbers (flat or nested), got ${v === null ? 'null' : typeof v}.`);
    dict[name] = Float32Array.from(flatten(v, name, []));
  }
  return dict;
}

/**
 * The key prefix of the first attention layer in a safetensors file's names:
 * what comes before nn.MultiheadAttention's out_proj.weight, BERT's
 * self.query.weight or GPT-2's c_attn.weight. The page loads that layer.
 */
export function attentionPrefix(names) {
  for (const name of names)
    for (const tail of ['out_proj.weight', 'self.query.weight', 'c_attn.weight'])
      if (name.endsWith(tail)) return name.slice(0, name.length - tail.length);
  throw new InputError('No attention layer found in this safetensors file: none of its names ends in out_proj.weight (nn.MultiheadAttention), self.query.weight (BERT) or c_attn.weight (GPT-2).');
}

/** Reads a finite decimal number from a text field. */
export function parseNumber(text, { name }) {
  const s = String(text).trim();
  if (s === '') throw new InputError(`${name} is empty: type a number.`);
  return toNumber(s, `(${name})`);
}
