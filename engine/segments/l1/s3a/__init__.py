"""Segment 3A: how each (merchant, legal country) pair's demand splits across its time zones."""
