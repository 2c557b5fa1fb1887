"""torch.ops.jsma_fast.*: the native searches as PyTorch operators (opcheck, torch.compile),
and CPU DLPack producers accepted by jsma_fast.ops."""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch

import jsma_fast

HAS_CUSTOM_OP = hasattr(torch.library, "custom_op") and hasattr(torch.library, "opcheck")
if HAS_CUSTOM_OP:
    import jsma_fast.torch_ops  # noqa: F401  (registers torch.ops.jsma_fast.*)

needs_ops = pytest.mark.skipif(not HAS_CUSTOM_OP, reason="torch.library.custom_op needs torch>=2.4")

# Importing torch._inductor on torch 2.13 warns about its own use of torch.jit.script_method.
INDUCTOR_IMPORT_WARNING = "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"


def _inputs(batch_shape, m, seed, nan=False):
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.randn(batch_shape + (m,), generator=gen)
    beta = torch.randn(batch_shape + (m,), generator=gen)
    domain = torch.rand(batch_shape + (m,), generator=gen) > 0.25
    if nan:
        alpha.view(-1)[::7] = float("nan")
    return alpha, beta, domain


def _opcheck_cases():
    a, b, d = _inputs((3,), 40, 1)
    a3, b3, d3 = _inputs((2, 3), 17, 2, nan=True)
    return [
        (a, b, d, True),
        (a, b, None, False),
        (a3, b3, d3.to(torch.uint8), True),
        (a[:, ::2], b[:, ::2], d[:, ::2], False),  # strided inputs
        (a[:, :1], b[:, :1], None, True),  # one feature: never a pair
    ]


@needs_ops
@pytest.mark.parametrize("case", range(5))
def test_opcheck(case):
    args = _opcheck_cases()[case]
    torch.library.opcheck(torch.ops.jsma_fast.select_pairs.default, args)
    torch.library.opcheck(torch.ops.jsma_fast.select_pairs.default, args, {"method": "exact"})
    torch.library.opcheck(torch.ops.jsma_fast.select_features.default, args)
    torch.library.opcheck(torch.ops.jsma_fast.saliency_map.default, args)


@needs_ops
@pytest.mark.parametrize("increase", [True, False])
def test_ops_match_reference_and_jsma_fast_ops(increase):
    alpha, beta, domain = _inputs((5,), 33, 3)
    mode = "increase" if increase else "decrease"
    p, q, score, valid = torch.ops.jsma_fast.select_pairs(alpha, beta, domain, increase, "exact")
    rp, rq, rscore, rvalid = reference.select_pairs(
        alpha.numpy(), beta.numpy(), domain.numpy(), mode
    )
    assert p.dtype == q.dtype == torch.int64
    assert score.dtype == torch.float32 and valid.dtype == torch.bool
    np.testing.assert_array_equal(score.numpy(), rscore)
    np.testing.assert_array_equal(valid.numpy(), rvalid)
    np.testing.assert_array_equal(p.numpy(), rp)
    np.testing.assert_array_equal(q.numpy(), rq)

    index, fscore, fvalid = torch.ops.jsma_fast.select_features(alpha, beta, domain, increase)
    ri, rs, rv = reference.select_features(alpha.numpy(), beta.numpy(), domain.numpy(), mode)
    np.testing.assert_array_equal(index.numpy(), ri)
    np.testing.assert_array_equal(fscore.numpy(), rs)
    np.testing.assert_array_equal(fvalid.numpy(), rv)

    smap = torch.ops.jsma_fast.saliency_map(alpha, beta, domain, increase)
    expected = jsma_fast.saliency_map(alpha, beta, domain, mode=mode)
    assert torch.equal(smap, expected)


@needs_ops
def test_batch_shape_and_default_method():
    alpha, beta, domain = _inputs((2, 3), 80, 4)
    p, q, score, valid = torch.ops.jsma_fast.select_pairs(alpha, beta, domain, True)
    assert p.shape == q.shape == score.shape == valid.shape == (2, 3)
    sel = jsma_fast.select_pairs(alpha, beta, domain, mode="increase", method="auto")
    assert torch.equal(score, sel.score) and torch.equal(valid, sel.valid)


@needs_ops
def test_errors_name_the_argument():
    alpha, beta, domain = _inputs((2,), 8, 5)
    with pytest.raises(TypeError, match="alpha must be float32"):
        torch.ops.jsma_fast.select_pairs(alpha.double(), beta, domain, True)
    with pytest.raises(ValueError, match="beta must have the shape of alpha"):
        torch.ops.jsma_fast.select_pairs(alpha, beta[:, :4], domain, True)
    with pytest.raises(TypeError, match="domain must be bool or uint8"):
        torch.ops.jsma_fast.select_features(alpha, beta, domain.float(), True)
    with pytest.raises(ValueError, match="method must be one of"):
        torch.ops.jsma_fast.select_pairs(alpha, beta, domain, True, "fastest")


def _search(x, w, domain):
    """A traced function around the operators: derivatives from a toy linear model, then the
    pair, the feature and the map."""
    alpha = x * w
    beta = -(x * w.flip(0)) + 0.25
    p, q, score, valid = torch.ops.jsma_fast.select_pairs(alpha, beta, domain, True)
    index, fscore, fvalid = torch.ops.jsma_fast.select_features(alpha, beta, domain, False)
    smap = torch.ops.jsma_fast.saliency_map(alpha, beta, domain, True)
    return torch.where(valid, p * 1000 + q, -1), score * 2, index, fscore, fvalid, smap + 1


def _compare_compiled(compiled):
    for seed, (n, m) in enumerate([(4, 30), (6, 50)]):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, m, generator=gen)
        w = torch.randn(m, generator=gen)
        domain = torch.rand(n, m, generator=gen) > 0.2
        eager = _search(x, w, domain)
        traced = compiled(x, w, domain)
        for got, want in zip(traced, eager):
            assert torch.equal(got, want)


@needs_ops
def test_torch_compile_fullgraph_aot_eager():
    torch._dynamo.reset()
    _compare_compiled(torch.compile(_search, fullgraph=True, backend="aot_eager"))


@needs_ops
@pytest.mark.slow
@pytest.mark.filterwarnings(INDUCTOR_IMPORT_WARNING)
def test_torch_compile_fullgraph_inductor():
    torch._dynamo.reset()
    _compare_compiled(torch.compile(_search, fullgraph=True, dynamic=False))


def test_old_torch_gets_a_clear_import_error(monkeypatch):
    import importlib
    import sys

    monkeypatch.setattr(torch, "__version__", "2.3.1")
    monkeypatch.delitem(sys.modules, "jsma_fast.torch_ops", raising=False)
    with pytest.raises(ImportError, match=r"jsma_fast.torch_ops needs torch>=2.4"):
        importlib.import_module("jsma_fast.torch_ops")


class _CpuDLPack:
    """A minimal non-NumPy, non-torch DLPack producer on the CPU (as a JAX CPU array is)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_cpu_dlpack_producers_give_numpy_results():
    alpha, beta, domain = (t.numpy() for t in _inputs((4,), 20, 6))
    sel = jsma_fast.select_pairs(
        _CpuDLPack(alpha), _CpuDLPack(beta), _CpuDLPack(domain), method="exact"
    )
    want = jsma_fast.select_pairs(alpha, beta, domain, method="exact")
    for got, expected in zip(sel, want):
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, expected)
    feat = jsma_fast.select_features(_CpuDLPack(alpha), _CpuDLPack(beta))
    np.testing.assert_array_equal(feat.index, jsma_fast.select_features(alpha, beta).index)
    with pytest.raises(TypeError, match="alpha must be float32"):
        jsma_fast.select_pairs(_CpuDLPack(alpha.astype(np.float64)), _CpuDLPack(beta))
