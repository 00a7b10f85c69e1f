"""`python -m engine …` entry point.

Every state is its own process and a world runs hundreds of them, so the process ends with os._exit once
`main` has returned and both streams are flushed: by then every output is published (atomically, files
closed) and nothing is left to finalise, while Python's own teardown of numba/LLVM and polars' thread pool
costs ≈ 0.25 s a job. An exception that escapes `main` (Ctrl-C) still exits the normal way.
"""

import os
import sys

from engine.cli import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
