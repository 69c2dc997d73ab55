"""Tests of latency_server.admission."""
