"""The numbers a user gives, and what each quantity accepts: one rule per quantity, for the CLI and the API.

A :class:`Rule` is both an argparse ``type`` (``parser.add_argument("--time", type=TIME_PS)``: a bad
value is a one-line usage error naming it and what is accepted, exit code 2) and the check of the
same quantity in the Python API (``TIME_PS.check(settings.time, "time")`` raises
:class:`~mlff_distiller.errors.InvalidValueError`). Every rule refuses NaN and infinities.

>>> TIMESTEP_FS("0.5")
0.5
>>> TIMESTEP_FS.check(0.0, "timestep")
Traceback (most recent call last):
...
mlff_distiller.errors.InvalidValueError: timestep = 0.0 is not accepted; give a finite time step in fs greater than 0 and at most 1000

This module imports nothing heavy: ``mlffd --help`` builds every option with it.
"""

import argparse
import math
import numbers
from dataclasses import dataclass

from .errors import InvalidValueError

#: Largest seed: OpenMM's random number seeds are C ``int`` (and so are LAMMPS's).
MAX_SEED = 2**31 - 1
#: Largest count or number of steps: what an int64 holds (numpy, HDF5, torch and OpenMM's step count).
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """What one quantity accepts: a finite number (or a whole number) within bounds.

    Attributes
    ----------
    what : str
        The quantity in words, with its unit, as error messages name it: ``"time step in fs"``.
    integer : bool
        Whole numbers only.
    low, high : float, optional
        Bounds (None: unbounded on that side).
    low_open, high_open : bool
        The bound itself is excluded (``low_open``: greater than ``low``).
    """

    what: str
    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """What is accepted, in words: ``"a finite time step in fs greater than 0"``."""
        kind = f"whole number ({self.what})" if self.integer else f"finite {self.what}"
        article = "an" if kind[0] in "aeiou" else "a"
        bounds = []
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f"{article} {kind} from {_number(self.low)} to {_number(self.high)}"
        if self.low is not None:
            bounds.append(f"{'greater than' if self.low_open else 'at least'} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"{'less than' if self.high_open else 'at most'} {_number(self.high)}")
        return f"{article} {kind}" + (" " + " and ".join(bounds) if bounds else "")

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not accepted (``"give ..."``), or None when it is."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"give {self.describe()}"
        if self.integer and not (isinstance(value, numbers.Integral) or float(value).is_integer()):
            return f"give {self.describe()}"
        number = float(value) if not isinstance(value, numbers.Integral) else value
        if isinstance(number, float) and not math.isfinite(number):
            return f"give {self.describe()}"
        low_ok = self.low is None or (number > self.low if self.low_open else number >= self.low)
        high_ok = self.high is None or (number < self.high if self.high_open else number <= self.high)
        return None if low_ok and high_ok else f"give {self.describe()}"

    def check(self, value, name: str):
        """``value`` if accepted (an int for whole-number rules); else :class:`InvalidValueError` naming ``name``."""
        problem = self.problem(value)
        if problem is not None:
            raise InvalidValueError(f"{name} = {value!r} is not accepted; {problem}")
        return int(value) if self.integer else float(value)

    def __call__(self, text: str):
        """Parse a command-line value (the argparse ``type``): one-line usage error when not accepted."""
        try:
            value = int(text, 10) if self.integer else float(text)
        except (TypeError, ValueError):
            value = None
        if value is None or self.problem(value) is not None:
            raise argparse.ArgumentTypeError(f"'{text}' is not accepted; give {self.describe()}")
        return value

    @property
    def __name__(self) -> str:  # argparse names a type by it in a few messages
        return self.what


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def problems(checks) -> list[str]:
    """Messages for the refused ones of ``(rule, value, name)`` triples: ``"name = value is not accepted; give ..."``."""
    return [
        f"{name} = {value!r} is not accepted; {rule.problem(value)}"
        for rule, value, name in checks
        if rule.problem(value)
    ]


def check_all(checks) -> None:
    """Raise :class:`InvalidValueError` naming every refused value of ``(rule, value, name)`` triples."""
    found = problems(checks)
    if found:
        raise InvalidValueError("; ".join(found))


# -- times, temperatures and dynamics ----------------------------------------------------------------
#: A length of simulated time that must pass (production, teacher reference MD), ps.
TIME_PS = Rule("time in ps", low=0.0, low_open=True)
#: A warm-up that may be skipped, ps.
WARMUP_PS = Rule("time in ps", low=0.0)
#: The MD time step, fs: at most 1 ps (atoms vibrate with periods of 10 to 300 fs; an explosion
#: test may ask for 200 fs, nothing atomistic for more).
TIMESTEP_FS = Rule("time step in fs", low=0.0, high=1000.0, low_open=True)
#: A temperature to start or hold a system at (0 K: from rest), K.
TEMPERATURE_K = Rule("temperature in K", low=0.0)
#: A temperature a run is compared with, stopped above, or sampled at (0 K samples nothing): K, not 0.
POSITIVE_TEMPERATURE_K = Rule("temperature in K", low=0.0, low_open=True)
#: Langevin friction (0: no coupling), 1/ps.
FRICTION_PER_PS = Rule("friction in 1/ps", low=0.0)
#: Langevin friction of the teacher's sampling MD, 1/fs.
FRICTION_PER_FS = Rule("friction in 1/fs", low=0.0)
#: The time between stored frames, ps.
FRAME_INTERVAL_PS = Rule("time between frames in ps", low=0.0, low_open=True)

# -- counts -------------------------------------------------------------------------------------------
#: Seeds of random numbers: what OpenMM (a C int) accepts.
SEED = Rule("seed", integer=True, low=0, high=MAX_SEED)
#: How many of something: frames, epochs, frames per batch, threads, workers, MPI ranks, rounds.
COUNT = Rule("count", integer=True, low=1, high=MAX_COUNT)
#: Steps between two events (frames, checkpoints, kept frames).
INTERVAL_STEPS = Rule("number of steps", integer=True, low=1, high=MAX_COUNT)
#: Steps that may be none (0: no warm-up steps, no audits).
STEPS = Rule("number of steps", integer=True, low=0, high=MAX_COUNT)
#: Epochs without improvement before stopping or lowering the learning rate.
PATIENCE = Rule("number of epochs", integer=True, low=1, high=MAX_COUNT)

# -- shares -------------------------------------------------------------------------------------------
#: A share of something, 0 to 1 inclusive.
FRACTION = Rule("fraction", low=0.0, high=1.0)
#: A share of something that must leave some behind: 0 inclusive to 1 exclusive.
FRACTION_BELOW_ONE = Rule("fraction", low=0.0, high=1.0, high_open=True)

# -- lengths, models and training ----------------------------------------------------------------------
#: A model's interaction range, Å (50 Å is beyond any MLFF; the neighbour search grows as its cube).
CUTOFF_A = Rule("cutoff in Å", low=0.0, high=50.0, low_open=True)
#: The standard deviation of random displacements, Å (0: copies).
DISPLACEMENT_A = Rule("displacement in Å", low=0.0)
#: A weight of a loss term (0: left out), or of AdamW's weight decay.
LOSS_WEIGHT = Rule("weight", low=0.0)
#: An optimiser's learning rate.
LEARNING_RATE = Rule("learning rate", low=0.0, low_open=True)
#: A force error, eV/Å.
FORCE_EV_PER_A = Rule("force in eV/Å", low=0.0, low_open=True)
#: A relative tolerance of engine agreement.
TOLERANCE = Rule("relative tolerance", low=0.0, low_open=True)

# -- budgets ------------------------------------------------------------------------------------------
#: A wall-clock budget that must allow something, minutes.
MINUTES = Rule("time in minutes", low=0.0, low_open=True)
#: A wall-clock budget or block that must allow something, seconds.
SECONDS = Rule("time in s", low=0.0, low_open=True)
#: A wall-clock budget that may be zero (0: skip what it pays for), seconds.
SECONDS_OR_NONE = Rule("time in s", low=0.0)
#: A memory limit, GB.
#: The most threads a kernel call may split its work over (``MAX_THREADS`` of the kernel's ``threads.h``).
MAX_THREADS = 1024
#: Threads of the fused kernel (``mlffd md --threads``, ``StudentCalculator(threads=...)``).
THREADS = Rule("number of threads", integer=True, low=1, high=MAX_THREADS)
GIGABYTES = Rule("memory in GB", low=0.0, low_open=True)
