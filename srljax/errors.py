"""Errors that mean "the user asked for something that cannot be done".

Command-line entry points turn a `UserError` into one line on stderr and exit code 2.
"""


class UserError(ValueError):
    """Bad input from the user: unknown names, invalid values, impossible layouts."""


class RunError(RuntimeError):
    """The run cannot go on (e.g. non-finite values): one line on stderr and exit code 1."""


class NonFiniteError(RunError):
    """Too many consecutive updates were skipped for non-finite gradients."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is: save what can be saved, one line, exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        import signal
        return signal.Signals(self.signum).name


def interrupt_code(exc: BaseException) -> int:
    """The exit status of an interrupted run: 130 for Ctrl-C, 128 + N for signal N."""
    return 128 + getattr(exc, "signum", 2)
