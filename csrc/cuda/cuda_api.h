// Host-side entry points of the CUDA part of the module. Compiled only when the build has
// CUDA (JSMA_FAST_WITH_CUDA); plain C++ types only, so bindings.cpp needs no CUDA headers.
#pragma once

#include <cstdint>
#include <string>

namespace jsma::cuda {

// CUDA runtime version the module was linked with (e.g. 13000), statically.
int runtime_version();
// Number of usable devices; 0 (and a reason in *why) when there is no driver or device.
int device_count(std::string* why);

}  // namespace jsma::cuda
