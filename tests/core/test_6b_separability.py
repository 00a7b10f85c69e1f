"""6B.S7's separability measures against known answers and an independent fit (scikit-learn's lbfgs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from engine.segments.l3.s6b import separability
from engine.segments.l3.s6b.separability import (
    Features,
    auc,
    evaluate,
    irls_logistic,
    oriented_auc,
    out_of_fold_rate,
)


def test_auc_known_answers() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) → 3/4
    assert auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0])) == 0.75
    # a tie between a positive and a negative counts one half: (1 + 0.5) / 2
    assert auc(np.array([0.7, 0.5, 0.5]), np.array([1, 1, 0])) == 0.75
    assert auc(np.array([1.0, 2.0]), np.array([1, 0])) == 0.0
    assert oriented_auc(np.array([1.0, 2.0]), np.array([1, 0])) == 1.0
    assert np.isnan(auc(np.array([1.0, 2.0]), np.array([1, 1])))


def test_auc_matches_pair_count_on_random_ties() -> None:
    rng = np.random.default_rng(5)
    s = rng.integers(0, 6, 300).astype(float)
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    want = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert auc(s, y) == pytest.approx(want, abs=1e-12)


def test_out_of_fold_rate_never_sees_its_own_fold() -> None:
    codes = np.array([0, 0, 1, 1, 0, 1])
    y = np.array([1, 0, 1, 1, 0, 0])
    fold = np.array([0, 1, 0, 1, 0, 1])
    got = out_of_fold_rate(codes, y, fold)
    # fold 0 rows use fold 1: code 0 → rows {1}: y 0; code 1 → rows {3, 5}: y 1, 0; prior = 1/3
    prior1 = 1 / 3
    assert got[0] == pytest.approx((0 + prior1) / 2)
    assert got[2] == pytest.approx((1 + prior1) / 3)
    # fold 1 rows use fold 0: code 0 → rows {0, 4}: y 1, 0; code 1 → row {2}: y 1; prior = 2/3
    prior0 = 2 / 3
    assert got[1] == pytest.approx((1 + prior0) / 3)
    assert got[3] == pytest.approx((1 + prior0) / 2)


def test_design_matrix_known_answer() -> None:
    """Training moments standardise the numerics; the training levels after the first become indicator
    columns, and a level the training rows never saw is all zeros."""
    feat = Features(
        numeric={"a": np.array([1.0, 2.0, 3.0, 4.0])},
        categorical={"c": np.array([0, 2, 2, 1]), "d": np.array([5, 6, 7, 5])},
        y=np.array([0, 1, 0, 1]),
        fold=np.array([0, 0, 0, 1]),
        channel=np.zeros(4, dtype=np.int64),
        log_amount=np.zeros(4),
    )
    train = np.array([True, True, True, False])
    sd = math.sqrt(2 / 3)
    want = [
        [-1 / sd, 0.0, 0.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [1 / sd, 1.0, 0.0, 1.0],
        [2 / sd, 0.0, 0.0, 0.0],
    ]
    np.testing.assert_allclose(separability.design_matrix(feat, train, np.ones(4, dtype=bool)), want)
    np.testing.assert_allclose(separability.design_matrix(feat, train, ~train), [want[3]])


def test_irls_agrees_with_sklearn_l2_logistic_regression() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2000, 4))
    eta = -1.0 + x @ np.array([1.5, -0.8, 0.0, 0.3])
    y = rng.random(2000) < 1 / (1 + np.exp(-eta))
    beta, used = irls_logistic(x, y, lam=1.0, iterations=25)
    # sklearn minimises ½‖w‖² + C·Σ log-loss, intercept unpenalised (lbfgs): the same objective at C = 1
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y)
    assert beta[0] == pytest.approx(ref.intercept_[0], abs=1e-5)
    np.testing.assert_allclose(beta[1:], ref.coef_[0], atol=1e-5)
    # Newton converges quadratically: it stops on its tolerance, well before the cap
    assert 4 <= used < 15


def test_irls_runs_to_its_cap_when_it_cannot_converge() -> None:
    x = np.array([[-1.0], [-0.5], [0.5], [1.0]])
    y = np.array([0, 0, 1, 1])  # separable: without a penalty the coefficient grows every step
    beta, used = irls_logistic(x, y, lam=0.0, iterations=12)
    assert used == 12 and beta[1] > 5.0


def test_weighted_gram_in_blocks_equals_the_exact_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(separability, "GRAM_ROWS", 7)  # 50 rows: seven full blocks and one of one row
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3))
    w = rng.random(50)
    rows = np.hstack([np.ones((50, 1)), x])
    want = [[math.fsum(w * rows[:, i] * rows[:, j]) for j in range(4)] for i in range(4)]
    np.testing.assert_allclose(separability.weighted_gram(x, w), want, rtol=1e-12, atol=1e-12)


def test_evaluate_finds_the_informative_feature() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    cat = rng.integers(0, 4, n)
    y = rng.random(n) < 1 / (1 + np.exp(-(-3 + 1.2 * signal + 0.8 * (cat == 2))))
    feat = Features(
        numeric={"signal": signal, "noise": noise},
        categorical={"cat": cat},
        y=y,
        fold=(np.arange(n) % 2).astype(np.int64),
        channel=np.zeros(n, dtype=np.int64),
        log_amount=noise,
    )
    out = evaluate(feat, {0: "POS"})
    assert out["best_single_feature"] == "POS.signal"
    assert 0.5 <= out["single_feature_auc_pooled"]["noise"] < 0.55
    assert out["model_auc"] > out["best_single_feature_auc"] > 0.7
    assert out["by_channel"]["POS"]["amount_auc"] < 0.55
    assert out["positives_test"] == int(y[1::2].sum())


def test_best_single_feature_is_taken_within_channels() -> None:
    """A feature that only tells the channels apart scores 1.0 pooled but 0.5 within each channel."""
    rng = np.random.default_rng(8)
    n = 40_000
    channel = rng.integers(0, 2, n)
    y = rng.random(n) < np.where(channel == 1, 0.2, 0.01)
    inside = rng.normal(size=n) + 0.6 * y  # a weak signal inside every channel
    feat = Features(
        numeric={"proxy": channel.astype(float), "inside": inside},
        categorical={"channel": channel},
        y=y,
        fold=(np.arange(n) % 2).astype(np.int64),
        channel=channel.astype(np.int64),
        log_amount=rng.normal(size=n),
    )
    out = evaluate(feat, {0: "POS", 1: "ECOM"})
    assert out["single_feature_auc_pooled"]["proxy"] > 0.75
    assert out["best_single_feature"] in ("POS.inside", "ECOM.inside")
    assert out["best_single_feature_auc"] < 0.7
    assert "channel" not in out["by_channel"]["ECOM"]["single_feature_auc"]
