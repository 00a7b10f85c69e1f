"""1A.S1: overflow-safe logistic, logit composition."""

import numpy as np
import polars as pl

from engine.segments.l1.s1a.s1_hurdle import hurdle_logit, sigmoid
from tests.conftest import shipped_policy

POLICY = shipped_policy("1A", "hurdle_nb")


def test_sigmoid_is_overflow_safe_and_exact() -> None:
    x = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    with np.errstate(over="raise"):
        y = sigmoid(x)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    assert y[3] == 1.0 / (1.0 + np.exp(-1.0))
    assert y[1] + y[3] == 1.0


def test_logit_adds_policy_terms() -> None:
    feats = pl.DataFrame(
        {
            "sector": ["grocery", "digital_goods"],
            "cnp": [False, True],
            "gdp_bucket": pl.Series([0, 4], dtype=pl.UInt16),
        }
    )
    eta = hurdle_logit(feats, POLICY)
    assert eta.tolist() == [-1.90 + -0.50 + 0.50, -1.90 - 0.60 + 0.40 - 1.50]
