"""The GPU pair search and the CUDA kernels.

Tests parametrized over ``device`` run the GPU pair search twice: on ``"cpu"`` as its host
emulation (the kernels' own decomposition and per-lane code from csrc/cuda/pair_tiles.h, run
on the CPU and built with or without CUDA), on ``"cuda"`` on a device, where they are skipped
without one (conftest.py); either way against the naive reference or the CPU kernel, bit for
bit. The device-independent tests of the searches run on a GPU the same way, in their own
files (test_pair_search.py, test_feature_search.py, test_top2_search.py).

The other tests check, everywhere, that a CUDA build has its CUDA functions and the clear
error for CUDA arrays where nothing can run them; and, marked ``cuda``, what only a GPU has:
sizes beyond the reference's reach, streams, several devices, CuPy and DLPack inputs,
device-pointer checks.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import reference
import torch
from helpers import (
    DEVICES,
    MODES,
    SAMPLE_SHAPE,
    assert_same,
    draw_search_inputs,
    dyadic_inputs,
    dyadic_model,
    on_device,
    random_inputs,
    search_cases,
    special_inputs,
    to_host,
)
from hypothesis import given

import jsma_fast
from jsma_fast import _C, JSMA, _cuda, ops, saliency_map, select_features, select_pairs

CUDA_BUILT = bool(_C.build_info()["cuda_built"])
needs_cuda_build = pytest.mark.skipif(not CUDA_BUILT, reason="jsma_fast built without CUDA")
CUDA_FUNCTIONS = [
    "cuda_pair_search",
    "cuda_feature_search",
    "cuda_saliency_map",
    "cuda_pair_search_workspace_bytes",
]
# Sizes around the kernels' strip (64 rows) and segment (256 columns) boundaries.
EDGE_SIZES = [1, 2, 3, 5, 31, 32, 33, 63, 64, 65, 127, 255, 256, 257, 300, 511, 513, 1025]


def gpu_pair_search(device, alpha, beta, domain, mode):
    """The GPU pair search on NumPy inputs, its results as NumPy arrays: on ``"cpu"`` the
    host emulation, on ``"cuda"`` the CUDA kernels (outputs asserted to be on the device)."""
    if device == "cpu":
        return list(_C._cuda_emulate_pair_search(alpha, beta, domain, mode == "increase"))
    gpu = select_pairs(*on_device(device, alpha, beta, domain), mode=mode, method="exact")
    return to_host(gpu, device)


def cpu_pairs(alpha, beta, domain, mode):
    """The exhaustive CPU search: the reference where the naive one would be too slow."""
    return select_pairs(alpha, beta, domain, mode=mode, method="exact")


def to_gpu(x, device="cuda"):
    return on_device(device, x)[0]


def gpu_pairs(alpha, beta, domain, mode, method="exact"):
    return select_pairs(to_gpu(alpha), to_gpu(beta), to_gpu(domain), mode=mode, method=method)


def assert_gpu_equals_cpu(got, expected):
    """Results on the GPU equal to ``expected`` (host arrays): dtypes, shapes, bits."""
    assert_same(to_host(got, "cuda"), expected)


# ------------------------------------------------------------------ everywhere


def test_cuda_functions_exist_exactly_when_cuda_is_built():
    for name in CUDA_FUNCTIONS:
        assert hasattr(_C, name) == CUDA_BUILT, name


def test_host_emulation_is_in_every_build():
    assert hasattr(_C, "_cuda_emulate_pair_search")


class FakeCudaArray:
    """Claims CUDA memory it does not have; must be refused before any pointer is used."""

    def __init__(self, shape=(2, 5), typestr="<f4"):
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (0xDEAD0000, False),
            "strides": None,
            "version": 3,
        }


class FakeDlpackArray:
    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0


def test_cuda_arrays_are_recognised():
    assert _cuda.is_cuda_array(FakeCudaArray())
    assert _cuda.is_cuda_array(FakeDlpackArray())
    assert not _cuda.is_cuda_array(np.zeros((2, 5), np.float32))
    assert not _cuda.is_cuda_array(torch.zeros(2, 5))
    assert not _cuda.is_cuda_array(torch.zeros(2, 5, device="meta"))
    assert not _cuda.is_cuda_array(None)


@pytest.mark.skipif(jsma_fast.cuda_available(), reason="a CUDA device is present")
@pytest.mark.parametrize("fake", [FakeCudaArray, FakeDlpackArray])
def test_cuda_array_without_usable_cuda_is_a_clear_error(fake):
    expected = (
        r"alpha is on a CUDA device but (jsma_fast was built without CUDA"
        r"|no CUDA device is usable: .+)"
    )
    for call in (select_pairs, select_features, saliency_map):
        with pytest.raises(RuntimeError, match=expected):
            call(fake(), fake())


@needs_cuda_build
def test_cuda_binding_checks_sizes_and_pointers_before_touching_a_device():
    with pytest.raises(ValueError, match=r"batch and m must be >= 0"):
        _C.cuda_pair_search(1, 1, 0, -1, 5, True, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"alpha and beta must be non-null"):
        _C.cuda_pair_search(0, 0, 0, 2, 5, True, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"output pointers must be non-null"):
        _C.cuda_feature_search(1, 1, 0, 2, 5, True, 0, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"device must be >= 0"):
        _C.cuda_saliency_map(1, 1, 0, 2, 5, True, 1, -1, 0)


@needs_cuda_build
def test_pair_workspace_is_small_and_bounded():
    # One float per 16,384 pairs, never M^2, and at most 256 MiB per launch.
    assert _C.cuda_pair_search_workspace_bytes(0, 784) == 0
    assert _C.cuda_pair_search_workspace_bytes(5, 0) == 0
    assert _C.cuda_pair_search_workspace_bytes(1000, 784) == 1000 * 13 * (1 + 4) * 4
    big = _C.cuda_pair_search_workspace_bytes(1, 150528)
    assert big == 2352 * (1 + 588) * 4 and big < 150528**2 // 1000
    assert _C.cuda_pair_search_workspace_bytes(4096, 150528) <= 256 * 2**20


# ------------------------------------------------------------------ the GPU pair search


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [0] + EDGE_SIZES)
def test_gpu_search_matches_reference(device, mode, m, rng):
    for make in (
        lambda: random_inputs(rng, 6, m, ties=True),
        lambda: special_inputs(rng, 6, m),
        lambda: random_inputs(rng, 6, m),
    ):
        alpha, beta, domain = make()
        for dom in (domain, None):
            got = gpu_pair_search(device, alpha, beta, dom, mode)
            assert_same(got, reference.select_pairs(alpha, beta, dom, mode))


@pytest.mark.parametrize("device", DEVICES)
@given(**search_cases(1, 300))
def test_gpu_search_property_based(device, data, batch, m, mode):
    alpha, beta, domain = draw_search_inputs(data, batch, m)
    got = gpu_pair_search(device, alpha, beta, domain, mode)
    assert_same(got, cpu_pairs(alpha, beta, domain, mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [3000, 4099])
def test_gpu_search_matches_cpu_on_larger_inputs(device, m, rng):
    for ties in (True, False):
        alpha, beta, domain = random_inputs(rng, 2, m, ties=ties)
        got = gpu_pair_search(device, alpha, beta, domain, "increase")
        assert_same(got, cpu_pairs(alpha, beta, domain, "increase"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [300, 5000])
def test_gpu_search_ties_pick_the_first_pair(device, m):
    alpha = np.full((3, m), 0.5, dtype=np.float32)
    beta = np.full((3, m), -0.5, dtype=np.float32)
    domain = np.ones((3, m), dtype=bool)
    domain[1, :70] = False  # the first usable pair lies in the second strip
    domain[2, [0, 2, 3]] = False
    p, q, score, valid = gpu_pair_search(device, alpha, beta, domain, "increase")
    assert valid.all() and p.tolist() == [0, 70, 1] and q.tolist() == [1, 71, 4]
    assert score.tolist() == [1.0, 1.0, 1.0]
    # The winner is planted near the end, past the first segment.
    alpha[0, [m - 50, m - 1]] = 2.0
    beta[0, [m - 50, m - 1]] = -2.0
    p, q, score, valid = gpu_pair_search(device, alpha, beta, None, "increase")
    assert (p[0], q[0], score[0]) == (m - 50, m - 1, 16.0)


# ------------------------------------------------------ the pruned search of CUDA arrays


def host_route(alpha, beta, domain, mode, batch_shape=None):
    """The route of CUDA arrays to the pruned search (copies to the host, the CPU search,
    results back to the inputs' device), taken by torch CPU tensors: NumPy results."""
    searcher = ops.Searcher.resolve(method="pruned")
    tensors = [None if x is None else torch.from_numpy(x) for x in (alpha, beta, domain)]
    if batch_shape is not None:
        tensors = [None if x is None else x.reshape(*batch_shape, -1) for x in tensors]
    search = functools.partial(searcher._pruned_on_host, increase=mode == "increase")
    results = _cuda.search_on_host(*tensors, search)
    assert all(isinstance(x, torch.Tensor) and x.device.type == "cpu" for x in results)
    return [x.numpy() for x in results]


def cpu_pruned(alpha, beta, domain, mode):
    selection, candidates = select_pairs(
        alpha, beta, domain, mode=mode, method="pruned", return_candidates=True
    )
    return [*selection, candidates]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [0, 1, 2, 65, 300, 4096])
def test_host_route_equals_the_cpu_pruned_search(mode, m, rng):
    for make in (
        lambda: random_inputs(rng, 5, m, ties=True),
        lambda: special_inputs(rng, 5, m),
        lambda: random_inputs(rng, 5, m),
    ):
        alpha, beta, domain = make()
        for dom in (domain, None, None if domain is None else domain.astype(np.uint8)):
            assert_same(host_route(alpha, beta, dom, mode), cpu_pruned(alpha, beta, dom, mode))


def test_host_route_keeps_the_results_flat_for_the_caller_to_shape(rng):
    alpha, beta, domain = random_inputs(rng, 12, 90, ties=True)
    got = host_route(alpha, beta, domain, "increase", batch_shape=(4, 3))
    assert all(x.shape == (12,) for x in got)
    assert_same(got, cpu_pruned(alpha, beta, domain, "increase"))


def auto_edge():
    """``"auto"``'s edge on CUDA arrays: its fewest features, and the fewest rows of that many
    features that reach its pairs."""
    edge, pairs = _cuda.AUTO_PRUNED_MIN_FEATURES, _cuda.AUTO_PRUNED_MIN_PAIRS
    return edge, -(-pairs // (edge * (edge - 1) // 2))


def test_auto_on_cuda_arrays_goes_pruned_for_many_features_and_pairs():
    edge, rows_at_edge = auto_edge()
    assert edge > ops.AUTO_PRUNED_MIN_FEATURES
    assert _cuda.auto_picks_pruned(rows_at_edge, edge)
    assert not _cuda.auto_picks_pruned(rows_at_edge - 1, edge)
    assert not _cuda.auto_picks_pruned(10**6, edge - 1)
    assert _cuda.auto_picks_pruned(1, 150_528) and not _cuda.auto_picks_pruned(1000, 784)
    assert "auto_picks_pruned" in _cuda.select_pairs.__doc__


@pytest.mark.cuda
@pytest.mark.parametrize("batch, m", [(1000, 784), (256, 3072), (1, 150528), (0, 784), (2, 0)])
def test_pruned_on_cuda_equals_the_cpu_pruned_search(batch, m, rng):
    for ties in (False, True):
        alpha, beta, domain = random_inputs(rng, batch, m, ties=ties)
        for mode in MODES:
            selection, candidates = select_pairs(
                *on_device("cuda", alpha, beta, domain),
                mode=mode,
                method="pruned",
                return_candidates=True,
            )
            assert_gpu_equals_cpu([*selection, candidates], cpu_pruned(alpha, beta, domain, mode))


@pytest.mark.cuda
def test_auto_on_cuda_arrays_turns_pruned_at_the_threshold(rng):
    edge, rows_at_edge = auto_edge()
    for batch, m, method in (
        (rows_at_edge - 1, edge, "exact"),
        (rows_at_edge, edge, "pruned"),
        (rows_at_edge + 1, edge - 1, "exact"),
    ):
        alpha, beta, domain = random_inputs(rng, batch, m, ties=True)
        got, candidates = select_pairs(
            *on_device("cuda", alpha, beta, domain), return_candidates=True
        )
        want, want_candidates = select_pairs(
            alpha, beta, domain, method=method, return_candidates=True
        )
        assert_gpu_equals_cpu([*got, candidates], [*want, want_candidates])


def search_on_a_side_stream(alpha, beta, domain, method, wait=False):
    """``select_pairs(mode="decrease", method=method)`` on a side stream, on an alpha written
    on that stream just before (after ``wait``: a sleep queued there first); asserts that the
    inputs on the device are unchanged, and returns the results."""
    a, b, d = to_gpu(alpha), to_gpu(beta), to_gpu(domain)
    copies = [x.clone() for x in (a, b, d)]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # the copies above ran on the default stream
    with torch.cuda.stream(stream):
        if wait:
            torch.cuda._sleep(10_000_000)
        # Inputs written on the side stream right before the search must be seen by it.
        a2 = a * 1.0
        got = select_pairs(a2, b, d, mode="decrease", method=method)
    stream.synchronize()
    for before, after in zip(copies, (a, b, d)):
        assert torch.equal(before, after)
    return got


@pytest.mark.cuda
def test_pruned_on_cuda_waits_for_the_callers_stream_and_keeps_inputs(rng):
    alpha, beta, domain = random_inputs(rng, 64, 5000, ties=True)
    got = search_on_a_side_stream(alpha, beta, domain, "pruned", wait=True)
    assert_gpu_equals_cpu(got, cpu_pruned(alpha, beta, domain, "decrease")[:4])


@pytest.mark.cuda
def test_pruned_on_cupy_arrays_gives_cupy_results(rng):
    cupy = pytest.importorskip("cupy")
    alpha, beta, domain = random_inputs(rng, 9, 5000, ties=True)
    got = select_pairs(cupy.asarray(alpha), cupy.asarray(beta), cupy.asarray(domain), method="auto")
    assert all(isinstance(x, cupy.ndarray) for x in got)
    for g, e in zip(got, cpu_pruned(alpha, beta, domain, "increase")):
        np.testing.assert_array_equal(cupy.asnumpy(g), e)


# ------------------------------------------------------------------ on a GPU only


@pytest.mark.cuda
@pytest.mark.parametrize(
    "batch, m",
    [(1000, 784), (256, 3072), (1, 150528), (3, 4097), (7, 1031), (0, 784), (1000, 1), (2, 0)],
)
def test_pairs_match_cpu_at_benchmark_and_odd_sizes(batch, m, rng):
    for ties in (False, True):
        alpha, beta, domain = random_inputs(rng, batch, m, ties=ties)
        for mode in MODES:
            assert_gpu_equals_cpu(
                gpu_pairs(alpha, beta, domain, mode), cpu_pairs(alpha, beta, domain, mode)
            )


@pytest.mark.cuda
def test_pair_index_past_int32(rng):
    # 46,341^2 overflows int32; the best pair is planted past that linear index.
    m = 46_500
    alpha = rng.uniform(-1, 1, (1, m)).astype(np.float32)
    beta = rng.uniform(-1, 1, (1, m)).astype(np.float32)
    alpha[0, [46_400, 46_499]] = 3.0
    beta[0, [46_400, 46_499]] = -3.0
    got = gpu_pairs(alpha, beta, None, "increase")
    assert (int(got.p[0]), int(got.q[0])) == (46_400, 46_499)
    assert_gpu_equals_cpu(got, cpu_pairs(alpha, beta, None, "increase"))


@pytest.mark.cuda
def test_inputs_are_not_modified_and_stream_is_respected(rng):
    alpha, beta, domain = random_inputs(rng, 64, 1000, ties=True)
    got = search_on_a_side_stream(alpha, beta, domain, "exact")
    assert_gpu_equals_cpu(got, cpu_pairs(alpha, beta, domain, "decrease"))


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device(rng):
    alpha, beta, domain = random_inputs(rng, 5, 500, ties=True)
    got = select_pairs(to_gpu(alpha, "cuda:1"), to_gpu(beta, "cuda:1"), to_gpu(domain, "cuda:1"))
    assert got.p.device == torch.device("cuda:1")
    assert_gpu_equals_cpu(got, cpu_pairs(alpha, beta, domain, "increase"))


@pytest.mark.cuda
def test_cupy_in_cupy_out(rng):
    cupy = pytest.importorskip("cupy")
    alpha, beta, domain = random_inputs(rng, 9, 333, ties=True)
    ca, cb, cd = cupy.asarray(alpha), cupy.asarray(beta), cupy.asarray(domain)
    got = select_pairs(ca, cb, cd, mode="decrease")
    assert all(isinstance(x, cupy.ndarray) for x in got)
    expected = cpu_pairs(alpha, beta, domain, "decrease")
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(cupy.asnumpy(g), e)
    feats = select_features(ca, cb, cd)
    for g, e in zip(feats, select_features(alpha, beta, domain)):
        np.testing.assert_array_equal(cupy.asnumpy(g), e)
    np.testing.assert_array_equal(cupy.asnumpy(saliency_map(ca, cb)), saliency_map(alpha, beta))
    with pytest.raises(ValueError, match=r"alpha must be C-contiguous"):
        select_pairs(cupy.asarray(alpha.T.copy()).T, cupy.asarray(alpha))


@pytest.mark.cuda
def test_dlpack_producer_without_cuda_array_interface(rng):
    alpha, beta, domain = random_inputs(rng, 4, 200, ties=True)

    class DlpackOnly:
        def __init__(self, tensor):
            self._tensor = tensor

        def __dlpack__(self, *args, **kwargs):
            return self._tensor.__dlpack__(*args, **kwargs)

        def __dlpack_device__(self):
            return self._tensor.__dlpack_device__()

    got = select_pairs(
        DlpackOnly(to_gpu(alpha)), DlpackOnly(to_gpu(beta)), DlpackOnly(to_gpu(domain))
    )
    assert_gpu_equals_cpu(got, cpu_pairs(alpha, beta, domain, "increase"))


@pytest.mark.cuda
def test_rejects_bad_cuda_inputs():
    a = torch.zeros(2, 5, device="cuda")
    with pytest.raises(TypeError, match=r"alpha must be float32, got .*float64"):
        select_pairs(a.double(), a)
    with pytest.raises(TypeError, match=r"domain must be bool or uint8, got .*int32"):
        select_pairs(a, a, a.int())
    with pytest.raises(
        ValueError, match=r"beta must have the shape of alpha \(2, 5\), got \(2, 6\)"
    ):
        select_pairs(a, torch.zeros(2, 6, device="cuda"))
    with pytest.raises(ValueError, match=r"beta must be contiguous, got strides"):
        select_pairs(
            torch.zeros(5, 2, device="cuda").t().contiguous(), torch.zeros(5, 2, device="cuda").t()
        )
    with pytest.raises(ValueError, match=r"beta must be on the device of alpha"):
        select_pairs(a, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"domain must be on the device of alpha"):
        select_pairs(a, a, torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"beta must be the same kind of array as alpha"):
        select_pairs(a, np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"mode must be one of"):
        select_pairs(a, a, mode="up")
    host = np.zeros((2, 5), np.float32)  # a host pointer handed to the native layer
    with pytest.raises(RuntimeError, match=r"alpha must be in CUDA device memory"):
        _C.cuda_pair_search(
            host.ctypes.data,
            a.data_ptr(),
            0,
            2,
            5,
            True,
            a.data_ptr(),
            a.data_ptr(),
            a.data_ptr(),
            a.data_ptr(),
            0,
            0,
        )


# Every member of the family, in float32 where its arithmetic is exact on dyadic models.
EXACT_ATTACKS = {
    "jsma": dict(),
    "jsma, theta = -1, one feature a step": dict(theta=-1.0, saliency="single"),
    "maximal": dict(variant="maximal"),
    "top2": dict(variant="top2"),
    "pruned search": dict(method="pruned"),
}


@pytest.mark.cuda
# torch's autograd thread warns once per process when it is first to use cuBLAS
@pytest.mark.filterwarnings("ignore:Attempting to run cuBLAS:UserWarning")
@pytest.mark.parametrize("name", list(EXACT_ATTACKS))
@pytest.mark.parametrize("targets", ["random", "untargeted"])
def test_attack_on_cuda_tensors_equals_the_cpu_attack(name, targets):
    # Dyadic weights and inputs: logits and gradients are exact on either device, so the
    # attack's outputs must be too.
    model, x = dyadic_model(seed=3), dyadic_inputs(40, seed=4)
    attack = JSMA(gamma=1.0, **EXACT_ATTACKS[name])  # every feature: long runs
    cpu = attack(model, x, targets)
    gpu_model = dyadic_model(seed=3).cuda()
    x_gpu = x.cuda()
    gpu = attack(gpu_model, x_gpu, targets)
    assert gpu.x_adv.device.type == "cuda" and gpu.x_adv.shape == (40, *SAMPLE_SHAPE)
    assert torch.equal(x_gpu.cpu(), x)
    for field in ("x_adv", "success", "iterations", "l0", "predicted", "target", "stop_code"):
        assert torch.equal(getattr(gpu, field).cpu(), getattr(cpu, field)), field
