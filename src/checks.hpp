// Boundary checks of the C++ entry points. The JS wrapper checks the same
// things first with JS-level names; these run again so that the C++ API is
// safe on its own and nothing past them needs to re-check.
#pragma once

#include <cstdint>
#include <string>

#include "mha.hpp"

namespace mha {

// "1.50 GiB": byte counts in messages.
std::string gib(std::uint64_t bytes);

// Resolves kdim/vdim (0 -> embed_dim) and throws Error when impossible.
Config checked_config(const Config& config);

// a * b, throwing Error (naming `what`) if the product leaves [0, 2^53),
// the range in which JS numbers count exactly.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what);

// The sizes of a call alone: non-negative, and counts that stay exact.
void check_call_shape(const Config& config, std::int64_t batch, std::int64_t query_len, std::int64_t key_len);

// The cache or memory of a call: the layer's own, of the call's batch.
void check_sources(const void* layer, const ForwardInput& input);

// project_memory's arguments.
void check_memory(const Config& config, const void* layer, const KVCache::Storage& memory, const float* input,
                  std::int64_t batch, std::int64_t length);

void check_forward(const Config& config, const ForwardInput& input, const ForwardOptions& options,
                   const ForwardOutputs& outputs);

}  // namespace mha
