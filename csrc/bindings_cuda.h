// The CUDA half of the pybind11 module jsma_fast._C (bindings_cuda.cpp). Built only with
// JSMA_FAST_WITH_CUDA; bindings.cpp calls register_cuda() from its module definition.
#pragma once

#include <pybind11/pybind11.h>

// Adds the cuda_* functions to the module.
void register_cuda(pybind11::module_& m);
