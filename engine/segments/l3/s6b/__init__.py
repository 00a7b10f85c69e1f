"""Segment 6B — behaviour, fraud and labels: attachment and sessions, baseline flows, the campaign plan,
overlay and truth, the bank's view, cases and the validation bundle (design layer2_3.md §4, §5 and the
amendments of 2026-11-29)."""
