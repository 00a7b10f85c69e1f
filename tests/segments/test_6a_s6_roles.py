"""6A.S6's role rules on hand-made arrays with known answers (design layer2_3.md §3.8): exact quantile tiers,
the inverse-CDF role draw, caps by lowest score, organiser grouping with promotion, propagation, merchant
roles, and S0's roles check."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from engine.core.errors import EngineError
from engine.segments.l3.s6a import roles as R
from engine.segments.l3.s6a.policy import Roles
from engine.segments.l3.s6a.s6_roles import check_roles
from tests.conftest import shipped_policy

MULE, ORG, CLEAN = 1, 5, 0


@pytest.fixture(scope="module")
def pol() -> Roles:
    return shipped_policy("6A", "roles")  # type: ignore[return-value]


def test_tiers_are_exact_quantiles_within_each_group_and_ties_go_by_id() -> None:
    ids = np.arange(1, 201, dtype=np.uint64)
    score = np.concatenate([np.linspace(0.0, 1.0, 100), np.full(100, 0.5)]).astype(np.float32)
    group = np.repeat([0, 1], 100)
    tier = R.tiers_by_quantile(score, ids, group, [0.5, 0.85, 0.97])
    for g in (0, 1):
        assert np.bincount(tier[group == g], minlength=4).tolist() == [50, 35, 12, 3]
    # group 0 rises with the score; in group 1 every score ties, so the order is the id order
    assert (np.diff(tier[:100]) >= 0).all() and (np.diff(tier[100:]) >= 0).all()
    assert tier[100:150].tolist() == [0] * 50 and tier[197:].tolist() == [3] * 3
    ten = R.tiers_by_quantile(
        np.arange(10.0), np.arange(10, dtype=np.uint64), np.zeros(10), [0.5, 0.85, 0.97]
    )
    assert ten.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]  # ⌈5⌉, ⌈8.5⌉ = 9, ⌈9.7⌉ = 10


def test_role_draw_is_the_inverse_cdf_and_never_picks_a_zero_role() -> None:
    cdfs = np.array([[0.5, 0.5, 0.8, 1.0, 1.0, 1.0], [0.9, 0.95, 0.95, 0.95, 1.0, 1.0]])
    u = np.array([0.0, 0.49, 0.5, 0.79, 0.8, 0.999, 0.5, 0.9, 0.96, 1.0 - 2.0**-53])
    row = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    assert R.draw_roles(u, row, cdfs).tolist() == [0, 0, 2, 2, 3, 3, 0, 1, 4, 4]
    # a total below 1 by rounding: u·total at the total falls back to the last role with mass, not a zero tail
    short = np.array([[0.25, 0.5, 0.75, 0.999999, 0.999999, 0.999999]])
    assert R.draw_roles(np.array([1.0]), np.array([0]), short).tolist() == [3]


def test_caps_revert_the_lowest_scores(pol: Roles) -> None:
    ids = np.arange(1, 9, dtype=np.uint64)
    role = np.array([MULE, MULE, MULE, MULE, 2, 2, CLEAN, ORG], dtype=np.int8)
    score = np.array([0.9, 0.2, 0.5, 0.2, 0.1, 0.3, 0.99, 0.4], dtype=np.float32)
    out, reverted = R.apply_caps(role, score, ids, {"MULE": 2, "SYNTHETIC_ID": 5, "ORGANISER": 0})
    # mules 1 (0.9) and 3 (0.5) stay; 2 and 4 tie at 0.2 and both go; the organiser is over its cap of 0
    assert out.tolist() == [MULE, CLEAN, MULE, CLEAN, 2, 2, CLEAN, CLEAN] and reverted == 3
    assert R.cap_counts(pol, 20_000) == {
        "MULE": 200,
        "SYNTHETIC_ID": 100,
        "FRIENDLY_FRAUD_PRONE": 400,
        "PROMO_ABUSER": 100,
        "ORGANISER": 10,
    }


def test_organisers_take_mules_round_robin_promote_then_revert() -> None:
    # region 0: one organiser (id 1) and 20 mules (ids 2..21, scores falling with id); region 1: 3 mules and
    # no organiser; the global organiser cap is 2, so region 0 promotes ⌈(20 − 15)/16⌉ = 1 mule and region 1,
    # with no room left, reverts its mules
    n = 24
    ids = np.arange(1, n + 1, dtype=np.uint64)
    role = np.array([ORG] + [MULE] * 23, dtype=np.int8)
    score = np.linspace(1.0, 0.0, n).astype(np.float32)
    region = np.array([0] * 21 + [1] * 3)
    out, ctrl, counts = R.assign_organisers(role, score, ids, region, 15, 2)
    assert counts == {"organisers_promoted": 1, "mules_without_organiser": 3}
    assert (
        out[:2].tolist() == [ORG, ORG] and out[2:21].tolist() == [MULE] * 19 and out[21:].tolist() == [0] * 3
    )
    # mules 3..21 in score order alternate between organisers 1 and 2 (the promoted mule scores below 1)
    assert ctrl[2:21].tolist() == [1, 2] * 9 + [1] and ctrl[:2].tolist() == [0, 0] and (ctrl[21:] == 0).all()
    assert np.bincount(ctrl[ctrl > 0].astype(np.int64)).max() <= 15


def test_organisers_never_exceed_their_load_at_scale() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    ids = np.arange(1, n + 1, dtype=np.uint64)
    role = rng.choice([CLEAN, MULE, ORG], size=n, p=[0.985, 0.014, 0.001]).astype(np.int8)
    score = rng.random(n).astype(np.float32)
    region = rng.integers(0, 6, n)
    out, ctrl, _ = R.assign_organisers(role, score, ids, region, 15, 12)
    mules = out == MULE
    assert (ctrl[mules] > 0).all() and (ctrl[~mules] == 0).all()
    assert (out == ORG).sum() <= max(12, (role == ORG).sum())
    owner = {int(i): k for k, i in enumerate(ids)}
    boss = np.array([owner[int(c)] for c in ctrl[mules]])
    assert (out[boss] == ORG).all() and (region[boss] == region[mules]).all()
    assert np.unique(ctrl[mules], return_counts=True)[1].max() <= 15


def test_propagation_to_accounts_and_devices(pol: Roles) -> None:
    p = pol.propagation
    owner = np.array([MULE, MULE, MULE, 2, 2, CLEAN, CLEAN, 3], dtype=np.int8)
    current = np.array([True, True, False, True, False, True, True, True])
    u = np.array([0.84, 0.86, 0.001, 0.69, 0.71, 0.0029, 0.0031, 0.001])
    assert p.mule_current_account == 0.85 and p.synthetic_account == 0.70 and p.clean_account == 0.003
    assert R.account_roles(owner, current, u, pol).tolist() == [1, 0, 2, 2, 0, 2, 0, 2]
    operator = np.array([True, True, False, False, False, False])
    risky = np.array([False, False, True, True, False, False])
    u = np.array([0.59, 0.61, 0.39, 0.41, 0.0019, 0.0021])
    assert R.device_roles(operator, risky, u, pol).tolist() == [2, 1, 2, 0, 2, 0]


def test_merchant_roles_and_collusive_count(pol: Roles) -> None:
    assert R.collusive_count(pol, 50) == 1  # round(0.1) = 0, but one is required while enabled
    assert R.collusive_count(pol, 10_000) == 20
    assert R.collusive_count(pol, 0) == 0
    off = pol.model_copy(update={"merchants": pol.merchants.model_copy(update={"collusive_enabled": False})})
    assert R.collusive_count(off, 10_000) == 0
    capped = pol.model_copy(update={"merchants": pol.merchants.model_copy(update={"p_collusive": 0.5})})
    assert R.collusive_count(capped, 1000) == 10  # ⌊1 % of 1000⌋
    score = np.array([0.2, 0.9, 0.5, 0.9], dtype=np.float32)
    hr = np.array([True, False, True, True])
    ids = np.array([10, 11, 12, 13], dtype=np.uint64)
    assert R.merchant_roles(score, ids, hr, 1).tolist() == [1, 2, 1, 1]  # the tie at 0.9 goes to id 11
    assert R.merchant_roles(score, ids, hr, 2).tolist() == [1, 2, 1, 2]


def test_s0_roles_check(pol: Roles) -> None:
    check_roles(pol)
    greedy = pol.model_copy(update={"caps": {**pol.caps, "FRIENDLY_FRAUD_PRONE": 0.04}})
    with pytest.raises(EngineError) as err:
        check_roles(greedy)
    assert err.value.code == "E_6A_CAP_INCONSISTENT"
    bad_mix = {**pol.role_mix["RETAIL"], "HIGH": {**pol.role_mix["RETAIL"]["HIGH"], "CLEAN": 0.5}}
    broken = pol.model_copy(update={"role_mix": {**pol.role_mix, "RETAIL": bad_mix}})
    with pytest.raises(EngineError) as err:
        check_roles(broken)
    assert err.value.code == "E_POLICY_INVALID" and "RETAIL.HIGH" in err.value.where
    with pytest.raises(pydantic.ValidationError):
        Roles.model_validate(
            {**pol.model_dump(), "role_mix": {**pol.model_dump()["role_mix"], "RETAIL": bad_mix}}
        )
