// The targets, each judged met / missed (and by how much) from one run's
// results. Kept apart from the report's layout so the rules read in one place.
// Three sets: issue 5's (judged on 'mha-wasm', the package's default build:
// relaxed SIMD where the engine has it, as Node 24 does), the relaxed-SIMD
// issue's (the relaxed build against the SIMD128 build and onnxruntime-web),
// and issues 20 and 21's on the model layers (prefill, decode step).
// Each cell's "% of peak" divides by the peak of the instruction mix its code
// runs (bench/peak.js): relaxed_madd for mha-wasm's relaxed builds, mul + add
// for everything else.
import { SHAPES, byId, flops } from './shapes.js';
import { bytesPerStep } from './models.js';
import { ONE_THREAD_REFERENCE, MHA_RELAXED, MHA_SIMD128 } from './peers/index.js';
import { MEMORY_READ } from './memory_probe.js';

export const ORT_IDS = ['ort-attention', 'ort-mha', 'ort-gqa', 'ort-basic'];
/** The Transformer shapes (E = 512 and 768, L = 128 to 2048) of the relaxed-SIMD targets. */
export const TRANSFORMER_SHAPES = ['L128', 'L512', 'L2048', 'B4L256E768'];
const MIB = 2 ** 20;

/**
 * Looks a cell up: cellAt(threads, shapeId, peerId) -> cell with medianMs, or
 * undefined. Each cell also carries `build`: the mha-wasm build that ran it
 * (capabilities().build), null for other peers.
 */
export function indexCells(runs) {
  const map = new Map();
  for (const part of runs)
    for (const s of part.shapes ?? [])
      for (const c of s.cells) map.set(`${part.threads}|${s.id}|${c.id}`, { ...c, shape: s, build: part.libraries?.[c.id]?.build?.build ?? null });
  return (threads, shapeId, peerId) => map.get(`${threads}|${shapeId}|${peerId}`);
}

/** Whether a cell ran a relaxed-SIMD build of mha-wasm. */
export const isRelaxed = (cell) => typeof cell?.build === 'string' && cell.build.startsWith('relaxed');

/**
 * The peak a cell's rate is measured against: relaxed_madd's for a relaxed
 * build, mul + add's otherwise. `peaks` is { peak, peakRelaxed } as in
 * results.json (older files have no peakRelaxed). Returns { gflops, mix } or null.
 */
export function peakFor(peaks, threads, cell) {
  const relaxed = isRelaxed(cell);
  const p = relaxed ? peaks.peakRelaxed?.[threads] : peaks.peak?.[threads];
  return p ? { gflops: p.gflops, mix: relaxed ? 'relaxed_madd' : 'mul + add' } : null;
}

const okMs = (c) => (c && c.status === 'ok' && c.medianMs != null ? c.medianMs : null);

/** The fastest onnxruntime-web variant of a shape: { id, ms } or null. */
export function fastestOrt(cellAt, threads, shapeId) {
  let best = null;
  for (const id of ORT_IDS) {
    const ms = okMs(cellAt(threads, shapeId, id));
    if (ms != null && (best == null || ms < best.ms)) best = { id, ms };
  }
  return best;
}

const x = (v) => `${v.toFixed(2)}×`;

/**
 * Every target as { target, measured, status: 'met' | 'missed' | 'not measured', by }.
 * `peak` and `peakRelaxed` are { [threads]: { gflops } }: the f32x4 mul + add
 * and relaxed_madd peaks (bench/peak.js).
 */
export function evaluateTargets(runs, peak, peakRelaxed = {}, bandwidth = null) {
  const cellAt = indexCells(runs);
  const peaks = { peak, peakRelaxed };
  const rows = [];
  const ids = SHAPES.filter((s) => !s.peers && !s.model).map((s) => s.id);
  // The SIMD128 build's figure beside the default build's, where both ran.
  const simd128Ms = (t, id) => okMs(cellAt(t, id, MHA_SIMD128));

  // 1. Every shape, 1 thread: >= 1.5x faster than the fastest ORT variant.
  for (const id of ids) {
    const mha = okMs(cellAt(1, id, MHA_RELAXED));
    const ort = fastestOrt(cellAt, 1, id);
    const target = `${byId(id).label}, 1 thread: ≥ 1.5× faster than the fastest onnxruntime-web variant`;
    if (mha == null || ort == null) { rows.push({ target, measured: 'n/a', status: 'not measured', by: '' }); continue; }
    const ratio = ort.ms / mha;
    const strict = simd128Ms(1, id);
    rows.push({
      target,
      measured: `${x(ratio)} (${fmt(mha)} vs ${cellAt(1, id, ort.id).name} ${fmt(ort.ms)})` +
        (strict != null ? `; SIMD128 build ${x(ort.ms / strict)}` : ''),
      status: ratio >= 1.5 ? 'met' : 'missed',
      by: ratio >= 1.5 ? `${x(ratio / 1.5)} above` : `needs ${x(1.5 / ratio)} more speed`,
    });
  }

  // 2. >= 70% of the measured 1-thread peak on the E = 512 shapes with L >= 128:
  // the peak of the instruction mix the build runs.
  for (const id of ['L128', 'L512', 'L2048']) {
    const c = cellAt(1, id, MHA_RELAXED);
    const pk = peakFor(peaks, 1, c);
    const target = `${byId(id).label}, 1 thread: ≥ 70% of the measured f32x4 peak (of the build's instruction mix)`;
    if (okMs(c) == null || !pk) { rows.push({ target, measured: 'n/a', status: 'not measured', by: '' }); continue; }
    const gflops = flops(byId(id)) / (okMs(c) * 1e6);
    const pct = (100 * gflops) / pk.gflops;
    const strictCell = cellAt(1, id, MHA_SIMD128);
    const strictPeak = peakFor(peaks, 1, strictCell);
    const strict = okMs(strictCell) != null && strictPeak
      ? `; SIMD128 build ${((100 * flops(byId(id))) / (okMs(strictCell) * 1e6 * strictPeak.gflops)).toFixed(1)}% of the ${strictPeak.mix} peak` : '';
    rows.push({
      target,
      measured: `${pct.toFixed(1)}% (${gflops.toFixed(1)} of ${pk.gflops.toFixed(1)} GFLOP/s, the ${pk.mix} peak)${strict}`,
      status: pct >= 70 ? 'met' : 'missed',
      by: pct >= 70 ? `${(pct - 70).toFixed(1)} points above` : `${(70 - pct).toFixed(1)} points short`,
    });
  }

  // 3. 2 threads, L >= 512: >= 1.7x the 1-thread speed, and ahead of ORT at 2 threads.
  // The 1-thread time is the one measured in the same process, interleaved
  // with the 2-thread calls (see bench/peers/mha_wasm.js); the 1-thread row's,
  // from another process minutes away, is shown beside it.
  for (const id of ['L512', 'L2048', 'L512causal']) {
    const sameProcess = okMs(cellAt(2, id, ONE_THREAD_REFERENCE));
    const oneRow = okMs(cellAt(1, id, MHA_RELAXED));
    const one = sameProcess ?? oneRow;
    const twoCell = cellAt(2, id, MHA_RELAXED);
    const two = okMs(twoCell);
    const ort2 = fastestOrt(cellAt, 2, id);
    const target = `${byId(id).label}, 2 threads: ≥ 1.7× the 1-thread speed and faster than onnxruntime-web at 2 threads`;
    if (!twoCell) {  // a run that left this shape or thread count out
      rows.push({ target, measured: 'n/a: not run', status: 'not measured', by: '' });
      continue;
    }
    if (two == null) {
      rows.push({ target, measured: `n/a: ${twoCell.reason ?? twoCell.status}`, status: 'missed', by: 'no 2-thread mha-wasm yet' + (ort2 ? ` (ORT's best at 2 threads: ${fmt(ort2.ms)})` : '') });
      continue;
    }
    if (one == null) {
      rows.push({ target, measured: 'n/a: no 1-thread mha-wasm time', status: 'not measured', by: '' });
      continue;
    }
    const scale = one / two;
    const ahead = ort2 ? ort2.ms / two : null;
    const met = scale >= 1.7 && (ahead == null || ahead > 1);
    const how = sameProcess == null ? ' (against the 1-thread row)'
      : ` (1 thread in the same process${oneRow == null ? '' : `; ${x(oneRow / two)} against the 1-thread row`})`;
    rows.push({
      target,
      measured: `${x(scale)} over 1 thread${how}; ${ahead == null ? 'no ORT' : `${x(ahead)} vs ORT`}`,
      status: met ? 'met' : 'missed',
      by: met ? '' : [scale < 1.7 ? `scaling needs ${x(1.7 / scale)} more` : null, ahead != null && ahead <= 1 ? `needs ${x(1 / ahead)} to catch ORT` : null].filter(Boolean).join('; '),
    });
  }

  // 4. Causal L = 512 >= 1.6x faster than non-causal.
  {
    const full = okMs(cellAt(1, 'L512', MHA_RELAXED));
    const causal = okMs(cellAt(1, 'L512causal', MHA_RELAXED));
    const target = '(1, 512, 512, 8) causal, 1 thread: ≥ 1.6× faster than non-causal';
    if (full == null || causal == null) rows.push({ target, measured: 'n/a', status: 'not measured', by: '' });
    else {
      const r = full / causal;
      rows.push({ target, measured: `${x(r)} (${fmt(full)} → ${fmt(causal)})`, status: r >= 1.6 ? 'met' : 'missed',
        by: r >= 1.6 ? `${x(r / 1.6)} above` : `needs ${x(1.6 / r)} more` });
    }
  }

  // 5. L = 16384 runs with peak heap < 256 MiB.
  {
    const c = cellAt(1, 'L16384', MHA_RELAXED);
    const target = `${byId('L16384').label}, no weights: runs, peak wasm heap < 256 MiB`;
    if (!c) rows.push({ target, measured: 'n/a', status: 'not measured', by: '' });
    else if (c.status !== 'ok') rows.push({ target, measured: `${c.status}: ${c.reason}`, status: 'missed', by: 'does not run' });
    else {
      const mib = c.heapBytes / MIB;
      rows.push({ target, measured: `runs in ${fmt(okMs(c))}; heap ${mib.toFixed(0)} MiB`, status: mib < 256 ? 'met' : 'missed',
        by: mib < 256 ? `${(256 - mib).toFixed(0)} MiB to spare` : `${(mib - 256).toFixed(0)} MiB over` });
    }
  }

  // 6. Teaching-shape per-call overhead < 20 us.
  {
    const ms = okMs(cellAt(1, 'teaching', MHA_RELAXED));
    const target = 'teaching shape (3, 4, 16, 8): per-call overhead < 20 µs';
    if (ms == null) rows.push({ target, measured: 'n/a', status: 'not measured', by: '' });
    else {
      const us = ms * 1000;
      rows.push({ target, measured: `${us.toFixed(1)} µs per call (median)`, status: us < 20 ? 'met' : 'missed',
        by: us < 20 ? `${(20 - us).toFixed(1)} µs to spare` : `${(us - 20).toFixed(1)} µs over (${x(us / 20)})` });
    }
  }

  rows.push(...relaxedTargets(cellAt));
  rows.push(...modelTargets(cellAt, bandwidth));
  return rows;
}

/** GB/s a decode-step cell reads (bench/models.js bytesPerStep), or null. */
export function stepGBps(cell, dtype = 'f32') {
  const ms = okMs(cell);
  return ms == null ? null : bytesPerStep(cell.shape, dtype) / (ms * 1e6);
}

/**
 * The share of a prefill's time its modifiers (RoPE, QK-norm, softcap,
 * window, scale) take: (time with them − time without) ÷ time with them, both
 * measured interleaved in one process. null when either is missing.
 */
export function modifierShare(cellAt, threads, id) {
  const on = okMs(cellAt(threads, id, MHA_RELAXED));
  const off = okMs(cellAt(threads, `${id}-bare`, MHA_RELAXED));
  return on == null || off == null ? null : { on, off, share: (on - off) / on };
}

/**
 * The memory-read bandwidth (GB/s) a decode step's row divides by: the probe
 * timed in the same rounds (bench/memory_probe.js) when the run has it, else
 * the run's better of before and after (`bandwidth`, bench/run.js).
 */
export function stepBandwidth(cellAt, bandwidth, threads, shapeId) {
  return cellAt(threads, shapeId, MEMORY_READ)?.gbps ?? bandwidth?.[threads]?.gbps ?? null;
}

/**
 * Issue 20's and 21's targets, on the model layers: ≥ 1.5× onnxruntime-web's
 * fastest graph at 1 and 2 threads (prefill and decode step); the modifiers
 * under 10% of the prefill's time; a float32 decode step reading at ≥ 70% of
 * the measured WebAssembly memory-read bandwidth; int8 weights ≥ 1.6× and f16
 * ≥ 1.3× the float32 step. `bandwidth` is { [threads]: { gbps } } (bench/bandwidth.js).
 */
function modelTargets(cellAt, bandwidth) {
  const rows = [];
  const notMeasured = (target, why = 'n/a') => rows.push({ target, measured: why, status: 'not measured', by: '' });
  const judge = (target, ratio, goal, measured) => rows.push({
    target, measured, status: ratio >= goal ? 'met' : 'missed',
    by: ratio >= goal ? `${x(ratio / goal)} above` : `needs ${x(goal / ratio)} more`,
  });
  const threadsOf = [1, 2];
  const prefill = SHAPES.filter((s) => s.step === 'prefill' && s.modifiers !== false);
  const steps = SHAPES.filter((s) => s.step === 'decode' || s.step === 'cross');

  for (const s of [...prefill, ...steps])
    for (const t of threadsOf) {
      const mha = okMs(cellAt(t, s.id, MHA_RELAXED));
      const ort = fastestOrt(cellAt, t, s.id);
      const target = `${s.label}, ${t} thread${t > 1 ? 's' : ''}: ≥ 1.5× onnxruntime-web's fastest graph`;
      if (!cellAt(t, s.id, MHA_RELAXED)) continue;  // not in this run
      if (mha == null || ort == null) { notMeasured(target, mha == null ? `n/a: ${cellAt(t, s.id, MHA_RELAXED)?.reason ?? 'no mha-wasm time'}` : 'n/a: no onnxruntime-web time'); continue; }
      judge(target, ort.ms / mha, 1.5, `${x(ort.ms / mha)} (${fmt(mha)} vs ${cellAt(t, s.id, ort.id).name} ${fmt(ort.ms)})`);
    }

  for (const s of prefill)
    for (const t of threadsOf) {
      const m = modifierShare(cellAt, t, s.id);
      if (!cellAt(t, s.id, MHA_RELAXED)) continue;
      const target = `${s.label}, ${t} thread${t > 1 ? 's' : ''}: RoPE, QK-norm and the modifiers < 10% of the layer's time`;
      if (m == null) { notMeasured(target, 'n/a: needs both the shape and its modifiers-off twin'); continue; }
      const pct = 100 * m.share;
      rows.push({ target, measured: `${pct.toFixed(1)}% (${fmt(m.on)} with, ${fmt(m.off)} without)`, status: pct < 10 ? 'met' : 'missed',
        by: pct < 10 ? `${(10 - pct).toFixed(1)} points to spare` : `${(pct - 10).toFixed(1)} points over` });
    }

  for (const s of steps)
    for (const t of threadsOf) {
      const c = cellAt(t, s.id, MHA_RELAXED);
      if (!c) continue;
      const target = `${s.label}, ${t} thread${t > 1 ? 's' : ''}: float32 step ≥ 70% of the WebAssembly memory-read bandwidth`;
      const gbps = stepGBps(c);
      const bw = stepBandwidth(cellAt, bandwidth, t, s.id);
      if (gbps == null || !bw) { notMeasured(target, gbps == null ? `n/a: ${c.reason ?? 'no time'}` : 'n/a: bandwidth not measured'); continue; }
      const pct = (100 * gbps) / bw;
      rows.push({ target, measured: `${pct.toFixed(0)}% (${gbps.toFixed(1)} of ${bw.toFixed(1)} GB/s; ${(bytesPerStep(s) / 2 ** 20).toFixed(1)} MiB a step in ${fmt(okMs(c))})`,
        status: pct >= 70 ? 'met' : 'missed', by: pct >= 70 ? `${(pct - 70).toFixed(0)} points above` : `${(70 - pct).toFixed(0)} points short` });
    }

  for (const [dtype, id, goal] of [['int8', 'mha-wasm-int8', 1.6], ['f16', 'mha-wasm-f16', 1.3]])
    for (const s of steps)
      for (const t of threadsOf) {
        const f32 = okMs(cellAt(t, s.id, MHA_RELAXED));
        const c = cellAt(t, s.id, id);
        if (!c) continue;
        const target = `${s.label}, ${t} thread${t > 1 ? 's' : ''}: ${dtype} weights ≥ ${goal}× the float32 step`;
        if (okMs(c) == null || f32 == null) { notMeasured(target, `n/a: ${c.reason ?? c.status}`); continue; }
        judge(target, f32 / okMs(c), goal, `${x(f32 / okMs(c))} (${fmt(okMs(c))} vs ${fmt(f32)})`);
      }
  return rows;
}

/**
 * The relaxed-SIMD issue's targets, on the Transformer shapes: at 1 thread the
 * relaxed build >= 1.15x the SIMD128 build (both measured interleaved in one
 * process) and >= 1.8x onnxruntime-web's fastest graph; at 2 threads >= 1.7x
 * onnxruntime-web's fastest graph at 2 threads. Counted only where
 * 'mha-wasm' ran a relaxed build (an engine without relaxed SIMD runs 'simd').
 */
function relaxedTargets(cellAt) {
  const rows = [];
  const relaxedMs = (t, id) => {
    const c = cellAt(t, id, MHA_RELAXED);
    if (okMs(c) == null) return { ms: null, why: c ? `n/a: ${c.reason ?? c.status}` : 'n/a' };
    if (!isRelaxed(c)) return { ms: null, why: `n/a: mha-wasm ran its '${c.build}' build, not a relaxed-SIMD one` };
    return { ms: okMs(c), why: null };
  };
  const judge = (target, ms, otherMs, otherName, goal) => {
    const ratio = otherMs / ms;
    rows.push({
      target,
      measured: `${x(ratio)} (${fmt(ms)} vs ${otherName} ${fmt(otherMs)})`,
      status: ratio >= goal ? 'met' : 'missed',
      by: ratio >= goal ? `${x(ratio / goal)} above` : `needs ${x(goal / ratio)} more speed`,
    });
  };

  for (const id of TRANSFORMER_SHAPES) {
    const r = relaxedMs(1, id);
    const strict = okMs(cellAt(1, id, MHA_SIMD128));
    const target = `${byId(id).label}, 1 thread: relaxed build ≥ 1.15× the SIMD128 build`;
    if (r.ms == null || strict == null) rows.push({ target, measured: r.why ?? 'n/a: no SIMD128 time', status: 'not measured', by: '' });
    else judge(target, r.ms, strict, 'SIMD128', 1.15);
  }
  for (const [threads, goal] of [[1, 1.8], [2, 1.7]])
    for (const id of TRANSFORMER_SHAPES) {
      const r = relaxedMs(threads, id);
      const ort = fastestOrt(cellAt, threads, id);
      const target = `${byId(id).label}, ${threads} thread${threads > 1 ? 's' : ''}: relaxed build ≥ ${goal}× onnxruntime-web's fastest graph`;
      if (r.ms == null || ort == null) rows.push({ target, measured: r.why ?? 'n/a: no onnxruntime-web time', status: 'not measured', by: '' });
      else judge(target, r.ms, ort.ms, cellAt(threads, id, ort.id).name, goal);
    }
  return rows;
}

/** A duration for humans: µs below 0.1 ms, s above 10 s. */
export function fmt(ms) {
  if (ms == null) return 'n/a';
  if (ms < 0.1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 10000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
