"""Layer 2: demand intensity (5A) and realised arrivals (5B)."""
