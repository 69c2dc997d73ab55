"""Whole-network measurements and their verdict: the central figure, the upper bound and the device's drift."""
