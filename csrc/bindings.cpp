// pybind11 module jsma_fast._C: checks buffers, releases the GIL, calls the native core.
//
// The user-facing checks (with the caller's argument names) live in jsma_fast/ops.py; the
// checks here are the last line of defence so that no call can read out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "cpu/parallel.h"
#include "cpu/search.h"
#include "cpu/short_waits.h"
#include "cpu/simd.h"
#include "cuda/host_emulation.h"
#include "search_api.h"
#if defined(JSMA_FAST_WITH_CUDA)
#include "bindings_cuda.h"
#include "cuda/cuda_api.h"
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace py = pybind11;
using jsma::Mode;

namespace {

std::string describe(const py::array& a) {
  std::string shape = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    shape += std::to_string(a.shape(i)) + (i + 1 < a.ndim() ? ", " : "");
  }
  if (a.ndim() == 1) shape += ",";
  return shape + ") " + std::string(py::str(a.dtype()));
}

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous, got a strided array " +
                          describe(a));
  }
}

// Validates alpha, beta (batch, m) float32 and domain (batch, m) bool/uint8 or None.
jsma::SearchInputs check_inputs(const py::array& alpha, const py::array& beta,
                                const py::object& domain, bool increase) {
  for (const auto& [arr, name] : {std::pair{&alpha, "alpha"}, std::pair{&beta, "beta"}}) {
    if (arr->ndim() != 2) {
      throw py::value_error(std::string(name) + " must have shape (batch, m), got " +
                            describe(*arr));
    }
    if (!arr->dtype().is(py::dtype::of<float>())) {
      throw py::type_error(std::string(name) + " must be float32, got " + describe(*arr));
    }
    require_c_contiguous(*arr, name);
  }
  if (beta.shape(0) != alpha.shape(0) || beta.shape(1) != alpha.shape(1)) {
    throw py::value_error("beta must have the shape of alpha " + describe(alpha) + ", got " +
                          describe(beta));
  }
  const uint8_t* domain_ptr = nullptr;
  if (!domain.is_none()) {
    const auto dom = py::reinterpret_borrow<py::array>(domain);
    const char kind = dom.dtype().kind();
    if (!((kind == 'b' || kind == 'u') && dom.itemsize() == 1)) {
      throw py::type_error("domain must be bool or uint8, got " + describe(dom));
    }
    if (dom.ndim() != 2 || dom.shape(0) != alpha.shape(0) || dom.shape(1) != alpha.shape(1)) {
      throw py::value_error("domain must have the shape of alpha " + describe(alpha) +
                            ", got " + describe(dom));
    }
    require_c_contiguous(dom, "domain");
    domain_ptr = static_cast<const uint8_t*>(dom.data());
  }
  return {static_cast<const float*>(alpha.data()), static_cast<const float*>(beta.data()),
          domain_ptr, alpha.shape(0), alpha.shape(1),
          increase ? Mode::kIncrease : Mode::kDecrease};
}

// Taken as int64 so that any Python int up to 2**63 reaches this check (and its message)
// instead of pybind11's generic overload error.
int check_threads(int64_t num_threads) {
  if (num_threads < 1 || num_threads > jsma::cpu::kMaxThreads) {
    throw py::value_error("num_threads must be in [1, " + std::to_string(jsma::cpu::kMaxThreads) +
                          "], got " + std::to_string(num_threads));
  }
  return static_cast<int>(num_threads);
}

jsma::cpu::SimdLevel check_simd(const std::string& simd) {
  try {
    return jsma::cpu::resolve_simd_level(simd);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// Fresh (batch,) outputs of a pair search, written by `run` without the GIL (the kernels
// touch no Python object). Returns (p, q, score, valid).
template <typename Run>
py::tuple run_pair_search(int64_t batch, const Run& run) {
  py::array_t<int64_t> p(batch), q(batch);
  py::array_t<float> score(batch);
  py::array_t<bool> valid(batch);
  const jsma::PairOutputs out{p.mutable_data(), q.mutable_data(), score.mutable_data(),
                              reinterpret_cast<uint8_t*>(valid.mutable_data())};
  {
    py::gil_scoped_release release;
    run(out);
  }
  return py::make_tuple(p, q, score, valid);
}

// The exhaustive search, or the pruned one, which also returns its candidate counts.
template <bool kPruned>
py::tuple pair_search(const py::array& alpha, const py::array& beta, const py::object& domain,
                      bool increase, int64_t num_threads, const std::string& simd) {
  const auto in = check_inputs(alpha, beta, domain, increase);
  const int threads = check_threads(num_threads);
  const auto level = check_simd(simd);
  if constexpr (!kPruned) {
    return run_pair_search(in.batch, [&](const jsma::PairOutputs& out) {
      jsma::cpu::pair_search(in, out, threads, level);
    });
  } else {
    py::array_t<int64_t> candidates(in.batch);
    int64_t* counts = candidates.mutable_data();
    const py::tuple pair = run_pair_search(in.batch, [&](const jsma::PairOutputs& out) {
      jsma::cpu::pair_search_pruned(in, out, counts, threads, level);
    });
    return py::make_tuple(pair[0], pair[1], pair[2], pair[3], candidates);
  }
}

py::tuple top2_search(const py::array& alpha, const py::object& domain, bool increase,
                      int64_t num_threads) {
  // The rule reads alpha only: alpha stands in for beta in the shape checks.
  auto in = check_inputs(alpha, alpha, domain, increase);
  in.beta = nullptr;
  const int threads = check_threads(num_threads);
  return run_pair_search(in.batch, [&](const jsma::PairOutputs& out) {
    jsma::cpu::top2_search(in, out, threads);
  });
}

py::tuple emulate_cuda_pair_search(const py::array& alpha, const py::array& beta,
                                   const py::object& domain, bool increase) {
  const auto in = check_inputs(alpha, beta, domain, increase);
  return run_pair_search(in.batch, [&](const jsma::PairOutputs& out) {
    jsma::cuda::emulate_pair_search(in, out);
  });
}

py::tuple feature_search(const py::array& alpha, const py::array& beta,
                         const py::object& domain, bool increase, int64_t num_threads) {
  const auto in = check_inputs(alpha, beta, domain, increase);
  const int threads = check_threads(num_threads);
  py::array_t<int64_t> index(in.batch);
  py::array_t<float> score(in.batch);
  py::array_t<bool> valid(in.batch);
  const jsma::FeatureOutputs out{index.mutable_data(), score.mutable_data(),
                                 reinterpret_cast<uint8_t*>(valid.mutable_data())};
  {
    py::gil_scoped_release release;
    jsma::cpu::feature_search(in, out, threads);
  }
  return py::make_tuple(index, score, valid);
}

py::array_t<float> saliency_map(const py::array& alpha, const py::array& beta,
                                const py::object& domain, bool increase, int64_t num_threads) {
  const auto in = check_inputs(alpha, beta, domain, increase);
  const int threads = check_threads(num_threads);
  py::array_t<float> map({in.batch, in.m});
  float* out = map.mutable_data();
  {
    py::gil_scoped_release release;
    jsma::cpu::saliency_map(in, out, threads);
  }
  return map;
}

py::dict build_info() {
  py::dict info;
  info["version"] = JSMA_FAST_VERSION;
  info["compiler"] = JSMA_FAST_COMPILER;
  info["build_type"] = JSMA_FAST_BUILD_TYPE;
  info["native_build"] = static_cast<bool>(JSMA_FAST_NATIVE_BUILD);
  info["sanitizers"] = JSMA_FAST_SANITIZE_BUILD ? "address,undefined" : "";
  info["simd_compiled"] = JSMA_FAST_SIMD_COMPILED;
  info["simd_runtime"] = jsma::cpu::simd_level_name(jsma::cpu::best_simd_level());
#if defined(_OPENMP)
  info["openmp"] = true;
  info["openmp_version"] = JSMA_FAST_OPENMP_VERSION;
  info["openmp_max_threads"] = omp_get_max_threads();
#else
  info["openmp"] = false;
  info["openmp_version"] = "";
  info["openmp_max_threads"] = 1;
#endif
#if defined(JSMA_FAST_WITH_CUDA)
  info["cuda_built"] = true;
  info["cuda_compiler"] = JSMA_FAST_CUDA_COMPILER;
  info["cuda_architectures"] = JSMA_FAST_CUDA_ARCHS;
  info["cuda_runtime_version"] = jsma::cuda::runtime_version();
#else
  info["cuda_built"] = false;
  info["cuda_compiler"] = "";
  info["cuda_architectures"] = "";
  info["cuda_runtime_version"] = 0;
#endif
  return info;
}

py::tuple cuda_device_count() {
#if defined(JSMA_FAST_WITH_CUDA)
  std::string why;
  const int count = jsma::cuda::device_count(&why);
  return py::make_tuple(count, why);
#else
  return py::make_tuple(0, std::string("jsma_fast was built without CUDA (nvcc was not found "
                                       "or JSMA_FAST_CUDA=OFF)"));
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "jsma_fast native kernels (called through jsma_fast.ops)";
  m.def("pair_search", &pair_search<false>, py::arg("alpha"), py::arg("beta"), py::arg("domain"),
        py::arg("increase"), py::arg("num_threads"), py::arg("simd") = "auto",
        "Exhaustive pair search. Returns (p, q, score, valid), each of shape (batch,).");
  m.def("pair_search_pruned", &pair_search<true>, py::arg("alpha"), py::arg("beta"),
        py::arg("domain"), py::arg("increase"), py::arg("num_threads"),
        py::arg("simd") = "auto",
        "Pruned exact pair search. Returns (p, q, score, valid, candidates), each of shape "
        "(batch,); candidates counts the features whose pairs were searched.");
  m.def("top2_search", &top2_search, py::arg("alpha"), py::arg("domain"),
        py::arg("increase"), py::arg("num_threads"),
        "Top-2 rule (largest alpha, no sign conditions). Returns (p, q, score, valid).");
  m.def("feature_search", &feature_search, py::arg("alpha"), py::arg("beta"),
        py::arg("domain"), py::arg("increase"), py::arg("num_threads"),
        "Single-feature arg-max. Returns (index, score, valid), each of shape (batch,).");
  m.def("saliency_map", &saliency_map, py::arg("alpha"), py::arg("beta"), py::arg("domain"),
        py::arg("increase"), py::arg("num_threads"),
        "Single-feature saliency map, shape (batch, m).");
  m.def("_cuda_emulate_pair_search", &emulate_cuda_pair_search, py::arg("alpha"),
        py::arg("beta"), py::arg("domain"), py::arg("increase"),
        "The CUDA pair search's decomposition run on the host, in every build (for tests): "
        "host arrays in, (p, q, score, valid) out.");
  m.def("build_info", &build_info, "How this module was built.");
  m.def("cuda_device_count", &cuda_device_count,
        "(count, reason): usable CUDA devices, and why there are none.");
  m.def("simd_levels_runnable", [] {
    py::list levels;
    for (auto level : {jsma::cpu::SimdLevel::kScalar, jsma::cpu::SimdLevel::kAvx2,
                       jsma::cpu::SimdLevel::kAvx512}) {
      if (jsma::cpu::simd_level_runnable(level)) levels.append(jsma::cpu::simd_level_name(level));
    }
    return levels;
  }, "SIMD levels this build can run on this CPU, narrowest first.");
  py::class_<jsma::cpu::ShortWaits>(
      m, "ShortWaits",
      "Holds a parked OpenMP team of `spare` threads so that the runtime's threads spin "
      "briefly before they sleep, until release() (csrc/cpu/short_waits.h).")
      .def(py::init<int>(), py::arg("spare"), py::call_guard<py::gil_scoped_release>())
      .def("release", &jsma::cpu::ShortWaits::release,
           py::call_guard<py::gil_scoped_release>(), "Ends the parked team; idempotent.")
      .def_property_readonly("active", &jsma::cpu::ShortWaits::active,
                             "Whether the parked team is held.")
      .def_property_readonly("threads", &jsma::cpu::ShortWaits::threads,
                             "Threads of the parked team, the parking thread included.");
#if defined(JSMA_FAST_WITH_CUDA)
  register_cuda(m);
#endif
}
