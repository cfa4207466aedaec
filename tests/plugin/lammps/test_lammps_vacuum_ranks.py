"""pair_style mlffd on MPI ranks that own no atoms: a molecule in a large vacuum box, an empty box
and a single atom, on 1, 2 and 3 ranks.

Each rank runs every layer of the network, on zero atoms where its domain is empty, so that it
takes part in every per-layer exchange of features and gradients (collective in LAMMPS). The
1-rank run is checked against the student in Python (autograd), and 2 and 3 ranks against 1.
"""

import torch

import numpy as np
import pytest
from kit import ENGINE64, assert_close
from lammps_harness import read_dump_frames, run_lammps, thermo, write_data

from mlff_distiller.data import bundled_structure, resolve_model
from mlff_distiller.export.lammps import export_lammps
from mlff_distiller.models import load_checkpoint
from mlff_distiller.structures import read_structure

#: Aspirin centred at (30, 30, 20) Å in a 60 Å vacuum box split along z (processors 1 1 *): on 2
#: ranks ([0, 30), [30, 60)) the second owns no atom but holds ghosts; on 3 ([0, 20), [20, 40),
#: [40, 60)) the molecule straddles the first two and the third holds nothing at all.
CENTRE = np.array([30.0, 30.0, 20.0])
ELEMENTS = ["C", "H", "O"]

MD = """
units metal
atom_style atomic
boundary f f f
processors 1 1 *
read_data system.data
pair_style mlffd {model}
pair_coeff * * C H O
velocity all create 400 4928459 loop geom
fix nve all nve
timestep 0.0005
dump frame all custom 1 dump.txt id type x y z fx fy fz
dump_modify frame format float %.17g
thermo_style custom step pe ke etotal
thermo_modify format float %.17g
thermo 1
run 8
"""

#: An empty box (run), then one H atom in it (run): energy and forces on every rank count.
EMPTY_THEN_ONE_ATOM = """
units metal
atom_style atomic
boundary p p p
region box block 0 60 0 60 0 60
create_box 3 box
mass 1 12.011
mass 2 1.008
mass 3 15.999
pair_style mlffd {model}
pair_coeff * * C H O
fix nve all nve
run 3
print "EMPTY atoms $(atoms) energy $(pe:%.17g) fmax $(fmax:%.17g)"
create_atoms 2 single 11.0 37.0 52.0 units box
run 3
print "SINGLE atoms $(atoms) energy $(pe:%.17g) fmax $(fmax:%.17g)"
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vacuum-model")
    return export_lammps(resolve_model("organic-tiny"), folder / "organic-tiny.pt", precision="float64")


@pytest.fixture(scope="module")
def student():
    return load_checkpoint(resolve_model("organic-tiny"), dtype=torch.float64)


@pytest.fixture(scope="module")
def molecule_md(model, tmp_path_factory):
    """Thermo and dumped frames of the aspirin MD per rank count (run once each, lazily)."""
    cache = {}

    def run(ranks):
        if ranks not in cache:
            folder = tmp_path_factory.mktemp(f"aspirin-{ranks}")
            aspirin = read_structure(str(bundled_structure("aspirin")))
            aspirin.positions += CENTRE - aspirin.positions.mean(0)
            aspirin.set_cell([60.0, 60.0, 60.0])
            write_data(aspirin, folder / "system.data", ELEMENTS)
            result = run_lammps(MD.format(model=model), folder, ranks=ranks)
            cache[ranks] = (thermo(folder / "log.lammps"), read_dump_frames(folder / "dump.txt"), result.stdout)
        return cache[ranks]

    return run


def test_one_rank_equals_the_student_at_every_step(molecule_md, student):
    log, frames, _ = molecule_md(1)
    assert len(frames) == len(log["PotEng"]) == 9
    species = student.species([{1: 6, 2: 1, 3: 8}[int(t)] for t in frames[0]["type"]])
    for step, frame in enumerate(frames):
        positions = torch.tensor(np.stack([frame["x"], frame["y"], frame["z"]], 1))
        energy, forces = student.energy_and_forces(positions, species)  # in vacuum
        assert_close(log["PotEng"][step], float(energy), ENGINE64, f"energy at step {step}")
        assert_close(np.stack([frame["fx"], frame["fy"], frame["fz"]], 1), forces, ENGINE64, f"forces at step {step}")
    assert np.ptp(log["PotEng"]) > 1e-3  # the molecule moved: the steps are not one configuration repeated


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_without_atoms_equal_one_rank(molecule_md, ranks):
    one, one_frames, _ = molecule_md(1)
    many, many_frames, output = molecule_md(ranks)
    assert f"1 by 1 by {ranks} MPI processor grid" in output
    nlocal = next(line.split() for line in output.splitlines() if line.startswith("Nlocal:"))
    assert nlocal[-2:] == ["0", "min"], nlocal  # a rank without atoms
    for column in ("PotEng", "KinEng", "TotEng"):
        assert_close(many[column], one[column], ENGINE64, column)
    for step, (a, b) in enumerate(zip(many_frames, one_frames, strict=True)):
        assert np.array_equal(a["id"], b["id"])
        for column in ("x", "y", "z", "fx", "fy", "fz"):
            assert_close(a[column], b[column], ENGINE64, f"{column} at step {step}")


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_empty_box_and_single_atom(model, student, ranks, tmp_path):
    """Energy 0 with no atoms; one atom's energy is its element's reference energy (the student's),
    its force 0; exit 0 on every rank count."""
    result = run_lammps(EMPTY_THEN_ONE_ATOM.format(model=model), tmp_path, ranks=ranks)
    printed = {
        line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("EMPTY", "SINGLE"))
    }
    assert printed["EMPTY"][1:] == ["atoms", "0", "energy", "0", "fmax", "0"], printed
    assert printed["SINGLE"][2] == "1" and float(printed["SINGLE"][6]) == 0.0, printed
    energy, _ = student.energy_and_forces(torch.zeros(1, 3, dtype=torch.float64), student.species([1]))
    assert_close(float(printed["SINGLE"][4]), float(energy), ENGINE64, "energy of one H atom")
