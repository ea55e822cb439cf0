// A plain, slow, obviously-correct forward pass in double precision over the
// layer's unpacked parameters. Not used by the library: it is the native
// tests' second oracle beside the PyTorch fixtures. Same contract as
// MultiheadAttention::forward (see mha.hpp), except that it trusts its input.
#pragma once

#include "mha.hpp"

namespace mha::reference {

void forward(const MultiheadAttention& layer, const ForwardInput& input, const ForwardOptions& options,
             const ForwardOutputs& outputs);

}  // namespace mha::reference
