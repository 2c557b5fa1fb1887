"""Helpers shared by the tests: what to cover (modes, SIMD levels, devices), the inputs of the
searches and of the attacks, and the comparisons of their results.

Nothing here computes an expected result: that is the references' job (reference.py,
reference_attack.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jsma_fast import _C

MODES = ["increase", "decrease"]
#: The SIMD levels of the CPU kernels that this machine can run.
SIMD_LEVELS = list(_C.simd_levels_runnable())
#: Where a search runs. The CUDA parametrizations carry the ``cuda`` mark, which conftest.py
#: turns into a skip without a device (or without a CUDA build).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# ------------------------------------------------------------------ search inputs

# A small pool of values makes exact ties, cancellations and every special case likely.
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 1e-40, -1e-40, 3e38, -3e38]
POOL = [v / 4 for v in range(-8, 9)] + SPECIAL
#: The pool's 17 finite multiples of 1/4: ties without special values.
TIES = np.array(POOL[:17], dtype=np.float32)

# Any float32 (NaN and inf included), with the pool's values drawn often.
FLOAT_VALUES = st.sampled_from(POOL) | st.floats(width=32)

SearchInputs = Tuple[np.ndarray, np.ndarray, np.ndarray]


def search_cases(min_m: int, max_m: int, **more: Any) -> Dict[str, Any]:
    """Keyword strategies for ``@given(**search_cases(...))``: ``data`` (for
    :func:`draw_search_inputs`), ``batch`` in 0..4, ``m`` in ``min_m..max_m``, ``mode``, and
    any ``more``."""
    return dict(
        data=st.data(),
        batch=st.integers(0, 4),
        m=st.integers(min_m, max_m),
        mode=st.sampled_from(MODES),
        **more,
    )


def draw_search_inputs(data, batch: int, m: int, *, domain_may_be_none: bool = False):
    """Draws float32 alpha, beta (batch, m) and a bool domain (batch, m) (or None)."""
    alpha = data.draw(hnp.arrays(np.float32, (batch, m), elements=FLOAT_VALUES))
    beta = data.draw(hnp.arrays(np.float32, (batch, m), elements=FLOAT_VALUES))
    domains = hnp.arrays(np.bool_, (batch, m))
    domain = data.draw(domains | st.none() if domain_may_be_none else domains)
    return alpha, beta, domain


def random_inputs(
    rng: np.random.Generator,
    batch: int,
    m: int,
    *,
    ties: bool = False,
    domain_density: float = 0.8,
    beta_scale: float = 1.0,
) -> SearchInputs:
    """float32 alpha, beta (batch, m), standard normal (beta times ``beta_scale``) or, with
    ``ties``, drawn from :data:`TIES`; a bool domain holding each feature with probability
    ``domain_density``."""
    if ties:
        alpha = rng.choice(TIES, size=(batch, m))
        beta = rng.choice(TIES, size=(batch, m))
    else:
        alpha = rng.standard_normal((batch, m)).astype(np.float32)
        beta = (beta_scale * rng.standard_normal((batch, m))).astype(np.float32)
    domain = rng.random((batch, m)) < domain_density
    return alpha, beta, domain


def special_inputs(rng: np.random.Generator, batch: int, m: int) -> SearchInputs:
    """Values from POOL (ties, NaN, inf, subnormals, overflow) and a random domain."""
    pool = np.array(POOL, dtype=np.float32)
    alpha = rng.choice(pool, size=(batch, m))
    beta = rng.choice(pool, size=(batch, m))
    return alpha, beta, rng.random((batch, m)) < 0.8


# ------------------------------------------------------------------ devices


def on_device(device: str, *arrays: Optional[np.ndarray]) -> list:
    """NumPy arrays as a search on ``device`` takes them: unchanged on the CPU, torch tensors
    in device memory on a GPU (None stays None)."""
    if device == "cpu":
        return list(arrays)
    return [
        None if x is None else torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in arrays
    ]


def to_host(results: Sequence[Any], device: str) -> list:
    """The fields of a search result as NumPy arrays; on a GPU, first asserts that each field
    is a torch tensor on that device."""
    if device == "cpu":
        return [np.asarray(x) for x in results]
    for x in results:
        assert isinstance(x, torch.Tensor) and x.device.type == device, type(x)
    return [x.cpu().numpy() for x in results]


# ------------------------------------------------------------------ comparisons


def assert_same(got: Sequence[Any], expected: Sequence[Any]) -> None:
    """Search results equal field by field (p, q, score, valid; index, score, valid; ...):
    same dtypes and shapes, same values bit for bit (scores as float32, inf included)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        g, e = np.asarray(g), np.asarray(e)
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        np.testing.assert_array_equal(g, e)


def load_npz(path: Path) -> Dict[str, np.ndarray]:
    """Every array of an NPZ file (results.npz, a chunk), read into memory."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def rewrite_npz(path: Path, change: Callable[[Dict[str, np.ndarray]], Any]) -> None:
    """Rewrites an NPZ file with ``change(dict of arrays)`` applied (a chunk keeps its
    ``__chunk__`` identity unless ``change`` alters it)."""
    arrays = load_npz(path)
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def assert_same_arrays(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray]) -> None:
    """Two sets of named arrays (results of two runs) equal: the same names, equal arrays."""
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


# ------------------------------------------------------------------ attack models

SAMPLE_SHAPE = (2, 3, 4)  # M = 24 features
NUM_CLASSES = 4


def dyadic_model(seed: int) -> torch.nn.Module:
    """A small ReLU network whose weights are multiples of 1/16: on inputs that are multiples
    of 1/8 its logits and gradients are exact in float32, so any summation order gives the
    same bits and exact ties between pairs are common."""
    g = torch.Generator().manual_seed(seed)
    m = int(np.prod(SAMPLE_SHAPE))
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(m, 10),
        torch.nn.ReLU(),
        torch.nn.Linear(10, NUM_CLASSES),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-8, 9, p.shape, generator=g).float() / 16)
    return model.eval()


def generic_model(seed: int) -> torch.nn.Module:
    """A small conv network with ordinary random float weights (no exact ties)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 2 * 3, 12),
        torch.nn.ReLU(),
        torch.nn.Linear(12, NUM_CLASSES),
    )
    return model.eval()


def dyadic_inputs(n: int, seed: int) -> torch.Tensor:
    """``n`` inputs of SAMPLE_SHAPE whose values are multiples of 1/8 in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 9, (n,) + SAMPLE_SHAPE, generator=g).float() / 8
