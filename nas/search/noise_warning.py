"""The device's noise warning, printed once per target.

A server whose device is too noisy for a tight bound says so in its verdict (``verdict.noise_warning``: the
device's drift, the best bound reachable now, what would help). A search that must keep the bound under the limit
would otherwise return a network far under it without a word, so the warning is printed as it arrives, once for
each target (the following verdicts on the same device say the same).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from shared.api_schemas import NetworkResponse

__all__ = ["NoiseWarnings", "format_noise_warning"]


def format_noise_warning(target: str, limit_ms: float, warning: str) -> str:
    """The printed form: which target and limit it concerns, then the server's words."""
    return (f"warning: {target} (limit {limit_ms:g} ms): {warning}\n"
            f"  the search keeps the bound under the limit, so the network it returns may use far less than the "
            f"limit on this device until the spread comes down")


class NoiseWarnings:
    """Prints each target's first noise warning to ``out`` (standard error by default) and remembers it."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out
        self.printed: dict[str, str] = {}

    def see(self, target: str, limit_ms: float, answer: NetworkResponse) -> None:
        """Print the answer's warning unless this target's was printed already."""
        warning = None if answer.verdict is None else answer.verdict.noise_warning
        if warning and target not in self.printed:
            self.printed[target] = warning
            print(format_noise_warning(target, limit_ms, warning), file=self.out or sys.stderr, flush=True)
