"""Errors a user can cause and fix. The CLI prints them as one line and exits 2."""


class MLFFDError(Exception):
    """Base class: a problem with the user's input, explained in its message."""


class CheckpointError(MLFFDError):
    """A checkpoint or exported model that cannot be read: corrupt, foreign or too new."""


class UnsupportedElementError(MLFFDError):
    """A structure contains an element the model (or teacher) was not built for."""


class StructureError(MLFFDError):
    """A structure that cannot be simulated: non-finite positions, a box too small, a bad file."""


class TrajectoryError(MLFFDError):
    """A trajectory that cannot be analysed: missing observables, mismatched atoms, a corrupt file."""


class SimulationError(MLFFDError):
    """An MD run that had to stop: non-finite energy, temperature explosion, teacher disagreement."""


class OverwriteError(MLFFDError):
    """An output that already exists and would be overwritten without ``--overwrite``."""


class InvalidValueError(MLFFDError, ValueError):
    """A number outside what its quantity accepts (a negative time step, a NaN temperature, a seed too large)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
