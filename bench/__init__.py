"""Benchmarks of the API against a hand-written-SQL floor: `python -m bench` (see bench/README.md)."""
