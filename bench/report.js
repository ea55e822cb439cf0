// BENCHMARKS.md (and the plot next to it) from one run's results.
import fs from 'node:fs';
import path from 'node:path';
import { SHAPES, byId, flops } from './shapes.js';
import { PEER_IDS, ONE_THREAD_REFERENCE, MHA_RELAXED, MHA_SIMD128 } from './peers/index.js';
import { evaluateTargets, fastestOrt, fmt, indexCells, peakFor, ORT_IDS } from './targets.js';
import { plotSvg } from './plot.js';
import { modelSections } from './report_models.js';
import { PROFILES } from './profiles.js';
import { NATIVE_VARIANTS } from './native.js';

const MIB = 2 ** 20;
const gf = (shape, ms) => flops(shape) / (ms * 1e6);
const x = (v) => `${v.toFixed(2)}×`;
// A markdown table; `align` has one letter per column, l or r (default: first left, rest right).
const table = (head, rows, align = null) => [`| ${head.join(' | ')} |`,
  `|${head.map((_, i) => ((align ? align[i] : i === 0 ? 'l' : 'r') === 'r' ? '---:' : '---')).join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

export function writeReport(results, { mdPath, svgPath }) {
  // A measuring process that failed left only its shape ids: named in the
  // report, kept out of its tables.
  const failed = results.runs.filter((p) => p.failed);
  results = { ...results, runs: results.runs.filter((p) => !p.failed), failedGroups: failed.map((p) => `${p.threads} thread${p.threads > 1 ? 's' : ''}: ${p.shapes.join(' + ')}`) };
  fs.mkdirSync(path.dirname(svgPath), { recursive: true });
  fs.writeFileSync(svgPath, plotSvg(results));
  const relSvg = path.relative(path.dirname(mdPath), svgPath).split(path.sep).join('/');
  fs.writeFileSync(mdPath, markdown(results, relSvg));
}

// Which mha-wasm builds ran at each thread count, as capabilities() said.
function mhaBuilds(r) {
  const seen = new Map();
  for (const p of r.runs) {
    if (seen.has(p.threads)) continue;
    const builds = [MHA_RELAXED, MHA_SIMD128].map((id) => {
      const b = p.libraries?.[id]?.build;
      return b ? `${id === MHA_RELAXED ? `init({ simd: '${b.simd ?? 'auto'}' })` : `init({ simd: '${b.simd ?? 'strict'}' })`} → '${b.build}'` +
        ` with ${b.threads} thread${b.threads > 1 ? 's' : ''} in use` : null;
    }).filter(Boolean);
    if (builds.length) seen.set(p.threads, `${p.threads}-thread rows: ${builds.join(', ')}`);
  }
  return [...seen.values()].join('; ');
}

// Results from before the native variants were measured hold the SSE2 build only.
const nativeLabel = (variant = 'baseline') => {
  const v = NATIVE_VARIANTS.find((x) => x.id === variant);
  return v ? `${v.label} (\`MHA_NATIVE_SIMD=${v.id}\`)` : variant;
};

// The native core in each instruction set, and what fused multiply-add changes.
function nativeVariants(r, cellAt, shapes, threadsMeasured) {
  const variants = r.native.ok ? r.native.variants : null;
  if (!variants) return [];
  const present = NATIVE_VARIANTS.filter((v) => variants[v.id]);
  const ms = (v, t, id) => variants[v]?.[t]?.[id]?.medianMs;
  const L = ['## Native instruction sets', ''];
  L.push('The same C++ core natively, built three ways (CMake\'s `MHA_NATIVE_SIMD`), all with the 4-wide kernels WebAssembly runs:' +
    ' SSE2 (xsimd\'s default target: two-operand instructions, so every product needs a register copy), AVX\'s three-operand encoding' +
    ' (the instructions V8 emits for f32x4, hence the fair WebAssembly-to-native gap), and AVX with fused multiply-add (what relaxed SIMD' +
    ' would give WebAssembly). The variants take turns, one repetition each per round; medians.');
  L.push('');
  const pk = r.native.peak;
  if (pk)
    L.push(`Native register-only f32x4 peak (\`bench/native/peak_fma.cpp\`, 12 independent chains, 8 FLOP a step, best of three): multiply + add ${pk.mulAdd.toFixed(1)} GFLOP/s,` +
      ` FMA ${pk.fma.toFixed(1)} GFLOP/s (the WebAssembly peaks above: mul + add ${r.peak[1]?.gflops.toFixed(1) ?? '?'}, relaxed_madd ${r.peakRelaxed?.[1]?.gflops.toFixed(1) ?? '?'}). Where the two are equal, as on AMD's Zen (two FMA pipes against two multiply and two add pipes),` +
      ' FMA does not raise the peak the "% of peak" figures divide by; it removes instructions.', '');
  for (const t of threadsMeasured) {
    const rows = shapes.filter((s) => present.some((v) => ms(v.id, t, s.id) != null)).map((s) => {
      const avx = ms('avx', t, s.id), fma = ms('avx-fma', t, s.id);
      // Each WebAssembly build against the native build of its instruction
      // mix: SIMD128 against AVX's encoding, relaxed (fused) against AVX + FMA.
      const strict = cellAt(t, s.id, MHA_SIMD128);
      const relaxed = cellAt(t, s.id, MHA_RELAXED);
      const over = (c, n) => (c?.status === 'ok' && n != null ? x(c.medianMs / n) : 'n/a');
      return [s.label, ...present.map((v) => fmt(ms(v.id, t, s.id))),
        avx != null && fma != null ? x(avx / fma) : 'n/a',
        over(strict ?? (relaxed?.build?.startsWith('relaxed') ? null : relaxed), avx),
        over(relaxed?.build?.startsWith('relaxed') ? relaxed : null, fma)];
    });
    if (!rows.length) continue;
    L.push(`${t} thread${t > 1 ? 's' : ''}:`, '');
    L.push(table(['shape', ...present.map((v) => v.label), 'FMA speed-up (AVX ÷ AVX + FMA)', 'mha-wasm SIMD128 ÷ AVX encoding', 'mha-wasm relaxed ÷ AVX + FMA'], rows));
    L.push('');
  }
  return L;
}

function markdown(r, svgRef) {
  const cellAt = indexCells(r.runs);
  const m = r.machine;
  const threadsMeasured = [...new Set(r.runs.map((p) => p.threads))].sort();
  const shapesRun = SHAPES.filter((s) => r.runs.some((p) => (p.shapes ?? []).some((x) => x.id === s.id)));
  const names = {};
  for (const p of r.runs) for (const s of p.shapes ?? []) for (const c of s.cells) names[c.id] = c.name;
  const peers = PEER_IDS.filter((id) => names[id]);
  const notes = new Map();  // n/a reason -> footnote number
  const noteFor = (reason) => { if (!notes.has(reason)) notes.set(reason, notes.size + 1); return `n/a<sup>${notes.get(reason)}</sup>`; };
  const peaks = { peak: r.peak, peakRelaxed: r.peakRelaxed };
  const peakOf = (t) => r.peak[t]?.gflops;
  const nat = (t, id) => (r.native.ok ? r.native.results[t]?.[id] : undefined);
  const hasNative = (t) => r.native.ok && Object.keys(r.native.results[t] ?? {}).length > 0;

  const cellText = (t, shape, id) => {
    const c = cellAt(t, shape.id, id);
    if (!c) return '–';
    if (c.status !== 'ok') return c.status === 'n/a' ? noteFor(c.reason) : `**${c.status}**<sup>${noteFor(c.reason).match(/\d+/)[0]}</sup>`;
    const g = gf(shape, c.medianMs);
    const pk = peakFor(peaks, t, c);  // the peak of the instruction mix the cell's code runs
    return `${fmt(c.medianMs)}<br>${g.toFixed(g < 10 ? 2 : 1)} GF/s` + (pk ? ` · ${(100 * g / pk.gflops).toFixed(0)}%` : '');
  };

  const L = [];
  L.push('# Benchmarks');
  L.push('');
  L.push(`Generated by \`${r.command}\` (what \`npm run bench\` runs after set-up and build; ${r.profile} profile) on ${r.generated.slice(0, 10)} in ${Math.round(r.durationS / 60)} min.` +
    ' Other work was running on this shared machine at the same time and the kernels are being optimised, so the numbers move between runs;' +
    ' every comparison below is within one run, with the peers interleaved.');
  if (!r.complete) L.push('', `> **Partial run** (\`${r.command}\`): not every shape, peer or thread count was measured.`);
  if (r.failedGroups?.length) L.push('', `> **Failed measuring processes** (no numbers; see the run's log): ${r.failedGroups.join('; ')}.`);
  L.push('');
  L.push('## Machine and versions');
  L.push('');
  const cpu = m.cpu;
  L.push(table(['', ''], [
    ['CPU', `${cpu.model}${cpu.family ? ` (family ${cpu.family}, model ${cpu.modelNumber})` : ''}${cpu.hypervisor ? ', virtual machine' : ''}; SIMD flags: ${(cpu.simd ?? []).join(', ')}`],
    ['cores', `${m.logicalCpus} logical CPUs${cpu.coresPerSocket ? ` (${cpu.coresPerSocket} cores, ${cpu.siblings} siblings per socket)` : ''}, ${m.memoryGiB} GiB RAM`],
    ['OS', m.os],
    ['Node', `${m.node} (V8 ${m.v8})`],
    ['mha-wasm', `${m.versions['mha-wasm']} (dist/ as of ${r.dist?.builtAt?.slice(0, 16).replace('T', ' ') ?? '?'} UTC, content hash ${r.dist?.hash ?? '?'}; Emscripten ${(m.versions.emscripten ?? '').match(/\d+\.\d+\.\d+/)?.[0] ?? '?'}); ${mhaBuilds(r) || 'build unknown'}`],
    ['onnxruntime-web', `${m.versions['onnxruntime-web']} (WebAssembly backend, SIMD128; \`env.wasm.numThreads\` per row; no relaxed-SIMD binary in the package, see "What limits it")`],
    ['TensorFlow.js', `@tensorflow/tfjs-core ${m.versions['@tensorflow/tfjs-core']} + @tensorflow/tfjs-backend-wasm ${m.versions['@tensorflow/tfjs-backend-wasm']} (SIMD build)`],
    ['native', r.native.ok ? `g++ ${(m.versions['g++'] ?? '').match(/\d+\.\d+\.\d+/)?.[0] ?? '?'}, Release (-O3), 4-wide kernels like wasm's f32x4; ${nativeLabel(r.native.variant)} in the "native C++" columns${r.native.variants ? ' (all three under "Native instruction sets")' : ''}; Google Benchmark (Debian's libbenchmark-dev)` : `not measured: ${r.native.reason}`],
    ['load average', `${m.loadavg[0].toFixed(2)} at the start, ${m.loadavgEnd?.[0]?.toFixed(2) ?? '?'} at the end (1-minute; with ${m.logicalCpus} vCPUs, more than the bench's own threads means other work was competing for the cores)`],
  ], 'll'));
  L.push('');
  L.push('## Reproduce');
  L.push('');
  L.push('```');
  L.push('npm run bench                     # setup --bench, build, then node bench/run.js (~13 min)');
  L.push('node bench/run.js --quick         # fewer shapes and runs; report goes to build/bench/');
  L.push('node bench/run.js --shapes L512,decode --peers mha-wasm,mha-wasm-simd128,ort-basic --threads 1');
  L.push('```');
  L.push('');
  L.push('Raw numbers (every sample, output differences, heaps): `build/bench/results.json`.');
  L.push('');

  L.push('## Peak');
  L.push('');
  L.push('The bench measures its own ceiling: a hand-written WebAssembly module (`bench/peak.js`) with 12 independent f32x4');
  L.push('accumulators doing `acc = acc * m + a` in registers (8 FLOP per step), run before and after the peers; the better');
  L.push('of the two is used. For 2 threads it runs in two worker threads at once. One peak per instruction mix: SIMD128\'s');
  L.push('`f32x4.mul` then `f32x4.add` (what mha-wasm\'s SIMD128 build, onnxruntime-web and tfjs-wasm run), and relaxed SIMD\'s');
  L.push('`f32x4.relaxed_madd` (what mha-wasm\'s relaxed build runs; V8 makes it one fused `vfmadd` on a CPU with FMA).');
  L.push('');
  const peakRows = [];
  for (const [mix, set] of [['mul + add', r.peak], ['relaxed_madd', r.peakRelaxed]])
    for (const [t, p] of Object.entries(set ?? {})) peakRows.push([t, mix, p.gflops.toFixed(1), p.before.toFixed(1), p.after.toFixed(1)]);
  if (!r.peakRelaxed) peakRows.push(['', 'relaxed_madd', 'not measured', '', '']);
  else if (!Object.keys(r.peakRelaxed).length) peakRows.push(['', 'relaxed_madd', 'n/a: no relaxed SIMD in this engine', '', '']);
  L.push(table(['threads', 'instruction mix', 'peak GFLOP/s (used)', 'before', 'after'], peakRows));
  L.push('');
  L.push('The issue quotes about 52 GFLOP/s for this machine kind; this machine measures what is above. "% of peak" below is against these measured numbers:' +
    ' the relaxed_madd peak for mha-wasm\'s relaxed build, the mul + add peak for every other cell.');
  L.push('');

  const busy = r.runs.filter((p) => p.threads > 1 && (p.contention?.others ?? 0) > 0.15);
  const twoThreadRuns = r.runs.filter((p) => p.threads > 1).length;
  if (busy.length)
    L.push(`> **Caution on the 2-thread rows**: in ${busy.length} of the ${twoThreadRuns} 2-thread measurements other work used more than 15% of the machine's` +
      ' CPU time (column "others" under "Runs per cell"). A 2-thread run then waits for a descheduled thread at every synchronisation point,' +
      ' so those numbers understate what two free cores give.', '');
  L.push('## Targets');
  L.push('');
  const targets = evaluateTargets(r.runs, r.peak, r.peakRelaxed, r.bandwidth);
  const mark = { met: '✅ met', missed: '❌ missed', 'not measured': '– not measured' };
  L.push(table(['target', 'measured', 'status', 'by how much'], targets.map((t) => [t.target, t.measured, mark[t.status], t.by]), 'llll'));
  L.push('');
  const met = targets.filter((t) => t.status === 'met').length;
  L.push(`${met} of ${targets.length} met.`);
  L.push('');
  // The hand-written analysis of what limits the missed targets.
  const limits = new URL('./limits.md', import.meta.url);
  if (fs.existsSync(limits)) L.push(fs.readFileSync(limits, 'utf8').trimEnd(), '');

  for (const t of threadsMeasured) {
    const shapes = shapesRun.filter((s) => !s.peers && r.runs.some((p) => p.threads === t && (p.shapes ?? []).some((x) => x.id === s.id)));
    if (!shapes.length) continue;
    L.push(`## ${t} thread${t > 1 ? 's' : ''}`);
    L.push('');
    const relaxedPeak = r.peakRelaxed?.[t]?.gflops;
    L.push(`Median time per forward pass; GFLOP/s with the FLOP count of the shape; % of the ${t}-thread peak of the cell's instruction mix` +
      ` (mul + add ${peakOf(t)?.toFixed(1)} GFLOP/s${relaxedPeak ? `; relaxed_madd ${relaxedPeak.toFixed(1)} GFLOP/s, for mha-wasm's relaxed build` : ''}).`);
    L.push('');
    const head = ['shape (B, L, E, H)', 'GFLOP', ...peers.map((id) => names[id])];
    if (hasNative(t)) head.push('native C++');
    L.push(table(head, shapes.map((s) => {
      const row = [s.label, (flops(s) / 1e9).toPrecision(3), ...peers.map((id) => cellText(t, s, id))];
      if (hasNative(t)) {
        const n = nat(t, s.id);
        row.push(n ? `${fmt(n.medianMs)}<br>${gf(s, n.medianMs).toFixed(1)} GF/s` : '–');
      }
      return row;
    })));
    L.push('');
    // Ratios: how many times faster mha-wasm (its default build: relaxed SIMD
    // where the engine has it) is than each peer (peer time / mha-wasm time);
    // the SIMD128 build's column is the relaxed build's speed-up over it.
    const others = peers.filter((id) => id !== MHA_RELAXED);
    const anyMha = shapes.some((s) => cellAt(t, s.id, MHA_RELAXED)?.status === 'ok');
    const withStrict = peers.includes(MHA_SIMD128);
    if (anyMha) {
      L.push(`${names[MHA_RELAXED] ?? 'mha-wasm'}'s speed-up over each peer (peer time ÷ its time; above 1 = it is faster)` +
        `${withStrict ? `; also the SIMD128 build's over the fastest onnxruntime-web graph` : ''}` +
        `${hasNative(t) ? ', and the WebAssembly-to-native gap (mha-wasm time ÷ native time)' : ''}:`);
      L.push('');
      const rhead = ['shape', 'fastest ORT', ...(withStrict ? ['fastest ORT, SIMD128 build'] : []), ...others.map((id) => names[id])];
      if (hasNative(t)) rhead.push('wasm ÷ native');
      L.push(table(rhead, shapes.map((s) => {
        const mha = cellAt(t, s.id, MHA_RELAXED);
        const mms = mha?.status === 'ok' ? mha.medianMs : null;
        const best = fastestOrt(cellAt, t, s.id);
        const ratio = (ms) => (mms == null || ms == null ? 'n/a' : x(ms / mms));
        const strict = cellAt(t, s.id, MHA_SIMD128);
        const strictVsOrt = strict?.status === 'ok' && best ? x(best.ms / strict.medianMs) : 'n/a';
        const row = [s.label, best && mms != null ? `${ratio(best.ms)} (${names[best.id]})` : 'n/a', ...(withStrict ? [strictVsOrt] : []),
          ...others.map((id) => { const c = cellAt(t, s.id, id); return ratio(c?.status === 'ok' ? c.medianMs : null); })];
        if (hasNative(t)) { const n = nat(t, s.id); row.push(mms != null && n ? x(mms / n.medianMs) : 'n/a'); }
        return row;
      })));
      L.push('');
    } else {
      L.push(`mha-wasm has no ${t}-thread numbers yet (${cellAt(t, shapes[0].id, 'mha-wasm')?.reason ?? 'not run'}), so there are no ratios in this row.`);
      L.push('');
    }
    if (t > 1) {
      L.push(`Thread scaling of each peer (1-thread time ÷ ${t}-thread time), the 1-thread time from the 1-thread row's process;` +
        ` for mha-wasm also from its 1-thread reference measured in this row's process, interleaved with the ${t}-thread calls` +
        ' (the figure the scaling targets use):');
      L.push('');
      const ratioOf = (a, b) => (a?.status === 'ok' && b?.status === 'ok' ? x(a.medianMs / b.medianMs) : 'n/a');
      const scalers = peers.filter((id) => shapes.some((s) => cellAt(t, s.id, id)?.status === 'ok'));
      const hasReference = shapes.some((s) => cellAt(t, s.id, ONE_THREAD_REFERENCE)?.status === 'ok');
      const head = ['shape', ...(hasReference ? ['mha-wasm, same process'] : []), ...scalers.map((id) => names[id]), ...(hasNative(t) ? ['native C++'] : [])];
      L.push(table(head, shapes.map((s) => [s.label,
        ...(hasReference ? [ratioOf(cellAt(t, s.id, ONE_THREAD_REFERENCE), cellAt(t, s.id, 'mha-wasm'))] : []),
        ...scalers.map((id) => ratioOf(cellAt(1, s.id, id), cellAt(t, s.id, id))),
        ...(hasNative(t) ? [nat(1, s.id) && nat(t, s.id) ? x(nat(1, s.id).medianMs / nat(t, s.id).medianMs) : 'n/a'] : [])])));
      L.push('');
    }
  }

  L.push(...modelSections(r, cellAt, names));
  L.push(...nativeVariants(r, cellAt, shapesRun.filter((s) => !s.peers && !s.model), threadsMeasured));

  // Causal, overhead, L = 16384.
  const causal = [cellAt(1, 'L512', 'mha-wasm'), cellAt(1, 'L512causal', 'mha-wasm')];
  L.push('## Causal, per-call overhead, long sequences');
  L.push('');
  if (causal.every((c) => c?.status === 'ok')) {
    L.push(`- **Causal speed-up** (L = 512, 1 thread; non-causal time ÷ causal time, measured interleaved in one process): mha-wasm ${x(causal[0].medianMs / causal[1].medianMs)}` +
      peers.filter((id) => id !== 'mha-wasm').map((id) => {
        const a = cellAt(1, 'L512', id), b = cellAt(1, 'L512causal', id);
        return a?.status === 'ok' && b?.status === 'ok' ? `, ${names[id]} ${x(a.medianMs / b.medianMs)}` : '';
      }).join('') + '.');
  }
  const teach = cellAt(1, 'teaching', 'mha-wasm');
  if (teach?.status === 'ok') {
    L.push(`- **Per-call overhead** (teaching shape (3, 4, 16, 8), ${flops(byId('teaching'))} FLOP, so the time is nearly all overhead; median of ${teach.runs} calls): mha-wasm ${(teach.medianMs * 1000).toFixed(1)} µs` +
      peers.filter((id) => id !== 'mha-wasm').map((id) => { const c = cellAt(1, 'teaching', id); return c?.status === 'ok' ? `, ${names[id]} ${(c.medianMs * 1000).toFixed(1)} µs` : ''; }).join('') +
      (nat(1, 'teaching') ? `, native C++ ${(nat(1, 'teaching').medianMs * 1000).toFixed(1)} µs` : '') + '.');
  }
  const big = cellAt(1, 'L16384', 'mha-wasm');
  if (big) {
    const s = byId('L16384');
    L.push(big.status === 'ok'
      ? `- **L = 16384** (B = 1, E = 512, H = 8, weights not requested, mha-wasm only): runs; ${big.runs} call${big.runs > 1 ? 's' : ''}, median ${fmt(big.medianMs)} (${gf(s, big.medianMs).toFixed(1)} GFLOP/s, ${(flops(s) / 1e9).toFixed(0)} GFLOP);` +
        ` peak wasm heap ${(big.heapBytes / MIB).toFixed(0)} MiB (${big.heapBytes} bytes; ${(big.heapBeforeBytes / MIB).toFixed(0)} MiB before the call); output finite.` +
        ' Warmed up on L = 512 first; its output cannot be checked against a peer here (none runs it), only for shape and finiteness.'
      : `- **L = 16384**: ${big.status}: ${big.reason}`);
  }
  L.push('');

  // Heaps.
  L.push('## Peak wasm heap');
  L.push('');
  L.push('Size of each library\'s WebAssembly memory after the shape ran (memories only grow, and each shape group runs in a fresh process,');
  L.push('so this is the peak for that shape). mha-wasm reports it through `memoryStats().heapBytes`; for the others `bench/wasm_memory.js` finds their');
  L.push('memories. The three onnxruntime-web graphs share one module, so their column is one heap holding all three sessions.');
  L.push('');
  const ortId = ORT_IDS.find((id) => names[id]);
  const heapPeers = [MHA_RELAXED, MHA_SIMD128, ortId, 'tfjs'].filter((id) => id && names[id]);
  const heapName = (id) => (ORT_IDS.includes(id) ? 'onnxruntime-web (all its sessions)' : names[id]);
  for (const t of threadsMeasured) {
    const rows = [];
    for (const p of r.runs.filter((q) => q.threads === t))
      for (const s of p.shapes ?? []) {
        const vals = heapPeers.map((id) => {
          const bytes = p.libraries?.[id]?.heapBytes;
          return bytes != null ? `${(bytes / MIB).toFixed(0)} MiB` : '–';
        });
        const shared = p.shapes.length > 1 ? ` (one process with ${p.shapes.filter((o) => o.id !== s.id).map((o) => o.id).join(', ')})` : '';
        rows.push([s.label + shared, ...vals]);
      }
    L.push(`${t} thread${t > 1 ? 's' : ''}:`);
    L.push('');
    L.push(table(['shape', ...heapPeers.map(heapName)], rows));
    L.push('');
  }

  L.push('## Time against L');
  L.push('');
  L.push(`![median time against L, log-log](${svgRef})`);
  L.push('');

  L.push('## How it is measured');
  L.push('');
  L.push('- **Same layer, same numbers.** Every peer gets the same weights (seeded, PyTorch `state_dict` layout, non-zero biases) and the same inputs;');
  L.push('  before timing, each peer\'s output is compared with mha-wasm\'s and must agree within 1e-3 (largest absolute difference, per cell, in');
  L.push('  `results.json`; a peer that disagrees is reported and not timed). Each call includes copying the input in and the output back to a JS array.');
  L.push('- **FLOPs**: self-attention 8·B·L·E² + 4·B·L²·E; cross-attention (the decoding step) 4·B·Lq·E² + 4·B·Lk·E² + 4·B·Lq·Lk·E;');
  L.push('  the causal shape is credited with the full non-causal count, so its GFLOP/s is an effective rate.');
  const pr = PROFILES[r.profile];
  L.push(`- **Interleaved**: one process per (thread count, shape group); in it, every cell (shape × peer) is warmed up (≥ ${pr.warmCalls} call and ≥ ${pr.warmMs} ms),` +
    ' then timed round-robin, one call per cell per round, each round starting one cell later.' +
    ` A cell stops after ${pr.budgetMs / 1000} s of timed calls or ${pr.maxReps} runs, with at least ${pr.minReps} (${pr.slow.minReps} when a call takes over ${pr.slow.callMs / 1000} s;` +
    ` the teaching shape: ${pr.tiny.minReps}–${pr.tiny.maxReps} runs; a decoding step: up to ${pr.step.maxReps}). Medians are reported. L = 512 and its causal twin share a process.`);
  L.push('- **mha-wasm, two builds**: two instances of the library in each process, each with its own copy of `dist/` (the loaded build is module state):');
  L.push('  *' + (names[MHA_RELAXED] ?? 'mha-wasm relaxed') + '* is `init({ simd: \'auto\' })`, the package\'s default, which picks the relaxed-SIMD build (`f32x4.relaxed_madd` in the GEMM micro-kernel,');
  L.push('  the softmax polynomial and axpy) where the engine has relaxed SIMD; its output is the reference. *mha-wasm SIMD128* is `init({ simd: \'strict\' })`. Both are cells like any peer, interleaved with the others.');
  L.push('- **Threads**: each library initialises with the row\'s thread count (onnxruntime-web `env.wasm.numThreads`; tfjs-wasm `setThreadsCount`).');
  L.push('  mha-wasm is loaded with `init({ threads })` for the row and its cells count only if `capabilities().threads` reports that many in use (n/a otherwise).');
  L.push('  The 2-thread rows also time one more instance of mha-wasm\'s default build loaded with `init({ threads: 1 })` (the single-threaded build, as in the 1-thread rows),');
  L.push('  interleaved with the other cells under the same pause and untimed call: the scaling targets divide its median by the 2-thread median, two samples of the same minutes.');
  L.push('- **onnxruntime-web graphs** (`bench/make_onnx.py`, Debian\'s python3-onnx; weights passed as external data at session creation):');
  L.push('  *ORT Attention* = `com.microsoft.Attention` (packed QKV projection + attention; self-attention only, `unidirectional` for causal) + output MatMul/Add;');
  L.push('  *ORT MHA* = three projection MatMuls + `com.microsoft.MultiHeadAttention` (bias input, `unidirectional` for causal) + output MatMul/Add;');
  L.push('  *ORT basic* = MatMul/Add/Reshape/Transpose/Softmax (a Trilu-built additive mask for causal). Graph optimisation level "all".');
  L.push('- **tfjs-wasm** runs 2-D MatMuls per (batch, head): its batched and transposed MatMuls skip XNNPACK and were ~1 GFLOP/s when tried.');
  L.push('- **plain JS** (`bench/plain_js.js`): straightforward loops on Float32Arrays, skipping the blocked keys of the causal mask.');
  L.push('- **native** (`bench/native/bench_mha.cpp`): the same core through `src/mha.hpp` (`mha::set_num_threads` for the row), Google Benchmark, median of repetitions,');
  L.push('  its three instruction sets taking turns; it runs after the WebAssembly peers, so it is not interleaved with them. The native columns have no % of peak: the peak is a WebAssembly one.');
  if (r.native.ok && r.native.context?.libraryBuildType === 'debug')
    L.push('  (Google Benchmark prints "Library was built as DEBUG": that is Debian\'s build of the benchmark library itself, not of the code under test.)');
  L.push('');
  if (notes.size) {
    L.push('### n/a');
    L.push('');
    for (const [reason, n] of notes) L.push(`${n}. ${reason}`);
    L.push('');
  }
  L.push('### Runs per cell');
  L.push('');
  L.push('<details><summary>timed runs, robust spread (median absolute deviation ÷ median) and largest |difference| from mha-wasm\'s output</summary>');
  L.push('');
  const rows = [];
  for (const p of r.runs) for (const s of p.shapes ?? []) for (const c of s.cells) {
    if (c.status !== 'ok' && c.status !== 'mismatch') continue;
    rows.push([`${p.threads}`, s.id, c.name, String(c.runs), c.spread != null ? `${(100 * c.spread).toFixed(1)}%` : '–',
      c.maxDiff != null ? c.maxDiff.toExponential(1) : (c.finite ? 'finite' : '–'),
      (p.contention ? `${(100 * p.contention.others).toFixed(0)}%` : '?') +
        (p.repeated ? ` (first ${(100 * Math.max(p.repeated.othersFirst, p.repeated.othersSecond)).toFixed(0)}%)` : '')]);
  }
  L.push('"others": share of all CPUs\' time that other work (other processes, and the hypervisor\'s "steal") used while that process measured.' +
    ' A process where it exceeded the idle cores\' share by 10 points was measured again after a pause (at most 4 times per run) and the less disturbed' +
    ' of the two kept; "first" gives the discarded one\'s figure.');
  L.push('');
  L.push(table(['threads', 'shape', 'peer', 'runs', 'spread', 'max |Δ|', 'others'], rows));
  L.push('');
  L.push('</details>');
  L.push('');
  return L.join('\n');
}

// `node bench/report.js [results.json]`: re-render the report of an earlier run
// (into build/bench/, like any run that is not a full one) without measuring again.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const file = process.argv[2] ?? path.join('build', 'bench', 'results.json');
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  const dir = path.join('build', 'bench');
  writeReport(results, { mdPath: path.join(dir, 'BENCHMARKS.md'), svgPath: path.join(dir, 'plot.svg') });
  console.log(`wrote ${path.join(dir, 'BENCHMARKS.md')} and ${path.join(dir, 'plot.svg')} from ${file}`);
}
