"""Benchmark (issue 11 item 4): is the default world's truth learnable, and not trivially, from what the bank
sees at authorisation? `pytest -m bench -s -k 6b_baseline`.

Independently of 6B.S7's own numpy fit, scikit-learn trains a logistic regression (one-hot categoricals,
standardised numerics) and a histogram gradient-boosting model on the AUTH columns of `transactions`
(docs/outputs.md), with a party-grouped split so no customer is on both sides. The spec's bands apply
(design layer2_3.md §4.10): model AUC ≥ 0.75 (6B.R08); within every channel with ≥ 100 test positives, each
single feature's AUC ≤ 0.75 and the amount's ≤ 0.72 (6B.R07a). The S7 report must carry its own figures and
state the same verdicts.

The world is built with `snakemake seg6B` on the default preset for seeds 42 and 7 (≈ 5 min each on 2 cores);
`ENGINE_6B_WORLD_<seed>=<root>` reuses a root already built with the same code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests.bench.worlds import default_6b_world

pytestmark = pytest.mark.bench

CATEGORICAL = [
    "channel",
    "merchant_class",
    "party_segment",
    "kyc_risk_tier",
    "instrument_type",
    "card_scheme",
    "pos_entry_mode",
    "cvm",
    "wallet",
    "eci",
    "three_ds_result",
    "cvv_result",
    "avs_result",
    "device_type",
    "device_os",
    "ip_type",
    "ip_asn_class",
]
FLAGS = [
    "is_card_present",
    "is_virtual",
    "is_cross_border",
    "is_tokenised",
    "is_recurring",
    "device_known",
    "liability_shift",
]
NUMERIC = ["log_amount", "local_hour", "weekday", "party_tenure_days", "device_n_parties", "session_seq"]
LEGIT_SAMPLE = 1 / 32  # every FRAUD/ABUSE flow and this share of LEGIT ones; AUC ignores class weights
MIN_CHANNEL_POSITIVES = 100


def features(root: Path) -> pl.DataFrame:
    """AUTH features of every positive and a hashed sample of legit flows, from every shard's part."""
    parts = str(root / "data/layer3/6B/transactions/**/scenario_id=baseline/**/*.parquet")
    keep = pl.col("is_fraud_truth") | (pl.col("flow_id").hash(seed=11) % 32 == 0)
    return (
        pl.scan_parquet(parts)
        .filter(keep)
        .select(
            "flow_id",
            pl.col("party_id").fill_null(pl.col("flow_id")).alias("group"),
            pl.col("is_fraud_truth").alias("y"),
            *[pl.col(c).cast(pl.String) for c in CATEGORICAL],
            *[pl.col(c).cast(pl.Float64) for c in FLAGS],
            ((pl.col("amount_minor") + 1).log() - pl.col("currency_exponent") * math.log(10)).alias(
                "log_amount"
            ),
            pl.col("ts_local").dt.hour().cast(pl.Float64).alias("local_hour"),
            pl.col("ts_local").dt.weekday().cast(pl.Float64).alias("weekday"),
            *[pl.col(c).cast(pl.Float64) for c in ("party_tenure_days", "device_n_parties", "session_seq")],
        )
        .collect()
        .sort("flow_id")
    )


def oriented(y: np.ndarray, score: np.ndarray) -> float:
    a = float(roc_auc_score(y, score))
    return max(a, 1.0 - a)


def single_feature_aucs(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    """Each feature's oriented test AUC: numerics as they are (null → -1), categoricals and flags by their
    training-half fraud rate (unseen levels → the training rate)."""
    y = test["y"].to_numpy()
    prior = float(train["y"].mean())  # type: ignore[arg-type]
    out: dict[str, float] = {}
    for name in NUMERIC:
        out[name] = oriented(y, test[name].fill_null(-1.0).to_numpy())
    for name in CATEGORICAL + FLAGS:
        rate = train.group_by(name).agg(((pl.col("y").sum() + prior) / (pl.len() + 1)).alias("rate"))
        scored = test.select(name).join(rate, on=name, how="left", nulls_equal=True, maintain_order="left")
        out[name] = oriented(y, scored["rate"].fill_null(prior).to_numpy())
    return out


def models(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    """Test AUC of the logistic regression and of gradient boosting."""
    to_pandas = lambda df: df.select(CATEGORICAL + FLAGS + NUMERIC).to_pandas()  # noqa: E731
    x_train, x_test = to_pandas(train), to_pandas(test)
    for frame in (x_train, x_test):
        frame[CATEGORICAL] = frame[CATEGORICAL].fillna("<null>")
    numeric = FLAGS + NUMERIC
    logistic = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), CATEGORICAL),
                ("num", make_pipeline(StandardScaler()), numeric),
            ]
        ),
        LogisticRegression(C=1.0, max_iter=2000),
    )
    filled_train, filled_test = x_train.copy(), x_test.copy()
    filled_train[numeric] = filled_train[numeric].fillna(-1.0)
    filled_test[numeric] = filled_test[numeric].fillna(-1.0)
    logistic.fit(filled_train, train["y"].to_numpy())
    boosting = make_pipeline(
        ColumnTransformer(
            [
                (
                    "cat",
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
                    CATEGORICAL,
                )
            ],
            remainder="passthrough",
        ),
        HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0),
    )
    boosting.fit(x_train, train["y"].to_numpy())
    y = test["y"].to_numpy()
    return {
        "logistic": float(roc_auc_score(y, logistic.predict_proba(filled_test)[:, 1])),
        "boosting": float(roc_auc_score(y, boosting.predict_proba(x_test)[:, 1])),
    }


@pytest.fixture(scope="module", params=[42, 7])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    return request.param, default_6b_world(request.param, tmp_path_factory)


def test_baseline_models_learn_and_no_single_feature_gives_it_away(world: tuple[int, Path]) -> None:
    seed, root = world
    frame = features(root)
    split = GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=seed)
    train_idx, test_idx = next(split.split(frame, groups=frame["group"].to_numpy()))
    train, test = frame[train_idx], frame[test_idx]
    aucs = models(train, test)

    by_channel: dict[str, dict[str, float]] = {}
    for channel in sorted(test["channel"].unique()):
        tr, te = train.filter(pl.col("channel") == channel), test.filter(pl.col("channel") == channel)
        if int(te["y"].sum()) >= MIN_CHANNEL_POSITIVES:
            single = single_feature_aucs(tr, te)
            single.pop("channel")
            by_channel[channel] = single
    best = max(((f"{ch}.{k}", v) for ch, s in by_channel.items() for k, v in s.items()), key=lambda kv: kv[1])

    bundle = next(root.glob("data/layer3/6B/validation/seed=*/*"))
    report = json.loads((bundle / "separability.json").read_text())
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    print(
        f"\nBENCH 6B baseline seed={seed}: {frame.height} rows ({int(frame['y'].sum())} positives), "
        f"test positives {int(test['y'].sum())}; sklearn logistic AUC {aucs['logistic']:.3f}, "
        f"gradient boosting {aucs['boosting']:.3f}; best single feature {best[0]} {best[1]:.3f}; "
        + "; ".join(f"{ch} amount {s['log_amount']:.3f}" for ch, s in by_channel.items())
        + f"\nS7 report: model {report['model_auc']:.3f}, best single {report['best_single_feature']} "
        f"{report['best_single_feature_auc']:.3f}"
    )
    assert aucs["logistic"] >= 0.75 and aucs["boosting"] >= 0.75  # 6B.R08: truth is learnable
    assert best[1] <= 0.75, best  # 6B.R07a: no single feature gives it away
    assert all(s["log_amount"] <= 0.72 for s in by_channel.values())
    assert report["model_auc"] >= 0.75 and report["best_single_feature_auc"] <= 0.75
    assert checks["6B.R08"]["status"] == "PASS" and checks["6B.R07a"]["status"] == "PASS"
