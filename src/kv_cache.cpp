#include <algorithm>
#include <string>

#include "checks.hpp"
#include "kv_cache.hpp"

namespace mha {

KVCache::KVCache(const MultiheadAttention& layer, std::int64_t batch, std::int64_t capacity) {
  const Config& c = layer.config();
  if (batch < 1) throw Error(Error::Kind::range, "cache batch must be >= 1, got " + std::to_string(batch));
  if (capacity < 1) throw Error(Error::Kind::range, "cache capacity must be >= 1, got " + std::to_string(capacity));
  checked_mul(batch, capacity, "cache");  // below 2^53, so that a ring's extra rows cannot overflow
  const std::int64_t width = c.num_kv_heads * c.head_dim, rows = Storage::rows_for(c, capacity);
  const std::int64_t floats = checked_mul(checked_mul(batch, rows, "cache"), width, "cache");
  s_ = std::make_unique<Storage>();
  s_->owner = &layer;
  s_->batch = batch;
  s_->capacity = capacity;
  s_->rows = rows;
  s_->width = width;
  s_->head_dim = c.head_dim;
  s_->head_stride = rows * c.head_dim;  // head-major
  s_->row_stride = c.head_dim;
  s_->k.assign(std::size_t(floats), 0.0f);
  s_->v.assign(std::size_t(floats), 0.0f);
  s_->positions.assign(std::size_t(batch * rows), 0);
}

KVCache::~KVCache() = default;
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;

std::int64_t KVCache::batch() const { return s_->batch; }
std::int64_t KVCache::capacity() const { return s_->capacity; }
std::int64_t KVCache::length() const { return s_->length; }
std::int64_t KVCache::held() const { return s_->held(); }

void KVCache::reset() {
  s_->length = s_->first = s_->offset = 0;
  s_->implicit = true;
}

void KVCache::truncate(std::int64_t length) {
  if (length < 0 || length > s_->length)
    throw Error(Error::Kind::range, "truncate: length must be in [0, " + std::to_string(s_->length) +
                                        "] (the positions the cache has seen), got " + std::to_string(length));
  if (length < s_->first)
    throw Error(Error::Kind::range, "truncate: the cache, a ring, has dropped positions before " +
                                        std::to_string(s_->first) + ", so it cannot go back to " +
                                        std::to_string(length) + "; reset it and run the sequence again");
  s_->length = length;
  if (length == 0) reset();
}

std::uint64_t KVCache::bytes(const Config& c, std::int64_t batch, std::int64_t capacity) {
  const double rows = double(batch) * double(Storage::rows_for(c, capacity));
  const double bytes = rows * (2.0 * double(c.num_kv_heads * c.head_dim) + 1.0) * 4.0;
  return bytes >= 1.8e19 ? ~std::uint64_t(0) : std::uint64_t(bytes);
}

void KVCache::Storage::make_room(std::int64_t window, std::int64_t lq) {
  if (held() + lq > capacity) {
    if (window <= 0)
      throw Error(Error::Kind::range, "cache: it holds " + std::to_string(held()) + " positions of its capacity " +
                                          std::to_string(capacity) + " and this call appends " + std::to_string(lq) +
                                          "; make it larger, or reset or truncate it");
    const std::int64_t keep = std::min(held(), window - 1);
    if (keep + lq > capacity)
      throw Error(Error::Kind::range, "cache: a call of " + std::to_string(lq) + " tokens under a sliding window of " +
                                          std::to_string(window) + " needs capacity >= " + std::to_string(keep + lq) +
                                          " (the window's " + std::to_string(keep) + " earlier keys and its own), got " +
                                          std::to_string(capacity));
    drop(held() - keep);
  }
  if (offset + held() + lq > rows) compact();  // a ring's slack is used up
}

void KVCache::Storage::append(std::size_t batch_count, std::size_t lq, const float* k_rows, std::size_t k_stride,
                              const float* v_rows, std::size_t v_stride, const std::int32_t* given_positions,
                              std::int64_t first_position) {
  const std::size_t d = std::size_t(head_dim), heads = std::size_t(width / head_dim);
  const std::int64_t first_row = held();
  for (std::size_t b = 0; b < batch_count; ++b)
    for (std::size_t i = 0; i < lq; ++i) {
      const std::size_t row = b * lq + i;
      const std::int64_t r = first_row + std::int64_t(i);
      for (std::size_t g = 0; g < heads; ++g) {
        std::copy_n(k_rows + row * k_stride + g * d, d, k.data() + at(std::int64_t(b), std::int64_t(g), r));
        std::copy_n(v_rows + row * v_stride + g * d, d, v.data() + at(std::int64_t(b), std::int64_t(g), r));
      }
      positions[b * std::size_t(rows) + std::size_t(offset + r)] =
          given_positions ? given_positions[row] : std::int32_t(first_position + std::int64_t(i));
    }
  if (given_positions) implicit = false;
  length += std::int64_t(lq);
}

void KVCache::Storage::drop(std::int64_t n) {
  if (n <= 0) return;
  offset += n;
  first += n;
}

void KVCache::Storage::compact() {
  if (offset == 0) return;
  const std::int64_t n = held(), heads = width / head_dim;
  for (std::int64_t b = 0; b < batch; ++b) {
    // Head-major: a head's held rows are one run; forward, since each row
    // moves to an earlier one.
    for (std::int64_t g = 0; g < heads; ++g) {
      const std::int64_t from = at(b, g, 0), to = from - offset * row_stride;
      std::copy_n(k.data() + from, n * head_dim, k.data() + to);
      std::copy_n(v.data() + from, n * head_dim, v.data() + to);
    }
    std::int32_t* p = positions.data() + b * rows;
    std::copy(p + offset, p + offset + n, p);
  }
  offset = 0;
}

}  // namespace mha
