"""trueframe datasets package."""
