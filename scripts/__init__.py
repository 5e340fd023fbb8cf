"""trueframe scripts package."""
