"""trueframe detector package."""
