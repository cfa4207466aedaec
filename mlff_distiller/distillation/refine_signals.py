"""Stopping an active-distillation run on SIGINT (Ctrl-C) or SIGTERM, at once or after a write in progress.

Inside :meth:`StopOnSignal.catching` either signal raises :class:`Interrupted` where the run is, except
inside :meth:`StopOnSignal.deferred` blocks (a frame being appended to the dataset, a state file being
written), which finish first. Every finished stage and every labelled frame is on disk, so the run
continues with ``--resume``.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator


class Interrupted(Exception):
    """The run was stopped by a signal; its state is kept.

    Attributes
    ----------
    signal : int
        SIGINT or SIGTERM.
    exit_code : int
        130 (SIGINT) or 143 (SIGTERM), as a shell reports them.
    """

    def __init__(self, number: int, where: str = ""):
        from ..plugin.openmm.stops import STOPS  # (OpenMM loads with its package: not before a run needs it)

        self.signal = number
        self.reason, self.exit_code = STOPS[number]
        super().__init__(f"{self.reason}{' ' + where if where else ''} ({signal.Signals(number).name})")


class StopOnSignal:
    """Turn SIGINT and SIGTERM into :class:`Interrupted`, deferring it out of critical writes."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def catching(self) -> Iterator["StopOnSignal"]:
        """Install the handlers for the block (main thread only; signals a process ignores stay ignored)."""
        from ..plugin.openmm.stops import STOPS

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.getsignal(number) for number in STOPS}

        def handler(number, frame):
            if self._depth:
                self.pending = number
            else:
                raise Interrupted(number)

        for number, old in previous.items():
            if old is not signal.SIG_IGN:
                signal.signal(number, handler)
        try:
            yield self
        finally:
            for number, old in previous.items():
                if old is not None:
                    signal.signal(number, old)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a signal does not cut short: :class:`Interrupted` is raised when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending is not None:
            number, self.pending = self.pending, None
            raise Interrupted(number)
