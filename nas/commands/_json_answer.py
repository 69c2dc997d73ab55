"""The ``--json`` option of the commands that report an answer: a file, or ``-`` for standard output."""

from __future__ import annotations

import json
from typing import Any

from nas.errors import UserError


def emit_json(target: str | None, out: dict[str, Any]) -> bool:
    """Write ``out`` to the file ``target``, or print it when ``target`` is ``-``; True when it was printed (the
    command then prints nothing else)."""
    if target and target != "-":
        try:
            with open(target, "w") as f:
                json.dump(out, f, indent=1)
        except OSError as exc:
            raise UserError(f"--json: cannot write {target}: {exc}") from None
    if target == "-":
        print(json.dumps(out))
        return True
    return False
