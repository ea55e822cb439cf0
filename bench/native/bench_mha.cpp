// Native Google Benchmark of mha::MultiheadAttention::forward on the shapes of
// bench/shapes.js (same ids), through the public API of src/mha.hpp.
//
//   build/native-bench/bench/native/mha_bench --benchmark_format=json
//
// Benchmarks are named <shape>/<threads>/real_time: threads 1 and 2, set with
// mha::set_num_threads (the core's own pool; the "threads" counter says how
// many it actually used). Each reports wall time per forward pass and a
// GFLOP/s counter with the FLOP count of bench/shapes.js:
//   self / causal: 8·B·L·E² + 4·B·L²·E;  cross: 4·B·Lq·E² + 4·B·Lk·E² + 4·B·Lq·Lk·E.
// Inputs are uniform in [-1, 1); the weights are the layer's seeded initial
// ones (values do not change the work done).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "mha.hpp"
#include "random.hpp"

namespace {

struct Shape {
  const char* id;
  std::int64_t B, Lq, Lk, E, H;
  bool causal, cross;
};

// Keep in step with bench/shapes.js.
const Shape kShapes[] = {
    {"L128", 1, 128, 128, 512, 8, false, false},
    {"L512", 1, 512, 512, 512, 8, false, false},
    {"L2048", 1, 2048, 2048, 512, 8, false, false},
    {"B4L256E768", 4, 256, 256, 768, 12, false, false},
    {"L512causal", 1, 512, 512, 512, 8, true, false},
    {"decode", 1, 1, 512, 512, 8, false, true},
    {"teaching", 3, 4, 4, 16, 8, false, false},
};

double flops(const Shape& s) {
  const double B = s.B, Lq = s.Lq, Lk = s.Lk, E = s.E;
  if (s.cross) return 4 * B * Lq * E * E + 4 * B * Lk * E * E + 4 * B * Lq * Lk * E;
  return 8 * B * Lq * E * E + 4 * B * Lq * Lk * E;
}

std::vector<float> uniform(std::size_t n, std::uint32_t seed) {
  mha::Random rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.uniform(-1.0, 1.0));
  return v;
}

void BM_Forward(benchmark::State& state, const Shape& s) {
  mha::set_num_threads(static_cast<int>(state.range(0)));
  mha::Config config;
  config.embed_dim = s.E;
  config.num_heads = s.H;
  mha::MultiheadAttention layer(config, /*seed=*/5);

  const auto query = uniform(static_cast<std::size_t>(s.B * s.Lq * s.E), 11);
  const auto key = s.cross ? uniform(static_cast<std::size_t>(s.B * s.Lk * s.E), 12) : std::vector<float>();
  const auto value = s.cross ? uniform(static_cast<std::size_t>(s.B * s.Lk * s.E), 13) : std::vector<float>();
  std::vector<float> output(static_cast<std::size_t>(s.B * s.Lq * s.E));

  mha::ForwardInput input;
  input.batch = s.B;
  input.query_len = s.Lq;
  input.key_len = s.Lk;
  input.query = query.data();
  input.key = s.cross ? key.data() : nullptr;    // nullptr: self-attention
  input.value = s.cross ? value.data() : nullptr;
  mha::ForwardOptions options;
  options.is_causal = s.causal;
  mha::ForwardOutputs outputs;
  outputs.output = output.data();

  for (auto _ : state) {
    layer.forward(input, options, outputs);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP"] = flops(s);
  state.counters["threads"] = mha::num_threads();
  mha::set_num_threads(1);
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes)
    benchmark::RegisterBenchmark(s.id, BM_Forward, s)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
