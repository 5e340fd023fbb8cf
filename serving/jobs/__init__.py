"""Jobs: the worker that runs them, the store that keeps them, the result cache and webhooks."""
