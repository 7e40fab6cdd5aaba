"""The error every CLI command raises for a refusal the user should read as one line."""

from __future__ import annotations


class CommandError(Exception):
    """A command could not do what was asked; the message is shown as one line."""
