"""The closed-world fraud data engine: a replayable synthetic payment world and its fraud labels."""

CONTRACT_VERSION = "1.12.0"
