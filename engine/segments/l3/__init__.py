"""Layer 3: the entity world (6A) and behaviour, fraud and labels (6B)."""
