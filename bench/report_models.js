// BENCHMARKS.md's section on the model layers (issues 20 and 21): prefill of
// real models' attention with and without its modifiers, and the decode step
// against the machine's WebAssembly memory-read bandwidth. report.js places it.
import { SHAPES } from './shapes.js';
import { MODELS, bytesPerStep } from './models.js';
import { MHA_RELAXED } from './peers/index.js';
import { fastestOrt, fmt, modifierShare, stepBandwidth, stepGBps } from './targets.js';

const x = (v) => `${v.toFixed(2)}×`;
const MIB = 2 ** 20;
// A markdown table: first column left, the rest right, or `align` (one letter per column, l or r).
const table = (head, rows, align = null) => [`| ${head.join(' | ')} |`,
  `|${head.map((_, i) => ((align ? align[i] : i === 0 ? 'l' : 'r') === 'r' ? '---:' : '---')).join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** The section's lines; [] when the run measured no model layer. */
export function modelSections(r, cellAt, names) {
  const threads = [...new Set(r.runs.map((p) => p.threads))].sort();
  const ran = (s) => threads.some((t) => cellAt(t, s.id, MHA_RELAXED));
  const prefill = SHAPES.filter((s) => s.step === 'prefill' && s.modifiers !== false && ran(s));
  const steps = SHAPES.filter((s) => (s.step === 'decode' || s.step === 'cross') && ran(s));
  if (!prefill.length && !steps.length) return [];
  const ms = (c) => (c?.status === 'ok' ? c.medianMs : null);
  const cellText = (c) => (c == null ? '–' : c.status === 'ok' ? fmt(c.medianMs) : c.status === 'n/a' ? 'n/a' : `**${c.status}**`);
  const L = ['## Model layers (issues 20 and 21)', ''];
  L.push('The attention layers of real models, B = 1, through the package\'s decoder options (`numKVHeads`, `headDim`, `rope`, `qkNorm`, `softcap`,' +
    ' `slidingWindow`, `scale`), with seeded weights under Hugging Face\'s names (`bench/models.js`). onnxruntime-web runs graphs of `bench/make_onnx.py`:' +
    ' *ORT GQA* = projection MatMuls (+ QK-norm as plain ops) around `com.microsoft.GroupQueryAttention` with its rotary (`do_rotary`, cos/sin caches),' +
    ' `softcap`, `local_window_size` and `scale`; *ORT basic* = plain ONNX ops (RoPE from cos/sin inputs, repeated key/value heads, an additive mask input);' +
    ' *ORT MHA* = `com.microsoft.MultiHeadAttention` against the encoder memory\'s projected keys and values.' +
    ' The plain-JavaScript and TensorFlow.js layers are `nn.MultiheadAttention`\'s and have none of these features: n/a there.' +
    ' Every cell\'s output is checked against mha-wasm\'s before it is timed, as everywhere.');
  L.push('');
  const models = [...new Set([...prefill, ...steps].map((s) => s.model))].map((m) => MODELS[m]);
  L.push(table(['layer', 'E', 'H', 'Hkv', 'd', 'features'], models.map((m) => [m.label, m.E, m.H, m.Hkv, m.d,
    [m.rope && `RoPE θ ${m.rope.base}${m.rope.scaling ? ` ${m.rope.scaling.type} ×${m.rope.scaling.factor}` : ''}`, m.qkNorm && `QK-norm eps ${m.qkNorm.eps}`,
      m.softcap && `softcap ${m.softcap}`, m.slidingWindow && `window ${m.slidingWindow}`, m.scale && `scale ${m.scale}`,
      typeof m.bias === 'object' && 'q, v, o biases'].filter(Boolean).join(', ') || '–']), 'lrrrrl'));
  L.push('');

  if (prefill.length) {
    L.push('### Prefill, L = 512, causal', '');
    L.push('Median time per forward pass. "modifiers off" is the same layer without RoPE, QK-norm, softcap, window and scale, measured interleaved in' +
      ' the same process; their share is (with − without) ÷ with. ORT\'s graphs run the same two variants (the GQA graph without rotary).', '');
    for (const t of threads) {
      const rows = prefill.filter((s) => cellAt(t, s.id, MHA_RELAXED)).map((s) => {
        const m = modifierShare(cellAt, t, s.id);
        const best = fastestOrt(cellAt, t, s.id);
        const mha = ms(cellAt(t, s.id, MHA_RELAXED));
        return [s.label, cellText(cellAt(t, s.id, MHA_RELAXED)), cellText(cellAt(t, `${s.id}-bare`, MHA_RELAXED)),
          m ? `${(100 * m.share).toFixed(1)}%` : 'n/a', cellText(cellAt(t, s.id, 'ort-gqa')), cellText(cellAt(t, `${s.id}-bare`, 'ort-gqa')),
          cellText(cellAt(t, s.id, 'ort-basic')), best && mha != null ? `${x(best.ms / mha)} (${names[best.id]})` : 'n/a'];
      });
      if (!rows.length) continue;
      L.push(`${t} thread${t > 1 ? 's' : ''}:`, '');
      L.push(table(['layer', 'mha-wasm', 'modifiers off', 'modifiers\' share', 'ORT GQA', 'ORT GQA, modifiers off', 'ORT basic', 'speed-up over the fastest ORT'], rows));
      L.push('');
    }
  }

  if (steps.length) {
    L.push('### Decode step', '');
    const bw = r.bandwidth;
    L.push('One new token: against a cache already holding Lk tokens (`createCache`, the prompt run into it once; each timed call is' +
      ' `forward(x1, null, null, { cache })` then `cache.truncate(Lk)`, so every step sees the same length), or, for Whisper, against' +
      ' 1500 encoder frames projected once (`projectMemory`, then `forward(x1, memory)`). onnxruntime-web gets the same past keys and values' +
      ' (a helper graph runs the prompt once) and is fed them at every step, fetching only the output; its WebAssembly backend copies every input' +
      ' into its heap per run, so GroupQueryAttention\'s shared past/present buffer cannot be used from JavaScript.');
    L.push('');
    L.push('GB/s = the bytes a step must read (every projection weight it uses, in its dtype, plus the float32 keys and values it attends over;' +
      ' int8 counted with one float32 scale per 32 weights) ÷ the median time, against the machine\'s WebAssembly memory-read bandwidth' +
      ' (`bench/bandwidth.js`\'s kernel: a hand-written module streaming v128 loads over a 128 MiB buffer per thread). That bandwidth is timed as one' +
      ' more cell of each step\'s rounds (`bench/memory_probe.js`; its median is the "of" figure below), since this shared host\'s bandwidth moves' +
      ' by half within a run; measured on its own before and after the peers it gave' +
      (bw ? ` ${Object.entries(bw).map(([t, b]) => `${t} thread${t > 1 ? 's' : ''} ${b.before.toFixed(1)} and ${b.after.toFixed(1)} GB/s`).join(', ')}.` : ' nothing (not measured in this run).') +
      ' Each 2-thread step follows a pause and one untimed call (bench/limits.md, "Threads"); a step whose bytes fit the 32 MiB last-level cache' +
      ' (Whisper\'s 7.9 MiB) may still find some of them there.');
    L.push('');
    const dtypes = [['mha-wasm-f16', 'f16'], ['mha-wasm-bf16', 'bf16'], ['mha-wasm-int8', 'int8']];
    const missing = dtypes.map(([id]) => steps.flatMap((s) => threads.map((t) => cellAt(t, s.id, id))).find((c) => c?.status === 'n/a')).filter(Boolean);
    if (missing.length) L.push(`Reduced-precision rows: ${[...new Set(missing.map((c) => c.reason))].join('; ')}.`, '');
    for (const t of threads) {
      const rows = steps.filter((s) => cellAt(t, s.id, MHA_RELAXED)).map((s) => {
        const c = cellAt(t, s.id, MHA_RELAXED);
        const g = stepGBps(c);
        const best = fastestOrt(cellAt, t, s.id);
        const mha = ms(c);
        const dt = dtypes.map(([id, dtype]) => {
          const d = cellAt(t, s.id, id);
          if (ms(d) == null) return cellText(d);
          return `${fmt(d.medianMs)}, ${stepGBps(d, dtype).toFixed(1)} GB/s, ${mha != null ? x(mha / d.medianMs) : ''}`;
        });
        const limit = stepBandwidth(cellAt, bw, t, s.id);
        return [s.label, (bytesPerStep(s) / MIB).toFixed(1),
          mha == null ? cellText(c) : `${fmt(mha)}<br>${g.toFixed(1)} GB/s${limit ? ` · ${(100 * g / limit).toFixed(0)}% of ${limit.toFixed(1)}` : ''}`,
          ...dt, best ? `${fmt(best.ms)} (${names[best.id]})` : 'n/a', best && mha != null ? x(best.ms / mha) : 'n/a'];
      });
      if (!rows.length) continue;
      L.push(`${t} thread${t > 1 ? 's' : ''}:`, '');
      L.push(table(['step', 'MiB read (f32)', 'mha-wasm float32', 'f16 weights (time, GB/s, speed-up)', 'bf16 weights (time, GB/s, speed-up)', 'int8 weights (time, GB/s, speed-up)', 'fastest ORT', 'speed-up over it'], rows));
      L.push('');
    }
  }
  return L;
}
