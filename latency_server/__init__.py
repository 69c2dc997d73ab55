"""latency_server package."""
