"""Segment 2A — civil time: the tz resolver, the transition cache and the DST windows."""
