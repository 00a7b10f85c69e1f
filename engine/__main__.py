"""`python -m engine …` entry point."""

from engine.cli import main

raise SystemExit(main())
