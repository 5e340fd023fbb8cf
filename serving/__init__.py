"""trueframe serving package."""
