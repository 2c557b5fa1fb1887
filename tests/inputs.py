"""Test inputs shared by the search tests: a value pool rich in ties and special values, and
the hypothesis draw of (alpha, beta, domain)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# A small pool of values makes exact ties, cancellations and every special case likely.
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 1e-40, -1e-40, 3e38, -3e38]
POOL = [v / 4 for v in range(-8, 9)] + SPECIAL

# Any float32 (NaN and inf included), with the pool's values drawn often.
FLOAT_VALUES = st.sampled_from(POOL) | st.floats(width=32)


def draw_search_inputs(data, batch: int, m: int, *, domain_may_be_none: bool = False):
    """Draws float32 alpha, beta (batch, m) and a bool domain (batch, m) (or None)."""
    alpha = data.draw(hnp.arrays(np.float32, (batch, m), elements=FLOAT_VALUES))
    beta = data.draw(hnp.arrays(np.float32, (batch, m), elements=FLOAT_VALUES))
    domains = hnp.arrays(np.bool_, (batch, m))
    domain = data.draw(domains | st.none() if domain_may_be_none else domains)
    return alpha, beta, domain
