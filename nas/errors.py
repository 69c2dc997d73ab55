"""Errors shared by the command line and its commands, in a module of their own so that :mod:`nas.cli` (which
imports the commands) and the commands (which raise them) both import it without importing each other."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An error caused by the user's input; printed as one line, never as a stack trace."""
