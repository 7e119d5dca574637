"""The error a user can fix: the CLI prints it on one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in a recipe, a path or a command line.

    A component that rejects one of its own options passes ``key`` (the
    option's name); the recipe loader then prefixes the file and the full key
    path, as in ``recipe.toml: data.path: no such folder (line 9)``.
    """

    exit_code = 2

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
