"""The HTTP layer: the FastAPI app, its routers, typed errors, upload limits, middleware and metrics."""
