"""Prefect tasks: thin wrappers over the core clients that add retries, caching, timeouts and artifacts."""
