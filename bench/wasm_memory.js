// Which WebAssembly memories belong to which peer, so the bench can report each
// peer's wasm heap. Only mha-wasm says its heap size (memoryStats()); the others
// keep their Emscripten module private. So this module wraps WebAssembly's
// instantiation once, and `track(fn)` returns every memory an instance was
// given (imported, as pthread builds do) or made (exported) while fn ran.
// Memories merely constructed are not counted: feature probes create small
// ones that no module ever uses. Peers load one at a time, so attribution is exact.
//
// A wasm memory only grows, so its size after a peer has run is that peer's
// peak heap in this process (the bench runs each shape group in a fresh process).
// Import this module before any peer.

const RealMemory = WebAssembly.Memory;
const RealInstance = WebAssembly.Instance;
const realInstantiate = WebAssembly.instantiate;
const realInstantiateStreaming = WebAssembly.instantiateStreaming;

let collector = null;

function note(memory) {
  if (collector && memory instanceof RealMemory) collector.add(memory);
}
function noteExports(instance) {
  if (collector && instance && instance.exports)
    for (const value of Object.values(instance.exports)) note(value);
}
// imports: { module: { field: value } }; a memory sits at the second level.
function noteImports(imports) {
  if (collector && imports && typeof imports === 'object')
    for (const module of Object.values(imports))
      if (module && typeof module === 'object') for (const value of Object.values(module)) note(value);
}

// Node instantiates wasm of its own (undici's HTTP parser, on first use of
// fetch); those memories belong to no peer. The caller's frame tells.
const fromNode = () => /\(node:internal\/|at node:internal\//.test(new Error().stack.split('\n').slice(3).join('\n'));

// A Proxy keeps `instanceof WebAssembly.Instance` and static members working.
WebAssembly.Instance = new Proxy(RealInstance, {
  construct(target, args, newTarget) {
    const i = Reflect.construct(target, args, newTarget);
    if (!fromNode()) { noteImports(args[1]); noteExports(i); }
    return i;
  },
});
WebAssembly.instantiate = async function instantiate(source, imports) {
  const internal = fromNode();
  const result = await realInstantiate.call(WebAssembly, source, imports);
  if (!internal) { noteImports(imports); noteExports(result instanceof RealInstance ? result : result.instance); }
  return result;
};
if (realInstantiateStreaming) {
  WebAssembly.instantiateStreaming = async function instantiateStreaming(source, imports) {
    const internal = fromNode();
    const result = await realInstantiateStreaming.call(WebAssembly, source, imports);
    if (!internal) { noteImports(imports); noteExports(result.instance); }
    return result;
  };
}

/** Runs `fn` and returns [its result, the wasm memories of the instances it made]. */
export async function track(fn) {
  if (collector) throw new Error('wasm_memory.track: nested tracking');
  collector = new Set();
  try {
    const result = await fn();
    return [result, collector];
  } finally {
    collector = null;
  }
}

/** Bytes spanned now by a set of memories (each buffer's current length). */
export function bytesOf(memories) {
  let total = 0;
  for (const m of memories) total += m.buffer.byteLength;
  return total;
}
