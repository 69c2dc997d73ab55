"""Lookup tables: building a table (missing blocks, calibration networks), its correction fit and predictions
of whole networks from it."""
