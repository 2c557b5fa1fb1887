"""The saliency searches of JSMA, computed by the native kernels of ``_C`` (on CUDA arrays
through :mod:`jsma_fast._cuda`, which launches them; :mod:`jsma_fast._build` reads the build
information from ``_C`` too).

Every search follows one contract (see ``docs/kernel-contract.md``). For each sample, with
``alpha`` the derivative of the target class and ``beta`` the summed derivative of the other
classes:

* a pair (p, q), p < q, both in the search domain, *qualifies* in ``"increase"`` mode when
  ``A = alpha[p] + alpha[q] > 0`` and ``B = beta[p] + beta[q] < 0`` (``"decrease"``: A < 0 and
  B > 0); its score is ``-(A * B)`` in float32;
* the answer is the qualifying pair with the largest score, ties to the smallest p, then the
  smallest q (the first arg-max of the row-major M x M score matrix);
* when no pair qualifies with a score > 0, ``valid`` is False and p = q = -1;
* NaN never qualifies; indices are int64; nothing of size M^2 is allocated.

The single-feature versions apply the same rules to one feature (the paper's S(x, t)).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from . import _C, _checks, _cuda
from ._arrays import convert_inputs
from ._openmp import usable_cpus

__all__ = [
    "PairSelection",
    "FeatureSelection",
    "select_pairs",
    "select_features",
    "select_top2",
    "saliency_map",
    "default_num_threads",
    "MODES",
    "PAIR_METHODS",
    "AUTO_PRUNED_MIN_FEATURES",
]

MODES = _checks.MODES
PAIR_METHODS = ("exact", "pruned", "auto")
# "auto" uses the pruned search from this many features on; below it the exhaustive search
# is as fast (measured by bench/bench_pruned.py) and bit-for-bit.
AUTO_PRUNED_MIN_FEATURES = 64
SIMD_LEVELS = _checks.SIMD_LEVELS


class PairSelection(NamedTuple):
    """Result of :func:`select_pairs`; each field has the inputs' batch shape ``(...)``."""

    p: Any  #: int64, first feature of the best pair (-1 when not valid)
    q: Any  #: int64, second feature, p < q (-1 when not valid)
    score: Any  #: float32, -(A * B) of the pair (0 when not valid)
    valid: Any  #: bool, whether any pair qualifies


class FeatureSelection(NamedTuple):
    """Result of :func:`select_features`; each field has the inputs' batch shape ``(...)``."""

    index: Any  #: int64, the best feature (-1 when not valid)
    score: Any  #: float32, its saliency (0 when not valid)
    valid: Any  #: bool, whether any feature qualifies


def default_num_threads() -> int:
    """Threads for the CPU kernels: PyTorch's setting when torch is loaded, else the CPUs
    this process may run on, so that the host process is not oversubscribed."""
    torch = sys.modules.get("torch")
    if torch is not None:
        threads = int(torch.get_num_threads())
    else:
        threads = usable_cpus()
    return min(max(1, threads), _checks.MAX_THREADS)


@functools.lru_cache(maxsize=None)
def _runnable_simd() -> Tuple[str, ...]:
    return tuple(_C.simd_levels_runnable())


def _check_threads(num_threads: Optional[int]) -> int:
    threads = _checks.check_threads(num_threads)
    return default_num_threads() if threads is None else threads


def select_pairs(
    alpha: Any,
    beta: Any,
    domain: Any = None,
    *,
    mode: str = "increase",
    method: str = "auto",
    num_threads: Optional[int] = None,
    simd: Optional[str] = None,
    return_candidates: bool = False,
) -> Any:
    """Finds the pair of features with the largest pairwise saliency, per sample.

    Args:
        alpha: ``(..., M)`` float32, derivative of the target-class output per feature.
        beta: ``(..., M)`` float32, summed derivative of the other classes' outputs.
        domain: ``(..., M)`` bool or uint8, True for features that may be chosen (None: all).
        mode: ``"increase"`` (features will be increased) or ``"decrease"``.
        method: ``"exact"`` (exhaustive search, the bit-for-bit reference), ``"pruned"``
            (searches only the pairs among features dominated by fewer than two others; the
            same maximal score, and the same pair unless several pairs have exactly that
            score, see ``docs/pruned-search.md``) or ``"auto"`` (pruned from
            ``AUTO_PRUNED_MIN_FEATURES`` features on, else exact; on CUDA arrays pruned
            where ``jsma_fast._cuda.auto_picks_pruned``: many features and many pairs).
        num_threads: CPU threads, 1 to 1024 (any integer type); default
            :func:`default_num_threads`. In a forked child process the kernels run on one
            thread (see ``docs/reliability.md``). On CUDA arrays, the pruned search's.
        simd: force an instruction set (``"scalar"``, ``"avx2"``, ``"avx512"``) for testing
            and benchmarking; default ``"auto"`` or the ``JSMA_FAST_SIMD`` variable. On CUDA
            arrays, the pruned search's.
        return_candidates: also return, per sample, how many features the pair search ran
            over (int64, batch shape): the survivors for the pruned search, all usable
            (in-domain, non-NaN) features when it searched exhaustively.

    Returns:
        :class:`PairSelection` of arrays with the batch shape ``(...)``, of the same kind as
        ``alpha`` (torch tensors or NumPy arrays); with ``return_candidates=True`` the
        tuple ``(selection, candidates)``.

    CUDA arrays get their results on their device. The exhaustive search runs there, the
    exact method's answer bit for bit; the pruned search runs on host copies of the rows
    (copied on the caller's stream, which it waits for), the CPU's answer bit for bit.

    Example:
        >>> import numpy as np
        >>> a = np.array([[0.5, -0.1, 0.3]], dtype=np.float32)
        >>> b = np.array([[-0.2, 0.4, -0.6]], dtype=np.float32)
        >>> sel = select_pairs(a, b)
        >>> int(sel.p[0]), int(sel.q[0]), bool(sel.valid[0])
        (0, 2, True)
    """
    increase = _checks.check_mode(mode)
    searcher = Searcher.resolve(method=method, num_threads=num_threads, simd=simd)
    return_candidates = _checks.check_bool(return_candidates, "return_candidates")
    return searcher.pairs(alpha, beta, domain, increase, return_candidates)


@dataclass(frozen=True)
class Searcher:
    """The searches with their settings checked and resolved once: the public functions
    build one per call, the attack's loop one per attack and calls it on every step. The
    arrays are still converted and checked (``convert_inputs``) on each call.

    Attributes:
        method: ``"auto"``, ``"exact"`` or ``"pruned"`` (see :func:`select_pairs`).
        threads: CPU threads, resolved (:func:`default_num_threads` when none was given).
        simd: the instruction set of the pair searches, ``"auto"`` or a forced level.
    """

    method: str
    threads: int
    simd: str

    @classmethod
    def resolve(
        cls, *, method: str = "auto", num_threads: Optional[int] = None, simd: Optional[str] = None
    ) -> "Searcher":
        """Checks the settings, naming the argument, and resolves their defaults."""
        return cls(
            _checks.check_choice(method, "method", PAIR_METHODS),
            _check_threads(num_threads),
            _checks.check_simd(simd, _runnable_simd()),
        )

    def pairs(
        self, alpha: Any, beta: Any, domain: Any, increase: bool, return_candidates: bool = False
    ) -> Any:
        """:func:`select_pairs` (its return value) with these settings."""
        if _cuda.is_cuda_array(alpha):
            gpu, candidates = _cuda.select_pairs(
                alpha,
                beta,
                domain,
                increase,
                return_candidates,
                method=self.method,
                host_search=functools.partial(self._pruned_on_host, increase=increase),
            )
            return (PairSelection(*gpu), candidates) if return_candidates else PairSelection(*gpu)
        inputs = convert_inputs(alpha, beta, domain)
        return _select_pairs_cpu(
            inputs, increase, self.method, self.threads, self.simd, return_candidates
        )

    def _pruned_on_host(
        self, alpha: np.ndarray, beta: np.ndarray, domain: Optional[np.ndarray], increase: bool
    ) -> Tuple[np.ndarray, ...]:
        """The CPU pruned search on (B, M) host rows: (p, q, score, valid, candidates)."""
        return tuple(_C.pair_search_pruned(alpha, beta, domain, increase, self.threads, self.simd))

    def top2(self, alpha: Any, domain: Any, increase: bool) -> PairSelection:
        """:func:`select_top2` with these settings."""
        if _cuda.is_cuda_array(alpha):
            return PairSelection(*_cuda.select_top2(alpha, domain, increase))
        inputs = convert_inputs(alpha, alpha, domain)  # the rule reads alpha only
        p, q, score, valid = _C.top2_search(inputs.alpha, inputs.domain, increase, self.threads)
        return PairSelection(inputs.wrap(p), inputs.wrap(q), inputs.wrap(score), inputs.wrap(valid))

    def features(self, alpha: Any, beta: Any, domain: Any, increase: bool) -> FeatureSelection:
        """:func:`select_features` with these settings."""
        if _cuda.is_cuda_array(alpha):
            return FeatureSelection(*_cuda.select_features(alpha, beta, domain, increase))
        inputs = convert_inputs(alpha, beta, domain)
        index, score, valid = _C.feature_search(
            inputs.alpha, inputs.beta, inputs.domain, increase, self.threads
        )
        return FeatureSelection(inputs.wrap(index), inputs.wrap(score), inputs.wrap(valid))


def _select_pairs_cpu(
    inputs: Any, increase: bool, method: str, threads: int, simd: str, return_candidates: bool
) -> Any:
    """:func:`select_pairs` on checked, converted CPU inputs (:func:`convert_inputs`)."""
    if method == "auto":
        method = "pruned" if inputs.alpha.shape[1] >= AUTO_PRUNED_MIN_FEATURES else "exact"
    if method == "pruned":
        p, q, score, valid, candidates = _C.pair_search_pruned(
            inputs.alpha, inputs.beta, inputs.domain, increase, threads, simd
        )
    else:
        p, q, score, valid = _C.pair_search(
            inputs.alpha, inputs.beta, inputs.domain, increase, threads, simd
        )
        candidates = _usable_features(inputs) if return_candidates else None
    selection = PairSelection(
        inputs.wrap(p), inputs.wrap(q), inputs.wrap(score), inputs.wrap(valid)
    )
    if return_candidates:
        return selection, inputs.wrap(candidates)
    return selection


def _usable_features(inputs: Any) -> Any:
    """Per sample, the features the exhaustive search runs over: in the domain, not NaN."""
    usable = ~(np.isnan(inputs.alpha) | np.isnan(inputs.beta))
    if inputs.domain is not None:
        usable &= inputs.domain.astype(bool)
    return usable.sum(axis=1, dtype=np.int64)


def select_top2(
    alpha: Any,
    domain: Any = None,
    *,
    mode: str = "increase",
    num_threads: Optional[int] = None,
) -> PairSelection:
    """The top-2 rule (ART's ``SaliencyMapMethod``): per sample, the two features of the
    domain with the largest ``alpha`` (``"decrease"``: the smallest), with no condition on the
    other classes or on signs.

    NaN never takes part; of equal values the smaller index ranks first. ``p < q`` are the two
    features, ``score`` is ``alpha[p] + alpha[q]`` in increase form (negated for
    ``"decrease"``; it may be <= 0: the rule has no sign condition), and ``valid`` is False
    (p = q = -1, score 0) when fewer than two usable features are in the domain. Shapes and
    kinds as in :func:`select_pairs`.

    Example:
        >>> import numpy as np
        >>> sel = select_top2(np.array([[0.1, -0.4, 0.3, 0.3]], dtype=np.float32))
        >>> int(sel.p[0]), int(sel.q[0])
        (2, 3)
    """
    increase = _checks.check_mode(mode)
    return Searcher.resolve(num_threads=num_threads).top2(alpha, domain, increase)


def select_features(
    alpha: Any,
    beta: Any,
    domain: Any = None,
    *,
    mode: str = "increase",
    num_threads: Optional[int] = None,
) -> FeatureSelection:
    """Finds the feature with the largest single-feature saliency S(x, t)[i], per sample.

    A feature qualifies in ``"increase"`` mode when ``alpha[i] > 0`` and ``beta[i] < 0``
    (``"decrease"``: the opposite signs); its score is ``-(alpha[i] * beta[i])``. Ties go to
    the smallest index. Shapes and kinds as in :func:`select_pairs`.
    """
    increase = _checks.check_mode(mode)
    return Searcher.resolve(num_threads=num_threads).features(alpha, beta, domain, increase)


def saliency_map(
    alpha: Any,
    beta: Any,
    domain: Any = None,
    *,
    mode: str = "increase",
    num_threads: Optional[int] = None,
) -> Any:
    """The paper's single-feature saliency map S(x, t): ``(..., M)`` float32 holding
    ``-(alpha * beta)`` for qualifying features in the domain and 0 elsewhere."""
    increase = _checks.check_mode(mode)
    threads = _check_threads(num_threads)
    if _cuda.is_cuda_array(alpha):
        return _cuda.saliency_map(alpha, beta, domain, increase)
    inputs = convert_inputs(alpha, beta, domain)
    result = _C.saliency_map(inputs.alpha, inputs.beta, inputs.domain, increase, threads)
    return inputs.wrap(result)
