// index.js's checked configuration (create options with defaults applied,
// a plain object) as an mha::Config. JS has checked every value; a field of
// the wrong type is still refused here, as a TypeError, never read as 0.
#pragma once

#include <emscripten/val.h>

#include <string>
#include <vector>

#include "checks.hpp"
#include "glue.hpp"
#include "mha.hpp"

namespace mha_glue {

inline double number_field(const emscripten::val& o, const char* name) {
  const emscripten::val v = o[name];
  if (!v.isNumber()) throw mha::Error(mha::Error::Kind::type, std::string("configure: ") + name + " is not a number");
  return v.as<double>();
}
inline bool flag_field(const emscripten::val& o, const char* name) {
  const emscripten::val v = o[name];
  if (!v.isTrue() && !v.isFalse()) throw mha::Error(mha::Error::Kind::type, std::string("configure: ") + name + " is not a boolean");
  return v.isTrue();
}
inline std::string text_field(const emscripten::val& o, const char* name) {
  const emscripten::val v = o[name];
  if (!v.isString()) throw mha::Error(mha::Error::Kind::type, std::string("configure: ") + name + " is not a string");
  return v.as<std::string>();
}

inline std::vector<double> numbers_field(const emscripten::val& o, const char* name) {
  const emscripten::val v = o[name];
  if (!v.isArray()) throw mha::Error(mha::Error::Kind::type, std::string("configure: ") + name + " is not an array");
  const std::size_t n = v["length"].as<std::size_t>();
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const emscripten::val x = v[i];
    if (!x.isNumber()) throw mha::Error(mha::Error::Kind::type, std::string("configure: ") + name + " holds a non-number");
    out[i] = x.as<double>();
  }
  return out;
}

inline mha::Rope::Scaling rope_scaling(const std::string& type) {
  if (type == "linear") return mha::Rope::Scaling::linear;
  if (type == "llama3") return mha::Rope::Scaling::llama3;
  if (type == "yarn") return mha::Rope::Scaling::yarn;
  if (type == "longrope") return mha::Rope::Scaling::longrope;
  throw mha::Error(mha::Error::Kind::range, "rope.scaling.type must be 'linear', 'llama3', 'yarn' or 'longrope', got '" + type + "'");
}

inline mha::WeightFormat weight_format(const std::string& dtype) {
  if (dtype == "f32") return mha::WeightFormat::f32;
  if (dtype == "f16") return mha::WeightFormat::f16;
  if (dtype == "bf16") return mha::WeightFormat::bf16;
  if (dtype == "int8") return mha::WeightFormat::int8;
  throw mha::Error(mha::Error::Kind::range, "weightDtype must be 'f32', 'f16', 'bf16' or 'int8', got '" + dtype + "'");
}

inline mha::Config config_of(const emscripten::val& o) {
  mha::Config c;
  c.embed_dim = whole(number_field(o, "embedDim"), "embedDim");
  c.num_heads = whole(number_field(o, "numHeads"), "numHeads");
  c.kdim = whole(number_field(o, "kdim"), "kdim");
  c.vdim = whole(number_field(o, "vdim"), "vdim");
  c.add_bias_kv = flag_field(o, "addBiasKV");
  c.add_zero_attn = flag_field(o, "addZeroAttn");
  c.names = text_field(o, "weightNames") == "hf" ? mha::WeightNames::hf : mha::WeightNames::torch;
  c.num_kv_heads = whole(number_field(o, "numKVHeads"), "numKVHeads");
  c.head_dim = whole(number_field(o, "headDim"), "headDim");
  const emscripten::val bias = o["bias"];
  c.bias = flag_field(bias, "q");
  c.hf_bias = {flag_field(bias, "q"), flag_field(bias, "k"), flag_field(bias, "v"), flag_field(bias, "o")};
  const emscripten::val rope = o["rope"];
  if (!rope.isNull()) {
    c.rope.dim = whole(number_field(rope, "dim"), "dim");
    c.rope.base = number_field(rope, "base");
    c.rope.layout = text_field(rope, "layout") == "interleaved" ? mha::Rope::Layout::interleaved : mha::Rope::Layout::half;
    const emscripten::val scaling = rope["scaling"];
    if (!scaling.isNull()) {
      c.rope.scaling = rope_scaling(text_field(scaling, "type"));
      c.rope.factor = number_field(scaling, "factor");
      using Scaling = mha::Rope::Scaling;
      if (c.rope.scaling != Scaling::linear)
        c.rope.original_max_positions = number_field(scaling, "originalMaxPositionEmbeddings");
      if (c.rope.scaling == Scaling::llama3) {
        c.rope.low_freq_factor = number_field(scaling, "lowFreqFactor");
        c.rope.high_freq_factor = number_field(scaling, "highFreqFactor");
      }
      if (c.rope.scaling == Scaling::yarn) {
        c.rope.beta_fast = number_field(scaling, "betaFast");
        c.rope.beta_slow = number_field(scaling, "betaSlow");
        c.rope.truncate = flag_field(scaling, "truncate");
      }
      if (c.rope.scaling == Scaling::longrope) {
        c.rope.short_factor = numbers_field(scaling, "shortFactor");
        c.rope.long_factor = numbers_field(scaling, "longFactor");
      }
      if (c.rope.scaling == Scaling::yarn || c.rope.scaling == Scaling::longrope)
        c.rope.attention_factor = number_field(scaling, "attentionFactor");
    }
  }
  c.scale = number_field(o, "scale");
  c.softcap = number_field(o, "softcap");
  c.alibi = flag_field(o, "alibi");
  c.weights = weight_format(text_field(o, "weightDtype"));
  c.sliding_window = whole(number_field(o, "slidingWindow"), "slidingWindow");
  c.qk_norm_eps = number_field(o, "qkNormEps");
  c.sinks = flag_field(o, "sinks");
  return c;
}

}  // namespace mha_glue
