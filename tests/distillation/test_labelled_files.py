"""Labelled frames from files written by ASE itself: extended XYZ, .traj, ASE databases, MACE-style keys, units."""

import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import Trajectory
from kit import RECOMPUTED

from mlff_distiller.distillation import Dataset, DatasetError
from mlff_distiller.errors import StructureError, UnsupportedElementError

# Independent constants (SI, CODATA 2018 exact values and the thermochemical calorie), not the package's table.
ELEMENTARY_CHARGE_C = 1.602176634e-19
AVOGADRO = 6.02214076e23
#: eV in one kcal/mol (≈ 0.0433641) and in one kJ/mol (≈ 0.0103643).
KCAL_PER_MOL_EV = 4184.0 / AVOGADRO / ELEMENTARY_CHARGE_C
KJ_PER_MOL_EV = 1000.0 / AVOGADRO / ELEMENTARY_CHARGE_C
#: eV in one hartree; eV/Å in one atomic unit of force (8.2387234983e-8 N; 1 eV/Å = 1.602176634e-9 N).
HARTREE_EV = 27.211386245988
HARTREE_PER_BOHR_EV_PER_A = 8.2387234983e-8 / 1.602176634e-9
#: Extended XYZ stores floats as text with 8 decimals.
EXTXYZ_DIGITS = 1e-8


def labelled_frames(rng, count=3, periodic_every=0):
    """Ethanol frames (a water box every ``periodic_every``-th) with raw labels: [(atoms, energy, forces, stress)]."""
    out = []
    for i in range(count):
        periodic = periodic_every and i % periodic_every == periodic_every - 1
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) if periodic else molecule("CH3CH2OH")
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        energy = float(rng.normal(-100, 5))
        forces = rng.normal(size=(len(atoms), 3))
        stress = rng.normal(scale=0.01, size=6) if periodic else None
        out.append((atoms, energy, forces, stress))
    return out


def with_calculator(frames):
    images = []
    for atoms, energy, forces, stress in frames:
        atoms = atoms.copy()
        results = {"energy": energy, "forces": forces, **({"stress": stress} if stress is not None else {})}
        atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    return images


def assert_labels(dataset, frames, tolerance=0.0, energy_scale=1.0, force_scale=1.0, rtol=1e-12):
    assert len(dataset) == len(frames)
    for frame, (atoms, energy, forces, stress) in zip(dataset.frames, frames, strict=True):
        np.testing.assert_array_equal(frame.numbers, atoms.numbers)
        np.testing.assert_allclose(frame.positions, atoms.positions, rtol=0, atol=tolerance)
        assert frame.energy == pytest.approx(energy * energy_scale, rel=rtol, abs=tolerance)
        np.testing.assert_allclose(frame.forces, forces * force_scale, rtol=rtol, atol=tolerance)
        if stress is None:
            assert np.isnan(frame.stress).all()
        else:
            np.testing.assert_allclose(frame.stress, stress * energy_scale, rtol=rtol, atol=tolerance)
            np.testing.assert_allclose(frame.cell, atoms.cell[:], atol=tolerance)
        assert frame.kind == "file"


def test_extended_xyz_written_by_ase(tmp_path, rng):
    frames = labelled_frames(rng, count=4, periodic_every=2)
    ase.io.write(tmp_path / "data.extxyz", with_calculator(frames))
    dataset = Dataset.load(tmp_path / "data.extxyz")
    assert_labels(dataset, frames, tolerance=EXTXYZ_DIGITS)
    assert [f.frame_id for f in dataset.frames] == [0, 1, 2, 3]
    source = dataset.attrs["source"]
    assert (source["energy_key"], source["forces_key"], source["stress_key"]) == ("energy", "forces", "stress")
    assert (source["energy_unit"], source["force_unit"]) == ("eV", "eV/Å")
    assert dataset.attrs["labels"] == [
        "data.extxyz: 4 frames (extxyz); energy from 'energy' in eV, forces from 'forces' in eV/Å, "
        "stress from 'stress' in eV/Å³"
    ]


def test_ase_trajectory(tmp_path, rng):
    frames = labelled_frames(rng, count=3, periodic_every=3)
    with Trajectory(tmp_path / "md.traj", "w") as trajectory:
        for atoms in with_calculator(frames):
            trajectory.write(atoms)
    assert_labels(Dataset.load(tmp_path / "md.traj"), frames)


def test_ase_database_with_calculator_and_with_key_value_pairs(tmp_path, rng):
    frames = labelled_frames(rng, count=3, periodic_every=3)
    with ase.db.connect(tmp_path / "calc.db") as database:
        for atoms in with_calculator(frames):
            database.write(atoms)
    assert_labels(Dataset.load(tmp_path / "calc.db"), frames)
    # labels as a row's key-value pair (energy) and data (forces), as MACE-style keys
    with ase.db.connect(tmp_path / "keys.db") as database:
        for atoms, energy, forces, _ in frames:
            database.write(atoms, REF_energy=energy, data={"REF_forces": forces})
    dataset = Dataset.load(tmp_path / "keys.db")
    assert_labels(dataset, [(a, e, f, None) for a, e, f, _ in frames])
    assert dataset.attrs["source"]["energy_key"] == "REF_energy"


def test_mace_style_keys_win_over_predictions_and_ase_slot(tmp_path, rng):
    frames = labelled_frames(rng, count=3)
    images = []
    for atoms, energy, forces, _ in frames:
        atoms = atoms.copy()
        atoms.info["REF_energy"] = energy
        atoms.arrays["REF_forces"] = forces
        atoms.info["MACE_energy"] = energy + 1.0  # a model's prediction next to the reference
        atoms.arrays["MACE_forces"] = forces + 1.0
        images.append(atoms)
    ase.io.write(tmp_path / "mace.xyz", images, format="extxyz")
    assert "REF_energy=" in (tmp_path / "mace.xyz").read_text()
    dataset = Dataset.load(tmp_path / "mace.xyz")
    assert_labels(dataset, frames, tolerance=EXTXYZ_DIGITS)
    assert (dataset.attrs["source"]["energy_key"], dataset.attrs["source"]["forces_key"]) == (
        "REF_energy",
        "REF_forces",
    )
    chosen = Dataset.load(tmp_path / "mace.xyz", energy_key="MACE_energy", forces_key="MACE_forces")
    assert chosen[0].energy == pytest.approx(frames[0][1] + 1.0, abs=EXTXYZ_DIGITS)


def test_mace_stress_as_a_full_tensor_becomes_voigt(tmp_path, rng):
    (atoms, energy, forces, _), *_ = labelled_frames(rng, count=3, periodic_every=1)
    tensor = rng.normal(size=(3, 3))
    tensor = tensor + tensor.T
    atoms.info.update(REF_energy=energy, REF_stress=tensor)
    atoms.arrays["REF_forces"] = forces
    ase.io.write(tmp_path / "s.extxyz", atoms)
    frame = Dataset.load(tmp_path / "s.extxyz")[0]
    expected = [tensor[0, 0], tensor[1, 1], tensor[2, 2], tensor[1, 2], tensor[0, 2], tensor[0, 1]]
    np.testing.assert_allclose(frame.stress, expected, atol=EXTXYZ_DIGITS)


def test_mace_virials_become_stress(tmp_path, rng):
    (atoms, energy, forces, _), *_ = labelled_frames(rng, count=3, periodic_every=1)
    virial = rng.normal(size=(3, 3))
    virial = virial + virial.T
    atoms.info.update(REF_energy=energy, REF_virials=virial)
    atoms.arrays["REF_forces"] = forces
    ase.io.write(tmp_path / "v.extxyz", atoms)
    dataset = Dataset.load(tmp_path / "v.extxyz", energy_unit="kcal/mol")
    volume = abs(np.linalg.det(atoms.cell[:]))
    tensor = -virial / volume * KCAL_PER_MOL_EV  # MACE and NequIP: virial = -stress * volume
    expected = [tensor[0, 0], tensor[1, 1], tensor[2, 2], tensor[1, 2], tensor[0, 2], tensor[0, 1]]
    np.testing.assert_allclose(dataset[0].stress, expected, rtol=RECOMPUTED, atol=EXTXYZ_DIGITS)
    assert "stress as -'REF_virials'/volume, virial in kcal/mol" in dataset.attrs["labels"][0]


@pytest.mark.parametrize(
    "energy_unit, force_unit, energy_ev, force_ev_per_a",
    [
        ("kcal/mol", "kcal/mol/Å", KCAL_PER_MOL_EV, KCAL_PER_MOL_EV),
        ("kJ/mol", "kJ/mol/A", KJ_PER_MOL_EV, KJ_PER_MOL_EV),
        ("meV", "meV/Å", 1e-3, 1e-3),
        ("Hartree", "Hartree/Bohr", HARTREE_EV, HARTREE_PER_BOHR_EV_PER_A),
        ("eV", "kJ/(mol·nm)", 1.0, KJ_PER_MOL_EV / 10),
    ],
)
def test_units_are_converted(tmp_path, rng, energy_unit, force_unit, energy_ev, force_ev_per_a):
    frames = labelled_frames(rng, count=2, periodic_every=2)
    with Trajectory(tmp_path / "u.traj", "w") as trajectory:
        for atoms in with_calculator(frames):
            trajectory.write(atoms)
    dataset = Dataset.load(tmp_path / "u.traj", energy_unit=energy_unit, force_unit=force_unit)
    # the atomic unit of force is given to 11 digits
    assert_labels(dataset, frames, energy_scale=energy_ev, force_scale=force_ev_per_a, rtol=RECOMPUTED)
    assert 0.0433641 == pytest.approx(KCAL_PER_MOL_EV, rel=1e-6)  # the constants of this test, checked
    assert f" in {dataset.attrs['source']['energy_unit']}," in dataset.attrs["labels"][0]


def test_round_trip_through_the_dataset_file(tmp_path, rng):
    frames = labelled_frames(rng, count=4, periodic_every=2)
    ase.io.write(tmp_path / "data.extxyz", with_calculator(frames))
    foreign = Dataset.load(tmp_path / "data.extxyz")
    foreign.save(tmp_path / "data.h5")
    again = Dataset.load(tmp_path / "data.h5")
    assert again.content_hash() == foreign.content_hash()
    np.testing.assert_array_equal(np.stack([f.stress for f in again.frames]), [f.stress for f in foreign.frames])
    assert again.attrs["source"]["energy_key"] == "energy"
    both = Dataset.load([tmp_path / "data.h5", tmp_path / "data.extxyz"])
    assert len(both) == 8 and both.attrs["labels"] == foreign.attrs["labels"]


def test_an_hdf5_dataset_is_recognised_by_its_content(tmp_path, rng):
    frames = labelled_frames(rng, count=2)
    ase.io.write(tmp_path / "data.extxyz", with_calculator(frames))
    Dataset.load(tmp_path / "data.extxyz").save(tmp_path / "data.dat")
    assert len(Dataset.load(tmp_path / "data.dat")) == 2
    with pytest.raises(DatasetError, match="in eV and eV/Å; energy and force units"):
        Dataset.load(tmp_path / "data.dat", energy_unit="kcal/mol")


def write_bad(tmp_path, rng, case):
    path = tmp_path / "bad.extxyz"
    frames = with_calculator(labelled_frames(rng, count=3))
    if case == "no energy":
        ase.io.write(path, [atoms.copy() for atoms in frames])  # copies lose the calculator
    elif case == "second without forces":
        frames[1].calc = SinglePointCalculator(frames[1], energy=1.0)
        ase.io.write(path, frames)
    elif case == "mixed keys":
        plain = frames[2].copy()
        plain.info["REF_energy"] = 1.0
        plain.arrays["REF_forces"] = np.zeros((len(plain), 3))
        ase.io.write(path, [frames[0], frames[1], plain])
    elif case == "nan energy":
        frames[1].calc.results["energy"] = float("nan")
        ase.io.write(path, frames)
    elif case == "forces shape":
        path = tmp_path / "bad.db"
        with ase.db.connect(path) as database:
            database.write(frames[0].copy(), REF_energy=1.0, data={"REF_forces": np.zeros((2, 3))})
    elif case == "truncated":
        ase.io.write(path, frames)
        path.write_text(path.read_text()[:-200])
    elif case == "garbage traj":
        path = tmp_path / "bad.traj"
        path.write_bytes(b"- of Ulm\x00\x00garbage")
    elif case == "empty":
        path.write_text("")
    elif case == "database without rows":
        path = tmp_path / "bad.db"
        with ase.db.connect(path) as database:
            row = database.write(frames[0])
        with ase.db.connect(path) as database:
            del database[row]
    elif case == "element X":
        frames[0].numbers[0] = 0
        ase.io.write(path, frames)
    elif case == "coincident atoms":
        frames[1].positions[1] = frames[1].positions[0]
        ase.io.write(path, frames)
    return path


BAD = {
    "no energy": (DatasetError, r"bad.extxyz: frame 0 has no energy \(looked for REF_energy"),
    "second without forces": (DatasetError, "bad.extxyz: frame 1 has no forces"),
    "mixed keys": (DatasetError, "mixed keys: frame 0 stores its energy under 'energy', frame 2 under 'REF_energy'"),
    "nan energy": (DatasetError, "bad.extxyz frame 1: 'energy' holds non-finite values"),
    "forces shape": (DatasetError, r"bad.db frame 0: the forces 'REF_forces' have shape \(2, 3\) for 9 atoms"),
    "truncated": (DatasetError, "bad.extxyz: cannot read it with ASE"),
    "garbage traj": (DatasetError, "bad.traj: cannot read it with ASE"),
    "empty": (DatasetError, r"bad.extxyz is empty \(0 bytes\)"),
    "database without rows": (DatasetError, "bad.db: the file holds no frames"),
    "element X": (UnsupportedElementError, "bad.extxyz frame 0: X"),
    "coincident atoms": (StructureError, r"bad.extxyz frame 1: atom 1 \(C\) is 0 Å from atom 0 \(C\).* overlap"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_are_one_line_errors(tmp_path, rng, case):
    path = write_bad(tmp_path, rng, case)
    kind, words = BAD[case]
    with pytest.raises(kind, match=words) as info:
        Dataset.load(path)
    assert "\n" not in str(info.value)


def test_unknown_units_and_missing_keys(tmp_path, rng):
    ase.io.write(tmp_path / "d.extxyz", with_calculator(labelled_frames(rng, count=1)))
    with pytest.raises(DatasetError, match="unknown energy unit 'kcal'; give one of eV, kJ/mol"):
        Dataset.load(tmp_path / "d.extxyz", energy_unit="kcal")
    with pytest.raises(DatasetError, match="unknown force unit 'eV'"):
        Dataset.load(tmp_path / "d.extxyz", force_unit="eV")
    with pytest.raises(DatasetError, match="frame 0 has no energy under 'REF_energy'"):
        Dataset.load(tmp_path / "d.extxyz", energy_key="REF_energy")


def test_cli_names_the_frame_in_one_line(tmp_path, rng, mlffd, make_checkpoint):
    path = write_bad(tmp_path, rng, "second without forces")
    result = mlffd("evaluate", make_checkpoint("ultra-tiny", elements=["H", "C", "O"]), path)
    assert result.code == 2
    assert "bad.extxyz: frame 1 has no forces" in result.err and "Traceback" not in result.err


def test_distill_trains_on_an_extended_xyz_file(tmp_path, rng, mlffd):
    frames = labelled_frames(rng, count=10)
    images = []
    for atoms, energy, forces, _ in frames:
        atoms = atoms.copy()
        atoms.info["REF_energy"], atoms.arrays["REF_forces"] = energy, forces
        images.append(atoms)
    ase.io.write(tmp_path / "data.extxyz", images)
    result = mlffd(
        "distill", tmp_path / "data.extxyz", "-o", tmp_path / "s.ckpt", "--epochs", "1", "--size", "ultra-tiny"
    )
    assert result.code == 0, result.err
    line = (
        "data.extxyz: 10 frames (extxyz); energy from 'REF_energy' in eV, forces from 'REF_forces' in eV/Å, no stress"
    )
    assert result.err.count(line) == 1
    test_split = Dataset.load(tmp_path / "s.test.h5")  # the frames the student was tested on, as read
    assert len(test_split) >= 1 and test_split.attrs["teacher"] == "labels of data.extxyz"
    for frame in test_split.frames:
        atoms, energy, forces, _ = frames[frame.frame_id]
        assert frame.energy == pytest.approx(energy, abs=EXTXYZ_DIGITS)
        np.testing.assert_allclose(frame.forces, forces, atol=EXTXYZ_DIGITS)
        np.testing.assert_allclose(frame.positions, atoms.positions, atol=EXTXYZ_DIGITS)


def test_distill_and_evaluate_convert_the_units_given(tmp_path, rng, mlffd, make_checkpoint):
    frames = labelled_frames(rng, count=10)
    images = []
    for atoms, energy, forces, _ in frames:  # the same numbers, stored in kcal/mol and kcal/mol/Å
        atoms = atoms.copy()
        atoms.info["energy"], atoms.arrays["forces"] = energy / KCAL_PER_MOL_EV, forces / KCAL_PER_MOL_EV
        images.append(atoms)
    ase.io.write(tmp_path / "kcal.extxyz", images)
    units = ("--energy-unit", "kcal/mol", "--force-unit", "kcal/mol/Å")
    result = mlffd(
        "distill", tmp_path / "kcal.extxyz", *units, "-o", tmp_path / "s.ckpt", "--epochs", "1", "--size", "ultra-tiny"
    )
    assert result.code == 0, result.err
    assert "energy from 'energy' in kcal/mol, forces from 'forces' in kcal/(mol·Å)" in result.err
    for frame in Dataset.load(tmp_path / "s.test.h5").frames:
        _, energy, forces, _ = frames[frame.frame_id]
        assert frame.energy == pytest.approx(energy, rel=EXTXYZ_DIGITS)
        np.testing.assert_allclose(frame.forces, forces, rtol=EXTXYZ_DIGITS, atol=EXTXYZ_DIGITS)
    student = make_checkpoint("ultra-tiny", elements=["H", "C", "N", "O"])
    ev = tmp_path / "ev.extxyz"
    ase.io.write(ev, list(_in_ev(frames)))
    plain, converted = (mlffd("evaluate", student, ev), mlffd("evaluate", student, tmp_path / "kcal.extxyz", *units))
    assert plain.code == converted.code == 0, plain.err + converted.err
    assert plain.out.splitlines()[0] == converted.out.splitlines()[0]


def _in_ev(frames):
    for atoms, energy, forces, _ in frames:
        atoms = atoms.copy()
        atoms.info["energy"], atoms.arrays["forces"] = energy, forces
        yield atoms
