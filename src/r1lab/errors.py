"""User-facing errors: one clear message, exit code 2, no traceback (DESIGN.md, "Errors and data safety")."""


class UserError(Exception):
    """Bad input from the user: a config key, a data file line, a model path, a task name.

    The CLI prints ``error: <message>`` and exits with code 2. Raise it with a message that names the
    file, line or key at fault, and what would be valid.
    """

    exit_code = 2


class TrainingError(Exception):
    """A run that cannot go on (e.g. K non-finite updates in a row): one message, exit code 1, the last good
    checkpoint left as it was."""

    exit_code = 1


def did_you_mean(name: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string."""
    import difflib

    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
