"""Tests of latency_server.worker."""
