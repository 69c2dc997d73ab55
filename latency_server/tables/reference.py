"""The drift reference: the small fixed network timed beside every table build and network measurement.

Its figures over time say how fast the device runs now against the build; a module of its own so that the
verdicts, the dashboard and the builds name the same network without importing each other.
"""

from __future__ import annotations

from shared.arch_string import ArchDef, format_arch
from shared.search_space import SearchSpace

__all__ = ["reference_arch", "reference_network"]


def reference_network(space: SearchSpace) -> ArchDef:
    """The drift reference: the space's lightest network (cheap, fixed, at the request's resolution)."""
    return space.arch_from_choice(space.lightest())


def reference_arch(space: SearchSpace) -> str:
    """The drift reference's arch string (its key in the store)."""
    return format_arch(reference_network(space))
