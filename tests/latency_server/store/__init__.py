"""Tests of latency_server.store."""
