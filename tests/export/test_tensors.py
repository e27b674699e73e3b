"""`unifmir.export.tensors`: test inputs prepared so that both percentile definitions agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from unifmir.export import tensors


@pytest.mark.parametrize("pct", [(2.0, 99.8), (0.0, 100.0), (1.0, 99.0)])
@pytest.mark.parametrize("shape", [(37, 41), (5, 23, 29), (64, 64)])
def test_percentile_preparation_makes_both_definitions_agree(pct: tuple[float, float], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    x = rng.gamma(1.5, 30.0, size=shape).astype(np.float32)
    prepared = tensors.prepare_for_percentiles(x, pct)
    chk = tensors.check_percentile_agreement(prepared, pct)
    assert chk.ok, chk.describe()
    changed = np.count_nonzero(prepared != x)
    assert changed <= x.size * (pct[0] + 100 - pct[1]) / 100 + 6
    raw = tensors.check_percentile_agreement(x, (2.0, 99.8))
    assert not raw.ok or x.size < 100  # unprepared data generally disagree
