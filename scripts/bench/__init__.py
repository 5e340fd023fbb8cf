"""Benchmarks: python -m scripts.bench (see __main__)."""
