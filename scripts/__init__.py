"""Maintenance scripts: benchmarks, training, calibration, evaluation (run with ``python -m``)."""
