// Preloaded (node --import, through NODE_OPTIONS) into every Node process of
// the sanitized run, the test files and the children they spawn alike: loads
// the copy of the package in build/wasm-asan/dist with the one build it has,
// the single-threaded SIMD128 module under ASan + UBSan. The tests' own
// create() and init() then find it loaded; a module they retire on purpose is
// replaced by the same build (loader.js reuses these options).
import { init, capabilities } from '../../build/wasm-asan/dist/index.js';

// Emscripten's sanitizers unwind through JS stack traces, whose default depth
// (10 frames, several of them the runtime's own) cuts reports short.
Error.stackTraceLimit = 100;

await init({ threads: 1, simd: 'strict' });
if (capabilities().build !== 'simd') throw new Error(`expected the 'simd' build, got ${capabilities().build}`);
