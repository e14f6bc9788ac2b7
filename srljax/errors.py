"""Errors that mean "the user asked for something that cannot be done".

Command-line entry points turn a `UserError` into one line on stderr and exit code 2.
"""


class UserError(ValueError):
    """Bad input from the user: unknown names, invalid values, impossible layouts."""


class RunError(RuntimeError):
    """The run cannot go on (e.g. non-finite values): one line on stderr and exit code 1."""


class NonFiniteError(RunError):
    """Too many consecutive updates were skipped for non-finite gradients."""
