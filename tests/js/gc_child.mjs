// Run by lifetime.test.js with --expose-gc: creates layers, drops them without
// dispose(), collects, and reports how many native layers are still alive.
import { MultiheadAttention, memoryStats } from '../../dist/index.js';

async function createAndDrop(n) {
  for (let i = 0; i < n; i++) {
    const m = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: i });
    m.forward({ data: new Float32Array(16), dims: [2, 8] });
  }
}

await createAndDrop(20);
const liveAfterCreate = (await memoryStats()).liveLayers;
let liveAfterGc = liveAfterCreate;
// Finalizers run after a collection, on a later turn of the event loop.
for (let attempt = 0; attempt < 50 && liveAfterGc > 0; attempt++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 20));
  liveAfterGc = (await memoryStats()).liveLayers;
}
process.stdout.write(JSON.stringify({ created: 20, liveAfterCreate, liveAfterGc }));
