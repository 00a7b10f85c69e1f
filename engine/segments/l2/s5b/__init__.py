"""Segment 5B — realised arrivals (layer2_3 §2)."""
