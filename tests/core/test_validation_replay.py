"""The replay law (engine.core.validation): numpy's Philox as the independent generator, the keyed sample, a
replay and accounting run into the CheckBook, and the RNG event log states write through StateContext."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.canonical import hash_parts
from engine.core.errors import EngineError
from engine.core.gates import SEALED
from engine.core.layout import gate_dir
from engine.core.rng import RngLedger, SampleRule, family_key, keyed_sample
from engine.core.state import EVENT_LOG_ENV, StateContext
from engine.core.validation import (
    CheckBook,
    Lanes,
    PhiloxBlocks,
    Replay,
    one_block_each,
    run_replays,
    u01,
    with_counter,
)
from engine.kernels import blocks
from engine.kernels.blocks import block_uniforms
from engine.kernels.philox import philox4x64_10, stream_new, stream_next_raw

U64 = (1 << 64) - 1
SEED, PHASH = 7, "ab" * 32
# Random123 kat_vectors, philox4x64 10: (counter, key) -> lanes
KAT = [
    ((0, 0, 0, 0), (0, 0),
     (0x16554D9ECA36314C, 0xDB20FE9D672D0FDC, 0xD7E772CEE186176B, 0x7E68B68AEC7BA23B)),
    ((U64, U64, U64, U64), (U64, U64),
     (0x87B092C3013FE90B, 0x438C3C67BE8D0224, 0x9CC7D7C69CD777B6, 0xA09CAEBF594F0BA0)),
]  # fmt: skip


# --- the independent generator --------------------------------------------------------------------------
@pytest.mark.parametrize(("counter", "key", "lanes"), KAT)
def test_philox_blocks_known_answers(counter, key, lanes) -> None:
    """Counter 0 needs numpy's counter set to 2^256 − 1 (the borrow wraps), the all-ones one no carry."""
    assert PhiloxBlocks(key).block(*counter) == lanes


@settings(max_examples=100, deadline=None)
@given(st.tuples(*[st.integers(0, U64)] * 4), st.tuples(*[st.integers(0, U64)] * 2))
def test_philox_blocks_agree_with_the_engine_kernel(counter, key) -> None:
    gen = PhiloxBlocks(key)
    assert gen.block(*counter) == tuple(int(w) for w in philox4x64_10(*counter, *key))
    assert gen.block(*counter) == gen.block(*counter)  # setting the state again is stateless


def test_lanes_follow_the_spec_stream_and_count() -> None:
    """Lanes w0..w3 of block d, then d + 1 in the block word; the same lanes as the engine's lane stream."""
    key, counter = (0x0123456789ABCDEF, 5), (42, 7, U64, 3)
    lanes = Lanes(PhiloxBlocks(key), counter, block_word=2)
    got = [lanes.raw() for _ in range(9)]
    engine = stream_new(*key, *counter, 2)
    assert got == [int(stream_next_raw(engine)) for _ in range(9)]
    assert got[4] == PhiloxBlocks(key).block(42, 7, 0, 3)[0]  # block word 2 wrapped from 2^64 − 1 to 0
    assert (lanes.draws, lanes.blocks) == (9, 3)
    assert lanes.u() == u01(PhiloxBlocks(key).block(42, 7, 1, 3)[1])


# --- the keyed sample -------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.floats(0.0001, 1.0), st.integers(1, 10**6), st.integers(1, 10**7))
def test_sample_size_rule(n, share, min_rows, full_below) -> None:
    rule = SampleRule(share, min_rows, full_below)
    k = rule.size(n)
    if n < full_below:
        assert k == n
    else:
        assert k == min(n, max(min_rows, math.ceil(share * n)))
        assert k >= min(n, min_rows) and k >= min(n, share * n) and k <= n


def test_default_rule_is_the_design() -> None:
    rule = SampleRule()
    assert rule.size(99_999) == 99_999  # every event under 10^5
    assert rule.size(100_000) == 1_000  # 1 %
    assert rule.size(10**7) == 100_000
    assert SampleRule(0.01, 100, 1).size(5_000) == 100  # at least 100


def _ids(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 2**63, n, dtype=np.uint64)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4_000), st.integers(0, 2**32))
def test_keyed_sample_is_keyed_on_counters_not_positions(n, seed) -> None:
    rule = SampleRule(0.05, 10, full_below=50)
    ids = _ids(n, seed)
    picked = keyed_sample("T.coin", (ids, 3), n, rule)
    assert picked.size == rule.size(n) and np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, keyed_sample("T.coin", (ids, 3), n, rule))  # deterministic
    perm = np.random.default_rng(seed).permutation(n)
    again = keyed_sample("T.coin", (ids[perm], 3), n, rule)
    assert set(ids[perm][again].tolist()) == set(ids[picked].tolist())  # row order does not matter


def _sample_key(family: str) -> tuple[int, int]:
    digest = hash_parts("replay-sample", family)
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


def _lowest(rank: list[int], c0: np.ndarray, c1: int, k: int) -> list[int]:
    """Positions of the k lowest (rank, c0, c1, 0, 0, position), ascending: the law in plain Python."""
    order = sorted(range(len(rank)), key=lambda i: (rank[i], int(c0[i]), c1, 0, 0, i))
    return sorted(order[:k])


@settings(max_examples=40, deadline=None)
@given(st.integers(40, 300), st.integers(1, 4), st.integers(0, 2**32))
def test_keyed_sample_is_the_lowest_numpy_philox_ranks(n_ids, repeats, seed) -> None:
    """Known answer from numpy's Philox: each counter appears `repeats` times, scattered, so the sample's
    cut often falls inside a group of tied rows, which then go in by position."""
    rule = SampleRule(0.07, 5, full_below=10)
    ids = np.random.default_rng(seed).permutation(np.repeat(_ids(n_ids, seed), repeats))
    gen = PhiloxBlocks(_sample_key("T.coin"))
    rank = [gen.block(int(i), 3, 0, 0)[0] for i in ids]
    expected = _lowest(rank, ids, 3, rule.size(ids.size))
    assert keyed_sample("T.coin", (ids, 3), ids.size, rule).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 400), st.integers(1, 5), st.integers(0, 2**32))
def test_keyed_sample_breaks_rank_ties_by_counter_then_position(n, levels, seed) -> None:
    """With ranks coarsened to a few levels (a stand-in kernel), most rows tie on rank: the sample then
    takes the lowest counters, and equal counters by position."""
    rule = SampleRule(0.1, 3, full_below=10)
    ids = np.random.default_rng(seed).integers(1, 40, n).astype(np.uint64)
    gen = PhiloxBlocks(_sample_key("T.coin"))
    rank = [gen.block(int(i), 3, 0, 0)[0] % levels for i in ids]
    coarse = lambda key, c0, c1, c2, c3: np.asarray(rank, dtype=np.uint64)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blocks, "block_raw_lane0", coarse)
        got = keyed_sample("T.coin", (ids, 3), n, rule)
    assert got.tolist() == _lowest(rank, ids, 3, rule.size(n))


def test_keyed_sample_is_not_the_lowest_ids_and_depends_on_the_family() -> None:
    ids = _ids(1_000)
    rule = SampleRule(0.05, 10, full_below=100)
    coin = set(ids[keyed_sample("T.coin", (ids,), ids.size, rule)].tolist())
    assert len(coin) == 50
    assert coin != set(np.sort(ids)[:50].tolist())
    assert coin != set(ids[keyed_sample("T.dice", (ids,), ids.size, rule)].tolist())
    assert len(keyed_sample("T.coin", (ids,), ids.size, SampleRule())) == 1_000  # all under 10^5


# --- a replay through the law -----------------------------------------------------------------------------
def _ctx(segment: str = "T") -> StateContext:
    """What run_replays needs of a state: its segment, its family keys, facts."""
    return cast(
        StateContext,
        SimpleNamespace(
            segment=segment,
            state=f"{segment}.S9",
            facts={},
            family_key=lambda label: family_key(SEED, PHASH, f"{segment}.{label}"),
        ),
    )


def _coin_table(n: int) -> pl.DataFrame:
    """A family 'T.coin' as a state publishes it: u(w0) of ⟨id, 9, 0, 0⟩ drawn by the engine's kernel."""
    ids = _ids(n, 1)
    u = block_uniforms(family_key(SEED, PHASH, "T.coin"), ids, 9)[:, 0]
    return pl.DataFrame({"entity": pl.Series(ids, dtype=pl.UInt64), "u": u, "heads": u < 0.5})


def _coin(table: pl.DataFrame, *, with_usage: bool = True) -> Replay:
    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        u = np.array([u01(gen.block(*c)[0]) for c in sample.select("c0", "c1", "c2", "c3").iter_rows()])
        return pl.concat([pl.DataFrame({"u": u, "heads": u < 0.5}), one_block_each(sample)], how="horizontal")

    rows = with_counter(table, "entity", 9)
    return Replay("T.coin", rows, ("u", "heads"), rederive, one_block_each if with_usage else None)


def _recorded(table: pl.DataFrame, **change: int) -> dict[str, Any]:
    ledger = RngLedger()
    ids = table["entity"].to_numpy()
    n = table.height
    ledger.record("T.coin", n, n, int(ids.min()), int(ids.max()), streams=n)
    doc = ledger.as_dict()
    doc["T.coin"].update(change)
    return doc


def _run(table: pl.DataFrame, recorded: dict[str, Any], rule: SampleRule, **kw: Any) -> dict[str, dict]:
    book = CheckBook()
    ctx = _ctx()
    expected = run_replays(ctx, book, [_coin(table, **kw)], recorded, rule=rule, code="E_T_REPLAY")
    checks = {c["id"]: c for c in book.checks}
    return {"checks": checks, "expected": expected, "facts": ctx.facts}


SMALL = SampleRule(0.01, 20, full_below=500)


def test_a_correct_table_passes_and_accounts() -> None:
    table = _coin_table(3_000)
    out = _run(table, _recorded(table), SMALL)
    assert {c["status"] for c in out["checks"].values()} == {"PASS"}
    assert set(out["checks"]) == {
        "rng.families",
        "replay.T.coin",
        *(f"rng.T.coin.{q}" for q in ("draws", "blocks", "streams", "counter_lo", "counter_hi")),
    }
    assert out["facts"]["replay"]["T.coin"] == {"events": 3_000, "replayed": 30}
    assert {k: out["expected"]["T.coin"][k] for k in ("draws", "blocks", "streams")} == dict.fromkeys(
        ("draws", "blocks", "streams"), 3_000
    )


def _flip(table: pl.DataFrame, row: int) -> pl.DataFrame:
    """One published value moved by one ulp: invisible to any tolerance, not to a bit-for-bit replay."""
    u = table["u"].to_numpy().copy()
    u[row] = np.nextafter(u[row], 2.0)
    return table.with_columns(pl.Series("u", u))


def test_one_flipped_value_in_a_sampled_row_fails_naming_its_family() -> None:
    table = _coin_table(3_000)
    sampled = keyed_sample("T.coin", (table["entity"].to_numpy(), 9), table.height, SMALL)
    row = int(sampled[len(sampled) // 2])
    check = _run(_flip(table, row), _recorded(table), SMALL)["checks"]["replay.T.coin"]
    assert (check["status"], check["code"]) == ("FAIL", "E_T_REPLAY")
    assert check["detail"].startswith("T.coin: 1 of 30 replayed draw events differ")
    assert f"⟨{table['entity'][row]}, 9, 0, 0⟩ in u" in check["detail"]
    outside = int(np.setdiff1d(np.arange(table.height), sampled)[0])
    assert _run(_flip(table, outside), _recorded(table), SMALL)["checks"]["replay.T.coin"]["status"] == "PASS"


def test_under_the_full_threshold_every_row_is_replayed() -> None:
    table = _coin_table(400)
    out = _run(_flip(table, 399), _recorded(table), SMALL)
    assert out["facts"]["replay"]["T.coin"] == {"events": 400, "replayed": 400}
    assert out["checks"]["replay.T.coin"]["status"] == "FAIL"


def test_without_usage_columns_the_family_is_replayed_in_full() -> None:
    table = _coin_table(3_000)
    out = _run(table, _recorded(table), SMALL, with_usage=False)
    assert out["facts"]["replay"]["T.coin"] == {"events": 3_000, "replayed": 3_000}
    assert out["checks"]["rng.T.coin.draws"]["status"] == "PASS"


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"draws": 2_999}, "rng.T.coin.draws"),
        ({"blocks": 3_001}, "rng.T.coin.blocks"),
        ({"streams": 0}, "rng.T.coin.streams"),
        ({"counter_lo": "1"}, "rng.T.coin.counter_lo"),
    ],
)
def test_an_accounting_mismatch_fails(change: dict[str, Any], failing: str) -> None:
    table = _coin_table(3_000)
    checks = _run(table, _recorded(table, **change), SMALL)["checks"]
    assert [c for c, v in checks.items() if v["status"] == "FAIL"] == [failing]
    assert checks[failing]["code"] == "E_RNG_ACCOUNTING"
    assert checks[failing]["detail"].startswith("T.coin: recorded ")


def test_a_recorded_family_without_a_replay_fails() -> None:
    table = _coin_table(50)
    recorded = {**_recorded(table), "T.dice": {"draws": 1, "blocks": 1, "streams": 1}}
    checks = _run(table, recorded, SMALL)["checks"]
    assert checks["rng.families"]["status"] == "FAIL"
    assert "T.dice" in checks["rng.families"]["detail"]


def test_a_segment_without_randomness_still_goes_through_the_law() -> None:
    book = CheckBook()
    assert run_replays(_ctx(), book, [], {}, code="E_T_REPLAY") == {}
    assert [(c["id"], c["status"]) for c in book.checks] == [("rng.families", "PASS")]
    book = CheckBook()
    run_replays(_ctx(), book, [], {"T.coin": {"draws": 1}}, code="E_T_REPLAY")
    assert book.failed_required() == ["rng.families"]


def test_a_replay_of_another_segments_family_is_refused() -> None:
    with pytest.raises(ValueError, match="not a family of segment U"):
        run_replays(_ctx("U"), CheckBook(), [_coin(_coin_table(5))], {}, code="E_T_REPLAY")


# --- the RNG event log --------------------------------------------------------------------------------
MF = "cd" * 32


def _state(root: Path, mode: str | None, monkeypatch: pytest.MonkeyPatch) -> StateContext:
    """A state context over a minimal sealed gate (no inputs), as 1A.S1 on seed 7."""
    gate = gate_dir(root, "1A", MF) / SEALED
    gate.parent.mkdir(parents=True, exist_ok=True)
    gate.write_text(json.dumps({"parameter_hash": PHASH, "inputs": []}))
    if mode is None:
        monkeypatch.delenv(EVENT_LOG_ENV, raising=False)
    else:
        monkeypatch.setenv(EVENT_LOG_ENV, mode)
    return StateContext(root, "1A", "1A.S1", "s1_hurdle", MF, SEED)


def _draw(ctx: StateContext, n: int) -> dict[str, np.ndarray]:
    """A small state's draws: one event per entity, 1–3 streams each, 2 lanes and 1 block per stream."""
    ids = _ids(n, 2)
    streams = (ids % 3 + 1).astype(np.int64)
    value = np.arange(n, dtype=np.float64) / 7
    ctx.record_draws("coin", (ids, 4), draws=2 * streams, blocks=streams, streams=streams, value=value)
    return {"ids": ids, "streams": streams, "value": value}


def _logs(root: Path) -> list[Path]:
    return sorted(root.glob("logs/1A/s1_hurdle/run_id=*/rng_events.parquet"))


@pytest.mark.parametrize("mode", [None, "off"])
def test_event_log_off_writes_nothing(
    tmp_path: Path, mode: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _state(tmp_path, mode, monkeypatch)
    drawn = _draw(ctx, 37)
    report = json.loads(ctx.finish().read_text())
    assert _logs(tmp_path) == [] and "rng_event_log" not in report["operational"]
    assert report["rng_accounting"]["1A.coin"]["draws"] == 2 * int(drawn["streams"].sum())


def test_event_log_full_logs_one_row_per_draw_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _state(tmp_path, "full", monkeypatch)
    drawn = _draw(ctx, 37)
    report = json.loads(ctx.finish().read_text())
    (log,) = _logs(tmp_path)
    assert report["operational"]["rng_event_log"] == str(log.relative_to(tmp_path))
    events = pl.read_parquet(log)
    assert events.columns == [
        "family",
        "entity_id",
        "c0",
        "c1",
        "c2",
        "c3",
        "draws",
        "blocks",
        "streams",
        "value",
    ]
    assert events.height == 37 and (events["family"] == "1A.coin").all()
    assert events["entity_id"].to_list() == events["c0"].to_list() == drawn["ids"].tolist()
    assert (events["c1"] == 4).all() and (events["c2"] == 0).all() and (events["c3"] == 0).all()
    assert events["value"].to_list() == drawn["value"].tolist()
    totals = report["rng_accounting"]["1A.coin"]
    assert [int(events[q].sum()) for q in ("draws", "blocks", "streams")] == [
        totals["draws"],
        totals["blocks"],
        totals["streams"],
    ]


def test_event_log_sample_keeps_the_replay_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _state(tmp_path, "sample", monkeypatch)
    drawn = _draw(ctx, 100_000)
    report = ctx.deterministic_report()
    ctx.finish()
    (log,) = _logs(tmp_path)
    events = pl.read_parquet(log)
    picked = keyed_sample("1A.coin", (drawn["ids"], 4), 100_000, SampleRule())
    assert events.height == 1_000 == picked.size
    assert events["c0"].to_list() == drawn["ids"][picked].tolist()
    assert report["rng_accounting"]["1A.coin"]["streams"] == int(drawn["streams"].sum())  # totals stay full


def test_event_log_leaves_the_deterministic_report_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = []
    for mode in ("off", "sample", "full"):
        ctx = _state(tmp_path / mode, mode, monkeypatch)
        _draw(ctx, 300)
        reports.append(ctx.deterministic_report())
    assert reports[0] == reports[1] == reports[2]


def test_an_unknown_event_log_mode_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError) as err:
        _state(tmp_path, "verbose", monkeypatch)
    assert err.value.code == "E_CONFIG_INVALID" and EVENT_LOG_ENV in err.value.where


def test_rng_event_log_is_a_config_field_no_fingerprint_depends_on(tmp_path: Path) -> None:
    from engine.core.config import load_run_config
    from engine.core.plan import build_plan

    base = {"preset": "tiny", "output_root": str(tmp_path)}
    assert load_run_config(base).rng_event_log == "off"
    plans = [
        build_plan(load_run_config({**base, "rng_event_log": mode})) for mode in ("off", "sample", "full")
    ]
    ids = [{seg: (p.parameter_hash, p.manifest_fingerprint) for seg, p in plan.items()} for plan in plans]
    assert ids[0] == ids[1] == ids[2]
    with pytest.raises(EngineError) as err:
        load_run_config({**base, "rng_event_log": "verbose"})
    assert err.value.code == "E_CONFIG_INVALID" and err.value.where == "config field rng_event_log"
