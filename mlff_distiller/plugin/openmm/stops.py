"""Clean stops of an MD run on SIGINT (Ctrl-C) and SIGTERM (``kill``, batch schedulers at their time limit).

The first signal asks the run to stop after the step it is taking: the frame is written, the
checkpoint saved, ``summary.json`` written and the summary printed. A second signal stops at once
(as ``KeyboardInterrupt``), still writing the summary.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator

#: Stop reason and exit code (128 + the signal's number, as a shell reports it) of each signal.
STOPS: dict[int, tuple[str, int]] = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}


class StopRequests:
    """The stop signal received during a run, if any (see :data:`STOPS`).

    Attributes
    ----------
    signal : int or None
        The first SIGINT or SIGTERM received inside :meth:`catching`.
    """

    def __init__(self):
        self.signal: int | None = None

    @property
    def reason(self) -> str | None:
        """``"interrupted"`` (SIGINT), ``"terminated"`` (SIGTERM) or None."""
        return STOPS[self.signal][0] if self.signal is not None else None

    @contextlib.contextmanager
    def catching(self) -> Iterator["StopRequests"]:
        """Record SIGINT and SIGTERM instead of dying, inside the block (main thread only).

        A signal the process ignores (a background job's SIGINT) stays ignored.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.getsignal(number) for number in STOPS}

        def handler(number, frame):
            if self.signal is not None:
                raise KeyboardInterrupt
            self.signal = number

        for number, old in previous.items():
            if old is not signal.SIG_IGN:
                signal.signal(number, handler)
        try:
            yield self
        finally:
            for number, old in previous.items():
                if old is not None:  # None: a handler not set from Python, which cannot be put back
                    signal.signal(number, old)
