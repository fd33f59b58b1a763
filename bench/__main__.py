"""Run the benchmarks: ``python -m bench`` (``--quick`` for a reduced run)."""

from bench.cli import main

raise SystemExit(main())
