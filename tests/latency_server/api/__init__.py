"""Tests of latency_server.api."""
