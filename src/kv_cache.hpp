// KVCache's storage (the class is declared in mha.hpp), shared by the cache
// itself and the forward pass that appends to and reads it.
#pragma once

#include <cstdint>
#include <vector>

#include "mha.hpp"

namespace mha {

struct KVCache::Storage {
  const void* owner;       // the layer it was made for
  std::int64_t batch, capacity, width;  // width = Hkv * d
  std::vector<float> k, v;              // [B, capacity, width]; rows [0, held) in append order
  std::vector<std::int32_t> positions;  // [B, capacity]
  std::int64_t length = 0;  // positions appended since the last reset
  std::int64_t first = 0;   // append index of row 0 (a ring's dropped count)
  // Whether every held key's position is its append index (no explicit
  // positions since the reset), which lets attention skip blocks by index.
  bool implicit = true;

  std::int64_t held() const { return length - first; }
  float* k_row(std::int64_t b, std::int64_t r) { return k.data() + (b * capacity + r) * width; }
  float* v_row(std::int64_t b, std::int64_t r) { return v.data() + (b * capacity + r) * width; }
  // Drops the oldest `n` held rows of every sequence.
  void drop(std::int64_t n);
  // Before a call of lq tokens: room for them. Under a sliding window the
  // oldest keys go, those no later query can see (the last window - 1
  // stay); any other cache must have the room, or Error.
  void make_room(std::int64_t window, std::int64_t lq);
  // A call's keys (after QK-norm and RoPE) and values, rows of width floats
  // *_stride apart, lq per sequence, appended with their positions (given,
  // or first_position + i).
  void append(std::size_t batch, std::size_t lq, const float* k, std::size_t k_stride, const float* v,
              std::size_t v_stride, const std::int32_t* given_positions, std::int64_t first_position);
};

}  // namespace mha
