// What every embind class of the glue shares: the status a call returns,
// its error guard, and the checks of the numbers JS passes.
#pragma once

#include <emscripten/heap.h>
#include <malloc.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "checks.hpp"
#include "mha.hpp"

namespace mha_glue {

enum Status : int { kOk = 0, kTypeError = 1, kRangeError = 2 };

// A count JS passed as a double, as an integer. JS sends only checked
// integers; anything else (NaN, infinities, fractions, past 2^53) is refused
// here too rather than cast, which would be undefined behaviour.
inline std::int64_t whole(double v, const char* name) {
  if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) || v != std::floor(v))
    throw mha::Error(mha::Error::Kind::range, std::string(name) + " must be an integer, got " + std::to_string(v));
  return std::int64_t(v);
}

// Bytes the heap can still give: what it may grow by, plus what is free
// inside it (an estimate: a fragmented heap may fail sooner, and then the
// allocation's std::bad_alloc becomes the same RangeError).
inline std::uint64_t available_bytes() {
  const std::uint64_t size = emscripten_get_heap_size(), max = emscripten_get_heap_max();
  return (max > size ? max - size : 0) + std::uint64_t(mallinfo().fordblks);
}

inline void admit_bytes(std::uint64_t bytes, const std::string& what) {
  // What the heap may still grow by answers most calls (a steady call needs
  // 0 bytes) without mallinfo(), which walks every chunk of the heap: a
  // cache miss each for a decoding step that comes after other layers.
  const std::uint64_t size = emscripten_get_heap_size(), max = emscripten_get_heap_max();
  if (bytes <= (max > size ? max - size : 0)) return;
  if (bytes <= available_bytes()) return;
  throw mha::Error(mha::Error::Kind::range,
                   what + " needs " + mha::gib(bytes) + " more WebAssembly memory, and only " +
                       mha::gib(available_bytes()) + " is left of wasm32's 4 GiB (the heap holds " +
                       mha::gib(emscripten_get_heap_size()) + " now); nothing was allocated");
}

// Runs body; a C++ exception becomes a Status and a message for error().
template <typename F>
int guard(std::string& error, F&& body) {
  error.clear();
  try {
    body();
    return kOk;
  } catch (const mha::Error& e) {
    error = e.what();
    return e.kind() == mha::Error::Kind::type ? kTypeError : kRangeError;
  } catch (const std::bad_alloc&) {
    error = "out of memory: the WebAssembly heap could not grow to hold this call's buffers (wasm32 addresses 4 GiB)";
    return kRangeError;
  } catch (const std::length_error&) {
    error = "out of memory: a buffer of this call would exceed what wasm32 can address (4 GiB)";
    return kRangeError;
  } catch (const std::exception& e) {
    error = std::string("internal error: ") + e.what();
    return kRangeError;
  } catch (...) {
    error = "internal error: an unknown C++ exception";
    return kRangeError;
  }
}

}  // namespace mha_glue
