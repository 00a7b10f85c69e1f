"""6B.S7's measures on hand-built frames (each finding counted exactly), and its bundle on the tiny world."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine.segments.l2.s5b.batches import row_batches
from engine.segments.l3.s6b import s7_scan
from engine.segments.l3.s6b.rng_accounting import expected_draws, matches
from engine.segments.l3.s6b.s7_scan import ShardScan, scan_events, violations, with_derived
from engine.segments.l3.s6b.s7_validation import inside_legit_share, legit_bounds, stratum_violations

T0 = datetime(2026, 3, 2, tzinfo=UTC)
S = timedelta(seconds=1)


def _flows(**overrides: list) -> pl.DataFrame:
    """Three consistent flows: an approved cleared legit one, a declined legit one, a detected fraud."""
    base = {
        "flow_id": [1, 2, 3],
        "arrival_id": [1, 2, None],
        "merchant_id": [10, 10, 10],
        "ts_utc": [T0, T0 + 5 * S, T0 + 9 * S],
        "ts_local": [datetime(2026, 3, 2, 1), datetime(2026, 3, 2, 1), datetime(2026, 3, 2, 12)],
        "amount_minor": [1000, 2000, 500],
        "currency": ["EUR", "EUR", "JPY"],
        "currency_exponent": [2, 2, 0],
        "auth_decision": ["APPROVE", "DECLINE", "APPROVE"],
        "auth_response_ts_utc": [T0 + S, T0 + 6 * S, T0 + 10 * S],
        "is_cleared": [True, False, True],
        "clearing_ts_utc": [T0 + 3600 * S, None, T0 + 7200 * S],
        "reversal_ts_utc": [None, None, None],
        "refund_ts_utc": [None, None, None],
        "detection_ts_utc": [None, None, T0 + 9000 * S],
        "dispute_ts_utc": [None, None, T0 + 90000 * S],
        "chargeback_ts_utc": [None, None, T0 + 99000 * S],
        "chargeback_outcome_ts_utc": [None, None, T0 + 999000 * S],
        "bank_label": ["NO_CASE", "NO_CASE", "CHARGEBACK_FRAUD"],
        "bank_label_ts_utc": [None, None, T0 + 999000 * S],
        "is_fraud_bank": [False, False, True],
        "truth_label": ["LEGIT", "LEGIT", "FRAUD"],
        "truth_source": ["NONE", "NONE", "CAMPAIGN"],
        "is_fraud_truth": [False, False, True],
        "campaign_id": [None, None, 7],
        "tactic_mask": [0, 0, 64],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def _count(df: pl.DataFrame) -> dict[str, int]:
    return violations(with_derived(df.lazy(), {"EUR": 0.9, "JPY": 150.0}))


def test_consistent_flows_have_no_findings() -> None:
    assert set(_count(_flows()).values()) == {0}


@pytest.mark.parametrize(
    ("overrides", "findings"),
    [
        ({"auth_response_ts_utc": [T0, T0 + 6 * S, T0 + 10 * S]}, {"latency_not_positive"}),
        ({"detection_ts_utc": [None, None, T0]}, {"detection_before_auth"}),
        (
            {"truth_label": ["LEGIT", "LEGIT", "LEGIT"], "is_fraud_truth": [False] * 3},
            {"campaign_flow_legit", "legit_with_rule"},
        ),
        (
            {"is_cleared": [False, False, True], "clearing_ts_utc": [None, None, T0 + 7200 * S]},
            {"approved_not_cleared"},
        ),
        ({"is_cleared": [True, True, True]}, {"cleared_not_approved", "cleared_without_ts"}),
        ({"truth_source": ["NONE", "POSTURE", "CAMPAIGN"]}, {"legit_with_rule"}),
        ({"is_fraud_bank": [False, True, True]}, {"bank_flag_mismatch"}),
        ({"chargeback_outcome_ts_utc": [None, None, T0 + 98000 * S]}, {"outcome_before_chargeback"}),
    ],
)
def test_each_corruption_is_counted_where_it_breaks_a_law(overrides: dict, findings: set[str]) -> None:
    got = _count(_flows(**overrides))
    assert {k for k, v in got.items() if v} == findings
    assert all(got[k] == 1 for k in findings)


def test_clearing_suppression_excuses_a_missing_clearing() -> None:
    df = _flows(
        is_cleared=[True, False, False], clearing_ts_utc=[T0 + 3600 * S, None, None], tactic_mask=[0, 0, 96]
    )
    assert _count(df)["approved_not_cleared"] == 0


def test_stratum_known_answers() -> None:
    h = 14 * 86_400_000_000
    h0 = int(T0.timestamp() * 1e6)
    day = timedelta(days=1)

    def camp(starts: list[timedelta], span: timedelta) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "campaign_type": ["ATO"] * len(starts),
                "campaign_id": [(3 << 56) | i for i in range(len(starts))],
                "start_ts": [T0 + s for s in starts],
                "end_ts": [T0 + s + span for s in starts],
            }
        )

    # two instances of 2 days: strata are [0, 6) and [6, 12) days of start
    assert stratum_violations(camp([1 * day, 7 * day], 2 * day), h0, h) == 0
    assert stratum_violations(camp([7 * day, 8 * day], 2 * day), h0, h) == 1  # instance 0 in stratum 1
    assert stratum_violations(camp([1 * day, 2 * day], 2 * day), h0, h) == 1  # instance 1 in stratum 0
    # a window as long as the horizon pins every start at H0
    assert stratum_violations(camp([timedelta(0), timedelta(0)], 14 * day), h0, h) == 0


def test_fraud_amounts_inside_the_legit_range() -> None:
    # 1000 legit POS amounts 1..1000 (one each): p1 = 10, p99.5 = 995
    amounts = pl.DataFrame(
        {
            "channel": ["POS"] * 1000,
            "amount_minor": list(range(100, 100_100, 100)),
            "legit": [True] * 1000,
            "amount_usd": [float(v) for v in range(1, 1001)],
            "n": [1] * 1000,
        }
    )
    bounds = legit_bounds(amounts)
    assert bounds == {"POS": (10.0, 995.0)}
    sample = pl.DataFrame(
        {
            "channel": ["POS"] * 4,
            "truth_label": ["FRAUD"] * 4,
            "truth_subtype": ["CNP_STOLEN", "CNP_STOLEN", "LOST_STOLEN", "CARD_TESTING"],
            "amount_usd": [500.0, 5000.0, 9.0, 0.0],  # the probe at 0 is exempt (amendment 4)
        }
    )
    assert inside_legit_share(sample, bounds) == (pytest.approx(1 / 3), 3)


def test_rng_accounting_names_the_family_off_its_law() -> None:
    counts = {"flows": 10, "arrivals": 8, "cases": 2}
    good = {
        "6B.flow": {"draws": 280, "blocks": 70, "streams": 10},
        "6B.bank": {"draws": 200, "blocks": 50, "streams": 10},
        "6B.attach": {"draws": 64, "blocks": 16, "streams": 8},
        "6B.case": {"draws": 6, "blocks": 2, "streams": 2},
        "6B.plan": {"draws": 7, "blocks": 2, "streams": 2},
        "6B.truth": {"draws": 5, "blocks": 5, "streams": 5},
        "6B.regular": {"draws": 3, "blocks": 3, "streams": 3},
    }
    assert matches(expected_draws(good, counts), good) == []
    short = {**good, "6B.flow": {"draws": 252, "blocks": 63, "streams": 9}}  # one flow never planned
    assert matches(expected_draws(short, counts), short) == ["6B.flow"]
    greedy = {**good, "6B.plan": {"draws": 9, "blocks": 2, "streams": 2}}  # more lanes than its blocks hold
    assert matches(expected_draws(greedy, counts), greedy) == ["6B.plan"]
    missing = {k: v for k, v in good.items() if k != "6B.truth"}
    assert matches(expected_draws(missing, counts), missing) == ["6B.truth"]
    # 6B.block: one block of three lanes per detected card, expected only once a card was detected
    detected = {**counts, "detected_cards": 3}
    blocked = {**good, "6B.block": {"draws": 9, "blocks": 3, "streams": 3}}
    assert matches(expected_draws(blocked, detected), blocked) == []
    assert matches(expected_draws(good, detected), good) == ["6B.block"]  # detected, never drawn
    skipped = {**good, "6B.block": {"draws": 6, "blocks": 2, "streams": 2}}  # a detected card without a draw
    assert matches(expected_draws(skipped, detected), skipped) == ["6B.block"]


@pytest.mark.e2e
def test_bundle_passes_and_states_its_labels(tiny_world: Path) -> None:
    bundle = next(tiny_world.glob("data/layer3/6B/validation/seed=42/*"))
    assert (bundle / "_passed.flag").is_file()
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    # the separability checks run on tiny (its preset raises the fraud rate to 0.004 for the support)
    for check in ("6B.R07a", "6B.R08"):
        assert checks[check]["status"] == "PASS", checks[check]
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["enrichment_factor"] == pytest.approx(0.004 / 0.00015, rel=1e-6)
    stats = json.loads((bundle / "label_stats.json").read_text())
    for scenario in ("baseline", "holiday_peak"):
        cov = stats[scenario]["coverage"]
        assert cov["short"] == 0 and cov["flows"] >= cov["arrivals"] + cov["inserted"]
        fraud = stats[scenario]["bank_view"]["FRAUD"]
        assert 0 < fraud["detection_rate"] <= 1


def test_blocked_cards_in_the_tiny_world(tiny_world: Path) -> None:
    """Amendment 5 from the files alone: each blocked card's later attempts are declined LOST_STOLEN_CARD in
    whichever shard they fall, its holder's genuine spending reaches the replacement, and S7 checked it."""
    bundle = next(tiny_world.glob("data/layer3/6B/validation/seed=42/*"))
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    for rule in ("blocked_card_not_declined", "block_decline_without_block", "reissued_card_misused"):
        assert checks[f"6B.R01.{rule}"]["status"] == "PASS"
    tx = pl.read_parquet(next(tiny_world.glob("data/layer3/6B/transactions/seed=42/*/scenario_id=baseline")))
    cards = pl.read_parquet(
        next(tiny_world.glob("data/layer3/6B/card_reissues/seed=42/*/scenario_id=baseline"))
    )
    assert cards.height > 0
    after = tx.join(cards.select("instrument_id", "card_blocked_ts_utc"), on="instrument_id").filter(
        pl.col("ts_utc") >= pl.col("card_blocked_ts_utc")
    )
    assert after.height > 0 and (after["decline_reason"].cast(pl.String) == "LOST_STOLEN_CARD").all()
    moved = tx.join(
        cards.select(pl.col("new_instrument_id").alias("instrument_id"), "party_id", "reissue_ts_utc"),
        on=["instrument_id", "party_id"],
    )
    assert (moved["ts_utc"] >= moved["reissue_ts_utc"]).all()
    assert (moved["truth_label"].cast(pl.String) == "LEGIT").all()


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
@pytest.mark.parametrize("cuts", [(5,), (3, 5), (2, 3, 6), (4, 4, 7), (1, 2, 3, 4, 5, 6, 7)])
def test_event_checks_follow_a_flow_across_parts(
    tmp_path: Path, cuts: tuple[int, ...], chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts end inside merchant 2 (a part may hold only its rows, or none), reads end every two rows and
    chunks hold `chunk_rows` events: flow 21's clearing comes before its response, and flow 22 repeats its
    request, each across a cut. Checked part by part, both went unseen; merchant by merchant, each counts
    once, and the event totals are those of every row."""
    monkeypatch.setattr(s7_scan, "EVENT_CHUNK_ROWS", chunk_rows)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    rows = [  # (merchant, flow, seq, type, seconds after t0), in stream order (merchant, ts, flow, seq)
        (1, 11, 0, "AUTH_REQUEST", 0),
        (1, 11, 1, "AUTH_RESPONSE", 1),
        (2, 21, 0, "AUTH_REQUEST", 5),
        (2, 22, 0, "AUTH_REQUEST", 6),
        (2, 21, 1, "AUTH_RESPONSE", 9),
        (2, 21, 2, "CLEARING", 8),
        (2, 22, 1, "AUTH_REQUEST", 10),
        (3, 31, 0, "AUTH_REQUEST", 12),
    ]
    frame = pl.DataFrame(
        {
            "merchant_id": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
            "flow_id": pl.Series([r[1] for r in rows], dtype=pl.UInt64),
            "event_seq": pl.Series([r[2] for r in rows], dtype=pl.UInt8),
            "event_type": [r[3] for r in rows],
            "ts_utc": [t0 + timedelta(seconds=r[4]) for r in rows],
        }
    )
    bounds = [0, *cuts, frame.height]
    paths = [tmp_path / f"part-{i:05d}.parquet" for i in range(len(bounds) - 1)]
    for path, lo, hi in zip(paths, bounds[:-1], bounds[1:], strict=True):
        frame.slice(lo, hi - lo).write_parquet(path)
    out = ShardScan()
    totals = scan_events(row_batches(paths, None, 2), out)
    assert out.violations == {
        "event_time_not_increasing": 1,
        "event_seq_not_dense": 0,
        "event_repeated_per_flow": 1,
    }
    assert totals == {"AUTH_REQUEST": 5, "AUTH_RESPONSE": 2, "CLEARING": 1}
