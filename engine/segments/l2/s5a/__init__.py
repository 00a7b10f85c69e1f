"""Segment 5A — expected demand intensity."""
