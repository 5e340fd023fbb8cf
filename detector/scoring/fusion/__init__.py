"""Fusion of calibrated evidence: parameters, stated rules, sentences, and fitting."""
