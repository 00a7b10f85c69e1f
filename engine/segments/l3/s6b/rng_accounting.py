"""6B.R22 (design R21): the RNG accounting of 6B's states against what the published rows imply.

Families with a fixed shape per row are re-derived exactly from the bundle's own row counts: `6B.flow` spends
PLAN_BLOCKS blocks of four lanes on every flow (S2 on arrivals, S4 on inserted flows and retries), `6B.bank`
BLOCKS blocks on every flow, `6B.attach` opens one stream per arrival, `6B.case` one per case, `6B.block`
one block of three lanes per card a detection would block (6B.S5a's candidates). The other families (plan,
overlay, truth, regular, travel, account_event) vary with draws the tables do not keep; for them the ledger
must at least be internally sound: at most four lanes per block, one block or more per stream, and no more
streams than the rows they could key."""

from __future__ import annotations

from typing import Any

from engine.segments.l3.s6b.blocks import BLOCK_LANES
from engine.segments.l3.s6b.flow_kernel import PLAN_BLOCKS
from engine.segments.l3.s6b.s5_bank_events import BLOCKS as BANK_BLOCKS

LANES = 4
EXACT = ("6B.flow", "6B.bank", "6B.attach", "6B.case", "6B.block")
# every world records these (6B.block only where a card was detected: it is expected then)
REQUIRED = ("6B.flow", "6B.bank", "6B.attach", "6B.case", "6B.plan", "6B.truth", "6B.regular")


def expected_draws(recorded: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """Family → the totals the rows imply (exact families) or the recorded totals where they are sound.

    A family missing from the ledger, or whose totals break a law, is expected as its law says, so the
    comparison with `recorded` fails and names it."""
    flows, arrivals, cases = counts["flows"], counts["arrivals"], counts["cases"]
    cards = counts.get("detected_cards", 0)
    want: dict[str, Any] = {
        "6B.block": {"streams": cards, "blocks": cards, "draws": BLOCK_LANES * cards},
        "6B.flow": {"streams": flows, "blocks": PLAN_BLOCKS * flows, "draws": LANES * PLAN_BLOCKS * flows},
        "6B.bank": {"streams": flows, "blocks": BANK_BLOCKS * flows, "draws": LANES * BANK_BLOCKS * flows},
        "6B.case": {"streams": cases},
        "6B.attach": {"streams": arrivals},
    }
    out: dict[str, Any] = {}
    for family in sorted(set(REQUIRED) | set(recorded) | ({"6B.block"} if cards else set())):
        got = recorded.get(family, {})
        exact = want.get(family, {})
        sound = {
            "draws": min(got.get("draws", 0), LANES * got.get("blocks", 0)),
            "blocks": max(got.get("blocks", 0), got.get("streams", 0)),
            "streams": got.get("streams", 0) if family in recorded else 1,
        }
        out[family] = {key: exact.get(key, sound[key]) for key in ("draws", "blocks", "streams")}
    return out


def matches(expected: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """Families whose recorded draws, blocks or streams differ from the expected ones."""
    return [
        family
        for family, want in expected.items()
        if any(recorded.get(family, {}).get(key) != value for key, value in want.items())
    ]
