"""Evaluation: metrics with bootstrap intervals, plots, the development suite, calibration and the audit."""
