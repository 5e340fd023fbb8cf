"""Batch scans on Ray Data: sources, the pure plan, the steps, the run and its output."""
