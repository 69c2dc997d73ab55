"""Tests of latency_server.verdicts."""
