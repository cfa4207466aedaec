"""Structures are checked where they enter, before any work: each kind of refusal is one line naming the fault.

read_structure (and so ``mlffd md``, ``export --topology``, ``check-engines`` and ``sample``) refuses
unknown elements, non-finite or absurd coordinates, overlapping atoms, unusable cells and empty
files; a model refuses elements it lacks and periodic boxes narrower than its cutoff; the ASE
calculator refuses NaN positions instead of returning a finite energy.
"""

import re

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from kit import RECOMPUTED

from mlff_distiller.data import bundled_student
from mlff_distiller.errors import StructureError, UnsupportedElementError
from mlff_distiller.models import StudentCalculator
from mlff_distiller.structures import (
    check_box_for_cutoff,
    check_structure,
    closest_pair,
    periodic_widths,
    read_structure,
)

WATER = [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]


def xyz(path, symbols, positions, comment=""):
    path.write_text(
        f"{len(symbols)}\n{comment}\n"
        + "".join(f"{s} {x} {y} {z}\n" for s, (x, y, z) in zip(symbols, positions, strict=True))
    )
    return path


@pytest.mark.parametrize(
    "symbol, words",
    [
        (
            "X",
            r"X \(atomic number 0\) is not a chemical element; give the periodic table's elements, H \(1\) to Og \(118\)",
        ),
        ("Xx", r"'Xx' is not a chemical element; give the periodic table's elements, H \(1\) to Og \(118\)"),
    ],
)
def test_unknown_elements(tmp_path, symbol, words):
    path = xyz(tmp_path / "bad.xyz", ["O", "H", symbol], WATER)
    with pytest.raises(UnsupportedElementError, match=words):
        read_structure(path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e30"])
def test_coordinates_must_be_finite_and_sensible(tmp_path, value):
    positions = [row[:] for row in WATER]
    positions[2][1] = value
    with pytest.raises(StructureError, match="atom\\(s\\) 2") as error:
        read_structure(xyz(tmp_path / "bad.xyz", ["O", "H", "H"], positions))
    assert ("non-finite" if value != "1e30" else "beyond ±10000 Å") in str(error.value)


def test_overlapping_atoms_name_the_pair_and_distance(tmp_path):
    path = xyz(tmp_path / "close.xyz", ["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [0.96, 0.2, 0]])
    with pytest.raises(
        StructureError, match=r"atom 2 \(H\) is 0\.2 Å from atom 1 \(H\); atoms closer than 0\.5 Å overlap"
    ):
        read_structure(path)
    path = xyz(tmp_path / "same.xyz", ["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [0.96, 0, 0]])
    with pytest.raises(StructureError, match="is 0 Å from atom"):
        read_structure(path)


def test_overlap_through_the_periodic_boundary(tmp_path):
    atoms = Atoms("OH2", positions=[[0.1, 3, 3], [1.06, 3, 3], [5.9, 3, 3]], cell=[6.0, 6.0, 6.0], pbc=True)
    with pytest.raises(StructureError, match=r"0\.2 Å from a periodic image of atom"):
        check_structure(atoms)


@pytest.mark.parametrize(
    "cell, words",
    [
        ([[5, 0, 0], [5, 0, 0], [0, 0, 5]], "singular"),
        ([[5, 0, 0], [0, 0, 5], [0, 5, 0]], "left-handed"),
        ([[0.3, 0, 0], [0, 6, 0], [0, 0, 6]], "0.3 Å across along a"),
        ([[6, 0, 0], [0, 6, 0], [0, 0, np.nan]], "non-finite"),
    ],
)
def test_unusable_cells(tmp_path, cell, words):
    atoms = Atoms("OH2", positions=np.array(WATER) + 0.1, cell=cell, pbc=True)
    with pytest.raises(StructureError, match=words):
        check_structure(atoms)
    if np.isfinite(cell).all():
        path = tmp_path / "box.extxyz"
        write(path, atoms)
        with pytest.raises(StructureError, match=words):
            read_structure(path)


def test_empty_structures(tmp_path):
    (tmp_path / "zero.xyz").write_text("")
    with pytest.raises(StructureError, match="cannot read"):
        read_structure(tmp_path / "zero.xyz")
    (tmp_path / "none.xyz").write_text("0\n\n")
    with pytest.raises(StructureError, match="no atoms"):
        read_structure(tmp_path / "none.xyz")


def test_closest_pair_equals_ase_minimum_image_distances(rng):
    """The k-d tree search against ASE's own minimum-image distance matrix, on skewed periodic cells."""
    for trial in range(20):
        cell = np.diag(rng.uniform(3.0, 7.0, 3)) + np.triu(rng.uniform(-1.5, 1.5, (3, 3)), 1)
        atoms = Atoms("H" * 12, positions=rng.uniform(-4, 10, (12, 3)), cell=cell, pbc=[True, True, trial % 2 == 0])
        distances = atoms.get_all_distances(mic=True)
        np.fill_diagonal(distances, np.inf)
        expected = distances.min()
        i, j, found, _ = closest_pair(atoms, within=expected * 1.0001)
        assert abs(found - expected) <= RECOMPUTED * max(1.0, expected)
        assert abs(distances[i, j] - expected) <= RECOMPUTED * max(1.0, expected)
        assert closest_pair(atoms, within=expected * 0.999) is None


def test_a_cell_wide_enough_keeps_atoms_off_their_own_images(rng):
    """Every lattice vector is at least as long as the narrowest width: the width check covers self-images."""
    for _ in range(50):
        cell = rng.normal(size=(3, 3)) * 3
        lattice = np.array(
            [n @ cell for n in np.ndindex(5, 5, 5) if any(n)]
            + [(np.array(n) - 2) @ cell for n in np.ndindex(5, 5, 5) if any(np.array(n) - 2)]
        )
        assert np.linalg.norm(lattice, axis=1).min() >= periodic_widths(cell).min() * (1 - 1e-12)


def test_a_box_narrower_than_the_cutoff():
    check_box_for_cutoff(np.diag([9.86, 9.86, 9.86]), 5.0)  # the bundled water box: between one and two cutoffs
    with pytest.raises(StructureError, match=r"4\.5 Å across along b .* the model's cutoff is 5 Å"):
        check_box_for_cutoff(np.diag([9.86, 4.5, 9.86]), 5.0)


# -- where structures enter -------------------------------------------------------------------------


def one_error_line(result) -> str:
    assert "Traceback" not in result.err + result.out
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlffd: error: "), result.err
    return lines[0]


@pytest.mark.parametrize(
    "symbols, positions, words",
    [
        (["O", "H", "X"], WATER, "X .atomic number 0. is not a chemical element"),
        (["O", "H", "Xx"], WATER, "'Xx' is not a chemical element"),
        (
            ["O", "H", "Og"],
            WATER,
            "element Og .atomic number 118. is not in OpenMM's element table, which holds H .1. to Lv .116.",
        ),
        (["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [0.96, 0.05, 0]], "0.05 Å from atom 1"),
        (["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [1e30, 0, 0]], "beyond ±10000 Å"),
    ],
)
def test_md_refuses_before_any_step(tmp_path, mlffd, symbols, positions, words):
    path = xyz(tmp_path / "bad.xyz", symbols, positions)
    line = one_error_line(
        mlffd(
            "md",
            path,
            "--model",
            "organic-ultra-tiny",
            "--time",
            "0.01",
            "--report-interval",
            "5",
            "-o",
            tmp_path / "run",
        )
    )
    assert re.search(words, line), line
    assert not (tmp_path / "run").exists()


def test_md_refuses_a_pdb_with_overlapping_atoms(tmp_path, mlffd):
    rows = [("O1", "O", 0.0, 0.0), ("H1", "H", 0.96, 0.0), ("H2", "H", 0.96, 0.1)]
    (tmp_path / "bad.pdb").write_text(
        "".join(
            f"HETATM{i + 1:5d} {name:<4s} MOL A   1    {x:8.3f}{y:8.3f}{0.0:8.3f}  1.00  0.00          {element:>2s}\n"
            for i, (name, element, x, y) in enumerate(rows)
        )
        + "END\n"
    )
    line = one_error_line(mlffd("md", tmp_path / "bad.pdb", "--model", "organic-ultra-tiny", "-o", tmp_path / "run"))
    assert "atom 2 (H) is 0.1 Å from atom 1 (H)" in line and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["check-engines", "export"])
def test_other_commands_refuse_the_same(tmp_path, mlffd, command):
    path = xyz(tmp_path / "bad.xyz", ["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [0.96, 0.05, 0]])
    args = (
        ["check-engines", "organic-ultra-tiny", path, "--engines", "ase"]
        if command == "check-engines"
        else ["export", "organic-ultra-tiny", "--engine", "openmm", "--topology", path, "-o", tmp_path / "m.pt"]
    )
    assert "0.05 Å from atom 1" in one_error_line(mlffd(*args))


def test_check_engines_refuses_a_box_narrower_than_the_cutoff(tmp_path, mlffd):
    write(tmp_path / "thin.extxyz", Atoms("OH2", positions=np.array(WATER) + 1.0, cell=[4.0, 6.0, 6.0], pbc=True))
    line = one_error_line(mlffd("check-engines", "water-standard", tmp_path / "thin.extxyz", "--engines", "ase"))
    assert "4 Å across along a" in line and "cutoff is 5 Å" in line


def test_student_calculator_refuses_nan_positions():
    atoms = read_structure("ethanol")
    atoms.calc = StudentCalculator(bundled_student("organic-ultra-tiny"), kernel="portable")
    energy = atoms.get_potential_energy()
    atoms.positions[3, 1] = np.nan
    with pytest.raises(StructureError, match=r"non-finite positions for atom\(s\) 3"):
        atoms.get_potential_energy()
    with pytest.raises(StructureError):
        atoms.get_forces()
    atoms.positions[3, 1] = 0.0
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_potential_energy() != energy


def test_student_calculator_refuses_a_box_narrower_than_its_cutoff():
    atoms = Atoms("OH2", positions=WATER, cell=[4.0, 6.0, 6.0], pbc=True)
    atoms.calc = StudentCalculator(bundled_student("water-standard"), kernel="portable")
    with pytest.raises(StructureError, match="4 Å across along a"):
        atoms.get_potential_energy()
