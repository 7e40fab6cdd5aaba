"""Benchmarks (ordinaut bench ...)."""
