// The GPU pair search's decomposition and per-lane code (pair_tiles.h) run on the host, for
// testing it without a GPU. Plain C++: built in every build, with or without CUDA.
#pragma once

#include "search_api.h"

namespace jsma::cuda {

// Host arrays in and out; the same results as jsma::cuda::pair_search.
void emulate_pair_search(const SearchInputs& in, const PairOutputs& out);

}  // namespace jsma::cuda
