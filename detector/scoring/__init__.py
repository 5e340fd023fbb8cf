"""Scoring: per-model calibration, aggregation over crops and frames, scope checks and fusion."""
