"""The report: its versioned schema and its assembly from stage outputs."""
