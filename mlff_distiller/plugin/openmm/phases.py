"""The phases of an MD run: an optional Langevin warm-up, then the production, in one Context.

An NVE run with a warm-up steps a :class:`openmm.CompoundIntegrator` holding a
``LangevinMiddleIntegrator`` (the warm-up) and a ``VerletIntegrator`` (the production). Both are
leapfrog integrators with the same step, so the Context keeps positions and velocities across
the switch, and one checkpoint holds the state of both (the Langevin random stream included).
"""

import openmm
from openmm import unit

from .md_settings import MDSettings

#: Phase names: the per-frame ``equilibration`` observable is 1 in the first, 0 in the second.
EQUILIBRATION, PRODUCTION = "equilibration", "production"
#: Index of each phase's integrator in the CompoundIntegrator.
_INDEX = {EQUILIBRATION: 0, PRODUCTION: 1}


def langevin_integrator(settings: MDSettings) -> openmm.LangevinMiddleIntegrator:
    """Langevin middle integrator at the run's temperature (K), friction (1/ps) and time step (fs), seeded."""
    s = settings
    integrator = openmm.LangevinMiddleIntegrator(
        s.temperature * unit.kelvin, s.friction / unit.picosecond, s.timestep * unit.femtoseconds
    )
    integrator.setRandomNumberSeed(s.seed + 1)  # OpenMM reads 0 as 'a new random seed per Context'
    return integrator


class PhasedIntegrator:
    """The run's integrator, stepping the warm-up (steps before ``boundary``) and the production.

    Parameters
    ----------
    settings : MDSettings
        The run's settings: ensemble, warm-up length (ps), temperature (K), friction (1/ps),
        time step (fs) and seed.

    Attributes
    ----------
    integrator : openmm.Integrator
        What the Context is built with: a Verlet integrator (NVE without warm-up), a Langevin
        integrator (NVT, whose warm-up is the start of the same run) or a CompoundIntegrator
        (NVE after a Langevin warm-up).
    boundary : int
        The step at which the production starts.
    """

    def __init__(self, settings: MDSettings):
        self.boundary = settings.equilibration_steps
        self.production_label = settings.ensemble.upper()
        if settings.ensemble == "nvt":
            self.integrator = langevin_integrator(settings)
        elif self.boundary == 0:
            self.integrator = openmm.VerletIntegrator(settings.timestep * unit.femtoseconds)
        else:
            self.integrator = openmm.CompoundIntegrator()
            self.integrator.addIntegrator(langevin_integrator(settings))
            self.integrator.addIntegrator(openmm.VerletIntegrator(settings.timestep * unit.femtoseconds))

    def phase(self, step: int) -> str:
        """The phase that the step from ``step`` to ``step + 1`` belongs to (also the phase of frame ``step``)."""
        return EQUILIBRATION if step < self.boundary else PRODUCTION

    def label(self, step: int) -> str:
        """Short name of the phase at ``step`` for progress bars: ``"NVT warm-up"``, ``"NVE"`` or ``"NVT"``."""
        return "NVT warm-up" if self.phase(step) == EQUILIBRATION else self.production_label

    def step(self, start: int, count: int) -> None:
        """Take ``count`` steps from step ``start``, switching integrators at :attr:`boundary`.

        The integrator of the phase of the final step stays selected, so the state's kinetic
        energy at the boundary is the production integrator's.
        """
        end = start + count
        while start < end:
            stop = end if start >= self.boundary else min(end, self.boundary)
            self._select(start)
            self.integrator.step(stop - start)
            start = stop
        self._select(end)

    def _select(self, step: int) -> None:
        """Make the integrator of the phase at ``step`` the current one (of a CompoundIntegrator)."""
        if isinstance(self.integrator, openmm.CompoundIntegrator):
            self.integrator.setCurrentIntegrator(_INDEX[self.phase(step)])
