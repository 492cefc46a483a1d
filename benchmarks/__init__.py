"""Benchmarks: the router's per-call overhead, throughput, import time, planning time and memory.

``python -m benchmarks`` (or ``make bench``) starts the fake providers in a separate process, runs every
measurement in fresh worker processes against it, prints a markdown report and writes
``benchmarks/results/latest.md``. See ``docs/benchmarks.md``.

This package is imported by every worker, so it imports nothing heavy at the top.
"""
