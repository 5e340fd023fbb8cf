"""Known media: hash lists of reviewed items (only PDQ hashes and verdicts), their index and lookup."""
