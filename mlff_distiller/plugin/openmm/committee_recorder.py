"""The committee force deviation of an MD run, recorded at each trajectory frame (``mlffd md --committee``).

The committee is the model that drives the MD plus the extra members. The driving model's forces
are those of the OpenMM state at the frame (the forces that moved the atoms), whatever the model's
source (checkpoint, bundled student or TorchScript export, in the precision the run computes in);
the extra members are evaluated on the frame's positions by their own
:class:`~mlff_distiller.models.StudentCalculator` in float64. The deviation is
:func:`mlff_distiller.models.committee.force_deviation`. The cost is paid at frames only, never per step.
"""

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ...elements import check_supported
from ...errors import CheckpointError, MLFFDError, first_line
from ...models.calculator import StudentCalculator
from ...models.committee import force_deviation
from ...units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

#: Multiplies forces in kJ/mol/nm to give eV/Å.
EV_PER_A_PER_KJ_PER_MOL_NM = 1.0 / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM)
#: Observables the recorder fills (eV/Å), see docs/trajectory-format.md.
DEVIATION_OBSERVABLES = ("force_deviation_max", "force_deviation_mean")


class CommitteeRecorder:
    """Largest and mean per-atom force deviation of the driving model and extra members, per frame.

    Parameters
    ----------
    members : sequence of str or Path
        Student checkpoints (bundled students resolved to their files), one or more: with the
        driving model the committee has ``len(members) + 1`` members.
    numbers : ndarray (N,)
        Atomic numbers of the simulated atoms.

    Raises
    ------
    UnsupportedElementError
        In one line, naming the member that lacks an element of the structure.
    CheckpointError
        For a member that is not a readable student checkpoint (an export, a foreign file).
    """

    def __init__(self, members: Sequence[str | Path], numbers: np.ndarray) -> None:
        self.numbers = np.asarray(numbers, dtype=int)
        self.calculators = []
        for member in members:
            try:
                calculator = StudentCalculator(Path(member))
            except CheckpointError as exc:
                raise CheckpointError(
                    f"committee member {first_line(exc)}; members are student checkpoints or bundled students "
                    "(the model that drives the run may be an export)"
                ) from None
            check_supported(self.numbers, calculator.student.elements, what=f"committee member {member}")
            self.calculators.append(calculator)

    def deviation(
        self, positions_nm: np.ndarray, box_nm: np.ndarray | None, forces_kj_per_mol_nm: np.ndarray
    ) -> tuple[float, float]:
        """(max, mean) per-atom force deviation in eV/Å on one frame; NaN (with a warning) when a member refuses it.

        Parameters
        ----------
        positions_nm : ndarray (N, 3)
            Positions in nm (OpenMM's state).
        box_nm : ndarray (3, 3) or None
            Box vectors as rows in nm, None for a molecule in vacuum.
        forces_kj_per_mol_nm : ndarray (N, 3)
            The driving model's forces in kJ/mol/nm (OpenMM's state).
        """
        atoms = Atoms(numbers=self.numbers, positions=np.asarray(positions_nm, dtype=np.float64) * NM_TO_ANGSTROM)
        if box_nm is not None:
            atoms.set_cell(np.asarray(box_nm, dtype=np.float64) * NM_TO_ANGSTROM)
            atoms.set_pbc(True)
        forces = [np.asarray(forces_kj_per_mol_nm, dtype=np.float64) * EV_PER_A_PER_KJ_PER_MOL_NM]
        try:
            for calculator in self.calculators:
                calculator.calculate(atoms, ["forces"])
                forces.append(calculator.results["forces"])
        except MLFFDError as exc:  # a member refusing a frame (atoms too close) leaves a recorded gap
            print(f"mlffd: warning: committee deviation not recorded on this frame: {first_line(exc)}", file=sys.stderr)
            return math.nan, math.nan
        largest, mean = force_deviation(np.stack(forces))
        return float(largest), float(mean)
