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


class NonFinite(Exception):
    """A loss, a penalty or a weight became NaN or infinite during training.

    ``where`` names the phase, the step and the term (``D step 153: loss/D
    = nan``); the CLI prints it with the last good checkpoint and exits 3."""

    exit_code = 3

    def __init__(self, where: str, kimg: float) -> None:
        super().__init__(where)
        self.where = where
        self.kimg = kimg
