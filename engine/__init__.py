"""The closed-world fraud data engine: a replayable synthetic payment world and its fraud labels."""

CONTRACT_VERSION = "1.11.1"
