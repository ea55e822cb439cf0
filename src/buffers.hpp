// Helpers the core's files share: S, sizes in whole blocks, growing
// scratch buffers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "mha.hpp"

namespace mha {

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// S: the keys a call with key_len keys attends to, the bias_kv and the
// zero-attention key included.
inline std::int64_t source_len(const Config& c, std::int64_t key_len) {
  return key_len + (c.add_bias_kv ? 1 : 0) + (c.add_zero_attn ? 1 : 0);
}

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }
constexpr std::size_t ceil_div(std::size_t n, std::size_t d) { return (n + d - 1) / d; }
constexpr std::uint64_t round_up64(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

// Scratch buffers grow to what a call needs and never shrink, so a steady
// stream of calls allocates nothing. Every such buffer is sized through a
// Growth, which either grows it (Growth::apply) or only adds up the bytes
// growing it would take (Growth::count): the layer asks the second before a
// call, so that a call too big for the heap is refused before anything is
// allocated, by the same code that sizes the buffers. Counts are 64-bit, so
// that a shape too big for wasm32's 32-bit size_t is counted, not wrapped.
class Growth {
 public:
  static Growth apply() { return Growth(true); }
  static Growth count() { return Growth(false); }

  // At least one element, so that data() is never null: an empty key
  // sequence still gets valid (unread) row pointers.
  template <typename T>
  void operator()(std::vector<T>& buf, std::uint64_t n) {
    n = std::max<std::uint64_t>(n, 1);
    if (buf.size() >= n) return;
    if (apply_) buf.resize(std::size_t(n));
    else bytes_ += (n - buf.size()) * sizeof(T);
  }
  void add_bytes(std::uint64_t bytes) { if (!apply_) bytes_ += bytes; }
  bool applies() const { return apply_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  explicit Growth(bool apply) : apply_(apply) {}
  bool apply_;
  std::uint64_t bytes_ = 0;
};

}  // namespace mha
