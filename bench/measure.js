// One bench process: every requested peer at one thread count on one group of
// shapes, interleaved. bench/run.js starts one of these per (thread count,
// shape group), so each peer's wasm heap peak is that group's alone and every
// library initialises with the thread count of its row.
//
//   node bench/measure.js --threads 1 --shapes L512,L512causal --peers mha-wasm,ort-basic \
//        --profile full --graphs build/bench/onnx --dist build/bench/dist --out build/bench/part.json
//
// Order of work: load every library (tracking its wasm memory), set a peer
// instance up per (shape, peer) cell, run mha-wasm once per shape for the
// reference output, warm every cell up and check its output against the
// reference (a decode step's: the step's output, after each peer ran the
// same prompt into its own cache), then timed rounds: each round runs every
// unfinished cell once, starting one cell later than the previous round, so drifts in machine load
// spread evenly over the peers. mha-wasm is two peers, its default build
// (relaxed SIMD where the engine has it) and its SIMD128 build, each its own
// library instance (bench/peers/mha_wasm.js), interleaved like the others.
// Rows of more than one thread also time mha-wasm's default build at one
// thread (one more instance) as one more cell: the thread-scaling targets
// divide by that time, measured in the same rounds as the multi-thread calls.
//
// With more than one thread, each timed call comes after a pause and an
// untimed call of the same peer. Why: thread pools differ in how long their
// idle workers spin, and on 2 vCPUs a library measured right after another
// shares a core with that one's spinning worker: onnxruntime-web's keep a
// core busy for ~60 ms after each run, and mha-wasm at L = 128, 2 threads,
// took 8 ms back to back but 16-17 ms interleaved with it (its 1-thread
// time). The pause lets such workers go to sleep; the untimed call wakes the
// measured peer's own. For a short call that leaves the workers slower than
// back-to-back calls find them, and more untimed calls would leave the
// call's own bytes in the cache instead (bench/limits.md, "Threads"): one
// it is. Every peer is measured so. The pause is busy (the main thread spins): an
// idle pause let the VM's vCPUs halt, and the next calls ran slow for
// milliseconds after (a Llama-3.2-1B decode step: 1.9 ms back to back, 3.1-3.7
// ms after 150 ms idle and one untimed call). It lasts until the process's
// other threads are quiet (bench/settle.js): onnxruntime's worker stays busy
// ~20 ms after a run even with its sessions' spinning off (peers/ort.js).
import './wasm_memory.js';  // first: wraps WebAssembly before any library loads
import fs from 'node:fs';
import os from 'node:os';
import { track, bytesOf } from './wasm_memory.js';
import { createPeers, ONE_THREAD_REFERENCE } from './peers/index.js';
import { byId, flops } from './shapes.js';
import { makeInputs, makeWeights } from './weights.js';
import { makeModelInputs, makeModelWeights } from './models.js';
import { PROFILES, isTiny, isStep } from './profiles.js';
import { maxAbsDiff, median, relativeSpread } from './stats.js';
import { startContention } from './contention.js';
import { settle } from './settle.js';
import { createMemoryProbe, MEMORY_READ } from './memory_probe.js';

const TOLERANCE = 1e-3;
// The least pause before each multi-thread measurement; settle() then waits
// for the process's other threads to go quiet.
const SETTLE_MS = 5;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`measure.js: bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return {
    threads: Number(args.threads ?? 1),
    shapes: (args.shapes ?? 'L128').split(',').map(byId),
    peers: args.peers ? args.peers.split(',') : null,
    profile: PROFILES[args.profile ?? 'full'],
    graphs: args.graphs ?? 'build/bench/onnx',
    dist: args.dist ?? 'dist',
    out: args.out ?? null,
  };
}

const log = (msg) => process.stderr.write(`${msg}\n`);
const firstLine = (e) => String(e?.message ?? e).split('\n')[0];

// Times one call; awaits only when the peer is asynchronous, so synchronous
// peers are not charged a microtask turn.
async function timeCall(peer) {
  const t0 = performance.now();
  const pending = peer.run();
  if (pending && typeof pending.then === 'function') await pending;
  return performance.now() - t0;
}

// A call as long as `slow.callMs` is warm by itself (JIT tiers finish within
// it) and gets only `slow.minReps` timed runs: the plain JS loop at L = 2048
// takes tens of seconds a call.
async function warmUp(cell, profile) {
  const start = performance.now();
  let calls = 0;
  while (calls < profile.warmCalls || (performance.now() - start < profile.warmMs && calls < profile.maxWarmCalls)) {
    const ms = await timeCall(cell.peer);
    calls++;
    if (ms >= profile.slow.callMs) { cell.slow = true; break; }
  }
  cell.warmCalls = calls;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { threads, profile } = opts;
  const loadavgStart = os.loadavg()[0];
  const contention = startContention();
  // The 1-thread reference comes with mha-wasm.
  const wanted = (id) => opts.peers == null || opts.peers.includes(id === ONE_THREAD_REFERENCE ? 'mha-wasm' : id);
  const libraries = {};  // per peer id: version, load error, wasm memories

  // Libraries load once per process; later instances reuse them. mha-wasm
  // always loads: its output is the reference, even where it is not timed.
  async function instancesFor() {
    const peers = createPeers({ graphDir: opts.graphs, distDir: opts.dist, threads }).filter((p) => p.id === 'mha-wasm' || wanted(p.id));
    for (const peer of peers) {
      const lib = (libraries[peer.id] ??= { name: peer.name, version: peer.version, memories: new Set(), sharedHeap: peer.sharedHeap ?? null });
      try {
        const [, memories] = await track(() => peer.load(threads));
        for (const m of memories) lib.memories.add(m);
        lib.name = peer.name;  // mha-wasm's default peer is named for the build it chose
        if (peer.describe) lib.build = peer.describe();
        lib.version = peer.version;
      } catch (e) {
        lib.error = firstLine(e);
      }
    }
    return peers;
  }

  const groups = [];
  for (const shape of opts.shapes) {
    const peers = await instancesFor();
    const weights = shape.model ? makeModelWeights(shape) : makeWeights(shape.E);
    const inputs = shape.model ? makeModelInputs(shape) : makeInputs(shape);
    const group = { shape, peers, cells: [], refOutput: null };
    groups.push(group);

    const ref = peers.find((p) => p.id === 'mha-wasm');
    if (!libraries['mha-wasm'].error) {
      await ref.setup(shape, weights, 1, inputs);
      if (!shape.peers) { ref.run(); group.refOutput = new Float32Array(ref.output()); }
    }
    for (const peer of peers) {
      if (!wanted(peer.id)) continue;
      const cell = { peer, shape, id: peer.id, name: peer.name, samples: [], spent: 0 };
      group.cells.push(cell);
      const lib = libraries[peer.id];
      cell.reason = shape.peers && !shape.peers.includes(peer.id) ? `${shape.id} is measured for ${shape.peers.join(', ')} only`
        : lib.error ? `failed to load: ${lib.error}` : peer.unsupported(shape, threads);
      if (cell.reason) { cell.status = 'n/a'; continue; }
      try {
        if (peer !== ref) await peer.setup(shape, weights, threads, inputs);
        cell.status = 'ok';
      } catch (e) {
        Object.assign(cell, { status: 'error', reason: `setup failed: ${firstLine(e)}` });
        log(`  ${shape.id} ${peer.name}: ${cell.reason}`);
      }
    }
  }

  // A decode step's group also times the memory-read probe (bench/memory_probe.js)
  // in its rounds: the bandwidth its GB/s is set against, measured meanwhile.
  const decodeGroups = groups.filter((g) => isStep(g.shape));
  const probe = decodeGroups.length ? await createMemoryProbe(threads) : null;
  for (const g of decodeGroups)
    g.cells.push({ peer: probe, shape: g.shape, id: MEMORY_READ, name: 'memory read', samples: [], spent: 0, status: 'ok', probe: true });

  // Warm-up and the output check, cell by cell.
  const cells = groups.flatMap((g) => g.cells.map((c) => Object.assign(c, { group: g }))).filter((c) => c.status === 'ok');
  for (const cell of cells) {
    if (cell.shape.peers) continue;  // the big memory test: below
    if (cell.probe) { await warmUp(cell, profile); continue; }  // no output to check
    try {
      await warmUp(cell, profile);
      cell.maxDiff = maxAbsDiff(cell.peer.output(), cell.group.refOutput);
      // Reduced-precision weights' peers carry their own, looser bound.
      const tolerance = cell.peer.tolerance ? cell.peer.tolerance(cell.group.refOutput) : TOLERANCE;
      if (!(cell.maxDiff <= tolerance)) {
        Object.assign(cell, { status: 'mismatch', reason: `output differs from mha-wasm's by ${cell.maxDiff} (> ${tolerance}); not timed` });
        log(`  ${cell.shape.id} ${cell.name}: ${cell.reason}`);
      }
    } catch (e) {
      Object.assign(cell, { status: 'error', reason: `run failed: ${firstLine(e)}` });
      log(`  ${cell.shape.id} ${cell.name}: ${cell.reason}`);
    }
  }

  // Timed rounds, round-robin over every cell of the group.
  const timed = cells.filter((c) => c.status === 'ok' && !c.shape.peers);
  const needsMore = (c) => {
    const l = isTiny(c.shape) ? profile.tiny : isStep(c.shape) ? profile.step : profile;
    const minReps = c.slow ? profile.slow.minReps : l.minReps;
    return c.samples.length < minReps || (c.samples.length < l.maxReps && c.spent < l.budgetMs);
  };
  for (let round = 0; timed.some(needsMore); round++) {
    for (let i = 0; i < timed.length; i++) {
      const cell = timed[(i + round) % timed.length];
      if (!needsMore(cell)) continue;
      // With threads: a pause, so the previous peer's idle workers stop
      // spinning, then an untimed call, so this peer's are awake (see the
      // header).
      if (threads > 1 && !isTiny(cell.shape)) {  // not tiny ones: thousands of runs, too little work to split
        settle(SETTLE_MS);
        await timeCall(cell.peer);
      }
      const ms = await timeCall(cell.peer);
      cell.samples.push(cell.probe ? cell.peer.lastMs : ms);  // the probe: its threads' own time, without their wake-up
      cell.spent += ms;
    }
  }
  await probe?.dispose();

  // The big memory test (mha-wasm only, no reference possible): warm the code
  // up on a smaller length with the same E and H, then time the big one.
  for (const cell of cells.filter((c) => c.shape.peers && c.status === 'ok')) {
    const { peer, shape } = cell;
    const small = byId(profile.big.warmupShape);
    cell.heapBeforeBytes = await peer.heapBytes();
    peer.dispose();
    await peer.setup(small, makeWeights(small.E), threads, makeInputs(small));
    for (let i = 0; i < 3; i++) await timeCall(peer);
    peer.dispose();
    await peer.setup(shape, makeWeights(shape.E), threads, makeInputs(shape));
    while (cell.samples.length < 1 || (cell.samples.length < profile.big.maxCalls && cell.spent < profile.big.budgetMs)) {
      const ms = await timeCall(peer);
      cell.samples.push(ms);
      cell.spent += ms;
      log(`  ${shape.id} ${peer.name}: call ${cell.samples.length} took ${(ms / 1000).toFixed(1)} s`);
    }
    const out = peer.output();
    cell.finite = out.length === shape.B * shape.Lq * shape.E && out.every(Number.isFinite);
    if (!cell.finite) Object.assign(cell, { status: 'mismatch', reason: 'output has the wrong length, NaN or Inf' });
  }

  // The onnxruntime variants share one module: whichever loaded first saw its
  // memory being created; all of them report it.
  for (const lib of Object.values(libraries))
    if (lib.sharedHeap)
      for (const other of Object.values(libraries))
        if (other.sharedHeap === lib.sharedHeap) for (const mem of other.memories) lib.memories.add(mem);

  // Heaps: a wasm memory only grows, so its size now is this process's peak.
  const heaps = {};
  for (const [id, lib] of Object.entries(libraries)) {
    const instance = groups[0]?.peers.find((p) => p.id === id);
    const own = instance?.heapBytes && !lib.error ? await instance.heapBytes() : null;
    heaps[id] = lib.memories.size || own != null ? (own ?? bytesOf(lib.memories)) : null;
  }
  for (const g of groups) for (const p of g.peers) await p.dispose();

  const report = {
    threads,
    loadavg: [loadavgStart, os.loadavg()[0]],
    // Share of all CPUs' time used by other work / by this process while it ran.
    contention: contention(),
    libraries: Object.fromEntries(Object.entries(libraries).map(([id, l]) => [id,
      { name: l.name, version: l.version, error: l.error ?? null, build: l.build ?? null, heapBytes: heaps[id], heapShared: l.sharedHeap }])),
    shapes: groups.map(({ shape, cells: cs }) => ({
      ...shape,
      flops: flops(shape),
      cells: cs.map(({ peer, shape: s, group, samples, spent, ...c }) => ({
        ...c,
        runs: samples.length,
        medianMs: samples.length ? median(samples) : null,
        minMs: samples.length ? Math.min(...samples) : null,
        spread: samples.length > 1 ? relativeSpread(samples) : null,
        samples: samples.length <= 50 ? samples : undefined,
        ...(c.probe ? { gbps: samples.length ? probe.bytes / median(samples) / 1e6 : null } : {}),
        heapBytes: heaps[c.id] ?? null,
        heapShared: libraries[c.id]?.sharedHeap ?? null,
      })),
    })),
  };
  for (const s of report.shapes)
    for (const c of s.cells)
      log(`  [${threads} thread${threads > 1 ? 's' : ''}] ${s.id.padEnd(11)} ${c.name.padEnd(14)} ` +
        (c.status === 'ok' ? `${c.medianMs.toFixed(3).padStart(10)} ms  (${c.runs} runs)` : `${c.status}: ${c.reason}`));
  const json = JSON.stringify(report);
  if (opts.out) fs.writeFileSync(opts.out, json);
  else process.stdout.write(json + '\n');
  // onnxruntime's pthread workers would keep the process alive.
  process.exit(0);
}

main().catch((e) => {
  log(`measure.js: ${e.stack ?? e}`);
  process.exit(1);
});
