// A reader of the safetensors format (the weights format Hugging Face models
// ship): 8 bytes of little-endian header length N, N bytes of JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} },
// then the tensors' raw little-endian bytes, offsets relative to the end of
// the header. Everything is validated before anything is read; a malformed
// file is refused with an error that says what is wrong and where.

const DTYPES = {
  F32: { bytes: 4, read: (view, at) => view.getFloat32(at, true) },
  F64: { bytes: 8, read: (view, at) => view.getFloat64(at, true) },
  F16: { bytes: 2, read: (view, at) => halfToFloat(view.getUint16(at, true)) },
  // bfloat16 is the top half of a float32.
  BF16: { bytes: 2, read: (view, at) => bfloatToFloat(view.getUint16(at, true)) },
};

const scratch = new DataView(new ArrayBuffer(4));
function bfloatToFloat(bits) {
  scratch.setUint32(0, bits << 16, true);
  return scratch.getFloat32(0, true);
}

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);           // subnormal
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function fail(message) {
  throw new RangeError(`safetensors: ${message}`);
}

function asBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError(`safetensors: bytes must be an ArrayBuffer or a typed array (e.g. a Node Buffer), got ${bytes === null ? 'null' : typeof bytes === 'object' ? bytes.constructor.name : typeof bytes}`);
}

/**
 * Parses safetensors bytes. Returns `{ tensors, metadata }`: `tensors` maps
 * each name to `{ data: Float32Array, dims, dtype }` (F32, F64, F16 and BF16
 * are read, converted to float32), `metadata` is the header's __metadata__.
 */
export function parseSafetensors(input) {
  const bytes = asBytes(input);
  if (bytes.length < 8) fail(`the file has ${bytes.length} bytes, fewer than the 8 of its header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8)
    fail(`the header claims ${headerLength} bytes but only ${bytes.length - 8} follow the length field`);
  let header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    fail(`the header is not valid UTF-8 JSON (${err.message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const { __metadata__: metadata = {}, ...entries } = header;
  const spans = [];
  const tensors = {};
  for (const [name, entry] of Object.entries(entries)) {
    if (entry === null || typeof entry !== 'object') fail(`tensor '${name}' has no description object`);
    const type = DTYPES[entry.dtype];
    if (type === undefined)
      fail(`tensor '${name}' has dtype ${JSON.stringify(entry.dtype)}; supported: ${Object.keys(DTYPES).join(', ')}`);
    const { shape, data_offsets: offsets } = entry;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor '${name}' has shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
        offsets[0] > offsets[1])
      fail(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`);
    const [begin, end] = offsets;
    if (end > dataLength) fail(`tensor '${name}' ends at byte ${end} of the data, which has only ${dataLength}`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * type.bytes)
      fail(`tensor '${name}' of shape [${shape.join(', ')}] and dtype ${entry.dtype} needs ${count * type.bytes} bytes, its offsets span ${end - begin}`);
    spans.push([begin, end, name]);
    const data = new Float32Array(count);
    if (entry.dtype === 'F32' && (bytes.byteOffset + dataStart + begin) % 4 === 0) {
      data.set(new Float32Array(bytes.buffer, bytes.byteOffset + dataStart + begin, count));  // little-endian hosts
    } else {
      for (let i = 0; i < count; i++) data[i] = type.read(view, dataStart + begin + i * type.bytes);
    }
    tensors[name] = { data, dims: shape.slice(), dtype: entry.dtype };
  }
  // The format requires tensors not to overlap.
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++)
    if (spans[i][0] < spans[i - 1][1] && spans[i][1] > spans[i][0])
      fail(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  return { tensors, metadata };
}
