// pybind11 functions of the CUDA kernels: device pointers, sizes and the caller's stream come
// in as integers (the extension never links libtorch), outputs are preallocated by the
// caller. The checks with the caller's argument names live in jsma_fast/_cuda.py; here the
// pointers are checked to be device memory on the given device before anything is launched.
#include "bindings_cuda.h"

#include <cstdint>
#include <initializer_list>
#include <string>

#include "cuda/cuda_api.h"
#include "search_api.h"

namespace py = pybind11;

namespace {

using Ptr = std::uintptr_t;

template <typename T>
T* as_ptr(Ptr p) {
  return reinterpret_cast<T*>(p);
}

// Checked inputs of a CUDA search, and where it runs.
struct DeviceCall {
  jsma::SearchInputs in;
  jsma::cuda::DeviceStream on;
};

DeviceCall device_call(Ptr alpha, Ptr beta, Ptr domain, int64_t batch, int64_t m,
                       bool increase, int device, Ptr stream) {
  if (batch < 0 || m < 0) {
    throw py::value_error("batch and m must be >= 0, got " + std::to_string(batch) + " and " +
                          std::to_string(m));
  }
  if (device < 0) throw py::value_error("device must be >= 0, got " + std::to_string(device));
  if (batch * m > 0 && (alpha == 0 || beta == 0)) {
    throw py::value_error("alpha and beta must be non-null device pointers");
  }
  const jsma::Mode mode = increase ? jsma::Mode::kIncrease : jsma::Mode::kDecrease;
  return {{as_ptr<const float>(alpha), as_ptr<const float>(beta), as_ptr<const uint8_t>(domain),
           batch, m, mode},
          {device, as_ptr<void>(stream)}};
}

void require_outputs(int64_t batch, std::initializer_list<Ptr> outputs) {
  if (batch == 0) return;
  for (Ptr p : outputs) {
    if (p == 0) throw py::value_error("output pointers must be non-null when batch > 0");
  }
}

}  // namespace

void register_cuda(py::module_& m) {
  m.def(
      "cuda_pair_search",
      [](Ptr alpha, Ptr beta, Ptr domain, int64_t batch, int64_t m, bool increase, Ptr p, Ptr q,
         Ptr score, Ptr valid, int device, Ptr stream) {
        const auto call = device_call(alpha, beta, domain, batch, m, increase, device, stream);
        require_outputs(batch, {p, q, score, valid});
        py::gil_scoped_release release;
        jsma::cuda::pair_search(call.in,
                                {as_ptr<int64_t>(p), as_ptr<int64_t>(q), as_ptr<float>(score),
                                 as_ptr<uint8_t>(valid)},
                                call.on);
      },
      py::arg("alpha"), py::arg("beta"), py::arg("domain"), py::arg("batch"), py::arg("m"),
      py::arg("increase"), py::arg("p"), py::arg("q"), py::arg("score"), py::arg("valid"),
      py::arg("device"), py::arg("stream"),
      "Exhaustive pair search on device pointers (domain 0 for none), launched on `stream`. "
      "Writes p, q (int64), score (float32), valid (uint8), each (batch,).");
  m.def(
      "cuda_feature_search",
      [](Ptr alpha, Ptr beta, Ptr domain, int64_t batch, int64_t m, bool increase, Ptr index,
         Ptr score, Ptr valid, int device, Ptr stream) {
        const auto call = device_call(alpha, beta, domain, batch, m, increase, device, stream);
        require_outputs(batch, {index, score, valid});
        py::gil_scoped_release release;
        jsma::cuda::feature_search(
            call.in, {as_ptr<int64_t>(index), as_ptr<float>(score), as_ptr<uint8_t>(valid)},
            call.on);
      },
      py::arg("alpha"), py::arg("beta"), py::arg("domain"), py::arg("batch"), py::arg("m"),
      py::arg("increase"), py::arg("index"), py::arg("score"), py::arg("valid"),
      py::arg("device"), py::arg("stream"),
      "Single-feature arg-max on device pointers. Writes index, score, valid, each (batch,).");
  m.def(
      "cuda_saliency_map",
      [](Ptr alpha, Ptr beta, Ptr domain, int64_t batch, int64_t m, bool increase, Ptr map,
         int device, Ptr stream) {
        const auto call = device_call(alpha, beta, domain, batch, m, increase, device, stream);
        require_outputs(batch * m, {map});
        py::gil_scoped_release release;
        jsma::cuda::saliency_map(call.in, as_ptr<float>(map), call.on);
      },
      py::arg("alpha"), py::arg("beta"), py::arg("domain"), py::arg("batch"), py::arg("m"),
      py::arg("increase"), py::arg("map"), py::arg("device"), py::arg("stream"),
      "Single-feature saliency map on device pointers. Writes map, (batch, m) float32.");
  m.def("cuda_pair_search_workspace_bytes", &jsma::cuda::pair_search_workspace_bytes,
        py::arg("batch"), py::arg("m"),
        "Device scratch (bytes) that cuda_pair_search allocates for a call of this size.");
  m.def("cuda_driver_version", &jsma::cuda::driver_version,
        "CUDA version supported by the installed driver (e.g. 12040); 0 without a driver.");
}
