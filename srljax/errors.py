"""Errors that mean "the user asked for something that cannot be done".

Command-line entry points turn a `UserError` into one line on stderr and exit code 2.
"""


class UserError(ValueError):
    """Bad input from the user: unknown names, invalid values, impossible layouts."""


class RunError(RuntimeError):
    """The run cannot go on (e.g. non-finite values): one line on stderr and exit code 1."""


class WriteError(RunError):
    """A file of the run could not be written (disk full, file size limit, I/O error): one line naming
    the file and the cause, exit code 1. What was written before stays usable: the earlier
    checkpoints, and metrics.jsonl up to its last whole row (a failed write leaves no temp file and
    no half line)."""

    @classmethod
    def of(cls, path, exc: OSError) -> "WriteError":
        cause = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else f"{type(exc).__name__}: {exc}"
        return cls(f"could not write {path}: {cause}")


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
