// The native columns: the same C++ core built natively (Release) and timed by
// Google Benchmark (bench/native/bench_mha.cpp) on the same shapes at 1 and 2
// threads, in three instruction sets (CMake's MHA_NATIVE_SIMD), all with the
// 4-wide kernels WebAssembly runs:
//   baseline  xsimd's default x86-64 target, SSE2: two-operand instructions
//   avx       AVX's three-operand encoding, which V8 emits for f32x4: the
//             fair WebAssembly-to-native gap (the report's main native column)
//   avx-fma   and fused multiply-add, as relaxed SIMD would give WebAssembly
// The avx-fma build also has peak_fma.cpp: the native register-only f32x4
// peak as multiply + add and as FMA.
// Each has its own build directory, rebuilt incrementally, with the native
// tests: a variant is timed only after they pass in it, since each compiles
// the kernels differently (FMA rounds once where multiply + add rounds twice).
// The variants take turns, one repetition each per round, so that the
// machine's drift spreads over all three.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { median } from './stats.js';

export const NATIVE_VARIANTS = [
  { id: 'baseline', label: 'SSE2', dir: path.join('build', 'native-bench') },
  { id: 'avx', label: 'AVX encoding', dir: path.join('build', 'native-bench-avx') },
  { id: 'avx-fma', label: 'AVX + FMA', dir: path.join('build', 'native-bench-avx-fma'), peak: 'peak_fma' },
];
/** The variant of the report's main native column. */
export const MAIN_NATIVE_VARIANT = 'avx';

function sh(cmd, args, root) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${`${r.stdout}\n${r.stderr}`.slice(-2000)}`);
  return r.stdout;
}

function build(root, { id, dir }) {
  // Configured every time (a second or so): an old directory gets today's options.
  console.log(`[bench] building the native benchmark and tests (${id}) in ${dir}`);
  sh('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DMHA_BUILD_TESTS=ON', '-DMHA_BUILD_BENCHMARKS=ON',
    `-DMHA_NATIVE_SIMD=${id}`], root);
  sh('cmake', ['--build', dir, '-j2'], root);
  try {
    sh('ctest', ['--test-dir', dir, '--output-on-failure', '-j2'], root);
  } catch (e) {
    throw new Error(`the native tests fail in the ${id} build, so it is not timed: ${e.message.split('\n').find((l) => /tests failed/.test(l)) ?? 'see ctest'}`);
  }
  return path.join(dir, 'bench', 'native', 'mha_bench');
}

/**
 * Builds and runs the native benchmark on `shapeIds` at `threadCounts`. Returns
 * { ok: true, variant, results: { [threads]: { [id]: { medianMs } } }, variants: { [variant]: results },
 *   peak: { mulAdd, fma } GFLOP/s or null, context }
 * (`results` is the main variant's) or { ok: false, reason }.
 */
export function runNative(root, shapeIds, threadCounts, { minTime, repetitions }) {
  try {
    const exes = NATIVE_VARIANTS.map((v) => build(root, v));
    console.log(`[bench] running the native benchmark (${shapeIds.join(', ')}; ${NATIVE_VARIANTS.map((v) => v.id).join(', ')} in turn)`);
    const samples = {};  // variant -> threads -> shape -> ms[]
    let context = null;
    for (let rep = 0; rep < repetitions; rep++)
      NATIVE_VARIANTS.forEach((v, i) => {
        // Registered names are <shape>/<threads>/real_time.
        const json = JSON.parse(sh(exes[i], [
          `--benchmark_filter=^(${shapeIds.join('|')})/(${threadCounts.join('|')})/`,
          `--benchmark_min_time=${minTime}`,
          '--benchmark_format=json',
        ], root));
        context ??= json.context;
        for (const b of json.benchmarks) {
          const [id, threads] = b.run_name.split('/');
          // A core without a thread pool runs 1 thread whatever was asked: not a 2-thread number.
          if (Math.round(b.threads) !== Number(threads)) continue;
          const toMs = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3 }[b.time_unit];
          ((((samples[v.id] ??= {})[threads] ??= {})[id]) ??= []).push(b.real_time * toMs);
        }
      });
    // The peak program takes turns inside itself; best of three runs, like bench/peak.js's best of two.
    const withPeak = NATIVE_VARIANTS.find((v) => v.peak);
    const peakExe = path.join(withPeak.dir, 'bench', 'native', withPeak.peak);
    let peak = null;
    if (fs.existsSync(path.join(root, peakExe)))
      for (let i = 0; i < 3; i++) {
        const p = JSON.parse(sh(peakExe, [], root));
        peak = peak ? { mulAdd: Math.max(peak.mulAdd, p.mulAdd), fma: Math.max(peak.fma, p.fma) } : p;
      }
    const variants = {};
    for (const [variant, byThreads] of Object.entries(samples))
      for (const [threads, byShape] of Object.entries(byThreads))
        for (const [id, ms] of Object.entries(byShape))
          ((variants[variant] ??= {})[threads] ??= {})[id] = { medianMs: median(ms), repetitions: ms.length };
    return {
      ok: true, variant: MAIN_NATIVE_VARIANT, results: variants[MAIN_NATIVE_VARIANT] ?? {}, variants, peak,
      context: { mhz: context.mhz_per_cpu, cpus: context.num_cpus, libraryBuildType: context.library_build_type },
    };
  } catch (e) {
    return { ok: false, reason: e.message.split('\n')[0] };
  }
}
