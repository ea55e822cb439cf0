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
  std::int64_t head_dim;
  // Rows stored per sequence and head: the capacity, and for a ring (a
  // layer with a sliding window) ring_slack(capacity) more, so that a ring
  // drops its oldest rows by moving `offset` and moves its rows back to the
  // start only when the slack is used up: once every slack steps, not on
  // every step (bench/limits.md, "A ring's steps").
  std::int64_t rows;
  std::int64_t offset = 0;  // stored row of held row 0
  // Where held row r of key/value head g of sequence b is: b * rows * width
  // + g * head_stride + (offset + r) * row_stride. A cache is head-major
  // ([B, Hkv, rows, d]: each head's keys one run, which decoding streams
  // through head by head); so is a memory, unless its heads are not whole
  // GEMM panels wide, when project_memory writes the GEMM's rows as they
  // come ([B, capacity, Hkv * d]).
  std::int64_t head_stride, row_stride;
  std::vector<float> k, v;              // rows [offset, offset + held) of each head in append order
  std::vector<std::int32_t> positions;  // [B, rows], at the same rows
  std::int64_t length = 0;  // positions appended since the last reset
  std::int64_t first = 0;   // append index of held row 0 (a ring's dropped count)
  // Whether every held key's position is its append index (no explicit
  // positions since the reset), which lets attention skip blocks by index.
  bool implicit = true;

  // The rows a cache of `capacity` stores for a layer: see `rows`.
  static std::int64_t rows_for(const Config& c, std::int64_t capacity) {
    return capacity + (c.sliding_window > 0 ? (capacity + 15) / 16 : 0);
  }
  std::int64_t held() const { return length - first; }
  std::int64_t at(std::int64_t b, std::int64_t g, std::int64_t r) const {
    return b * rows * width + g * head_stride + (offset + r) * row_stride;
  }
  // The layout project_memory writes: rows of width floats, capacity of
  // them per sequence.
  void use_rows() { rows = capacity, head_stride = head_dim, row_stride = width; }
  // Drops the oldest `n` held rows of every sequence.
  void drop(std::int64_t n);
  // Moves the held rows to the first stored rows (offset 0).
  void compact();
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
