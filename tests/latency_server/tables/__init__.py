"""Tests of latency_server.tables."""
