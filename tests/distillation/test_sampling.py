"""Sampling and labelling end to end with GFN2-xTB, resuming after an interruption, and bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from kit import SCF_START, SCF_START_MD, TIGHT, VIBRATIONS, assert_close
from tblite.ase import TBLite

from mlff_distiller.distillation import Dataset, SamplingSettings, harmonic_modes, sample
from mlff_distiller.errors import OverwriteError, UnsupportedElementError
from mlff_distiller.structures import molecule_from_smiles
from mlff_distiller.teachers import Teacher, load_teacher

SMALL = SamplingSettings(
    frames=12,
    temperatures=[300.0, 600.0],
    random_fraction=0.25,
    normal_mode_fraction=0.25,
    stride=3,
    equilibration_steps=4,
    seed=5,
)


class InterruptedTBLite(TBLite):
    """Real tblite that is interrupted (as by Ctrl-C) at its ``stop_at``-th calculation, counting calls."""

    def __init__(self, stop_at=None, **kwargs):
        super().__init__(method="GFN2-xTB", verbosity=0, **kwargs)
        self.stop_at, self.count = stop_at, 0

    def calculate(self, *args, **kwargs):
        self.count += 1
        if self.count == self.stop_at:
            raise KeyboardInterrupt
        super().calculate(*args, **kwargs)


@pytest.fixture(scope="module")
def ethanol():
    return molecule_from_smiles("CCO", seed=0)


def test_sample_and_label_ethanol_end_to_end(tmp_path, ethanol):
    dataset = sample(ethanol, load_teacher(), tmp_path / "e.h5", SMALL, progress=False)
    kinds = [f.kind for f in dataset.frames]
    assert kinds.count("md") == 6 and kinds.count("random") == 3 and kinds.count("normal-mode") == 3
    assert sorted(f.frame_id for f in dataset.frames) == list(range(12))
    assert {f.temperature for f in dataset.frames if f.kind == "md"} == {300.0, 600.0}
    assert dataset.attrs["teacher"] == "gfn2-xtb" and dataset.attrs["seed"] == 5
    assert len({f.positions.tobytes() for f in dataset.frames}) == 12
    # Labels are the teacher's: recompute two frames with a fresh tblite calculator. tblite restarts each SCF
    # from the previous wavefunction, so labels depend on the call history within the SCF convergence (~1e-4).
    for frame in (dataset.frames[2], dataset.frames[-1]):
        atoms = frame.atoms()
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert frame.energy == pytest.approx(atoms.get_potential_energy(), rel=SCF_START)
        assert_close(frame.forces, atoms.get_forces(), 1e-3, "forces")


def test_resume_after_interruption_labels_nothing_twice(tmp_path, ethanol):
    reference = InterruptedTBLite()
    complete = sample(ethanol, Teacher("gfn2-xtb", reference), tmp_path / "ref.h5", SMALL, progress=False)

    cache = tmp_path / "run.h5.labels.sqlite"
    first = InterruptedTBLite(stop_at=reference.count // 2)
    with pytest.raises(KeyboardInterrupt):
        sample(ethanol, Teacher("gfn2-xtb", first, cache=cache), tmp_path / "run.h5", SMALL, progress=False)
    partial = len(Dataset.load(tmp_path / "run.h5"))
    assert 0 < partial < 12
    with pytest.raises(OverwriteError, match="--resume"):
        sample(
            ethanol, Teacher("gfn2-xtb", InterruptedTBLite(), cache=cache), tmp_path / "run.h5", SMALL, progress=False
        )

    second = InterruptedTBLite()
    resumed = sample(
        ethanol, Teacher("gfn2-xtb", second, cache=cache), tmp_path / "run.h5", SMALL, resume=True, progress=False
    )
    assert (first.count - 1) + second.count == reference.count  # the interrupted call never finished
    assert len(resumed) == 12
    # The same plan: equal configurations, up to the SCF-restart history of tblite (see the test above).
    by_id = {f.frame_id: f for f in resumed.frames}
    for frame in complete.frames:
        np.testing.assert_allclose(by_id[frame.frame_id].positions, frame.positions, atol=SCF_START_MD)
        assert by_id[frame.frame_id].energy == pytest.approx(frame.energy, abs=SCF_START_MD)


def test_resume_with_other_settings_is_refused(tmp_path, ethanol):
    sample(
        ethanol,
        load_teacher(),
        tmp_path / "e.h5",
        SamplingSettings(frames=4, stride=1, equilibration_steps=0, normal_mode_fraction=0),
        progress=False,
    )
    with pytest.raises(OverwriteError, match="other settings"):
        sample(ethanol, load_teacher(), tmp_path / "e.h5", SMALL, resume=True, progress=False)


def test_periodic_water_gets_stress_and_no_normal_modes(tmp_path):
    water = Atoms(
        "OH2OH2",
        positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [3, 3, 3], [3.96, 3, 3], [2.76, 3.93, 3]],
        cell=np.eye(3) * 6.2,
        pbc=True,
    )
    settings = SamplingSettings(frames=4, temperatures=[300.0], stride=1, equilibration_steps=0, random_fraction=0.25)
    dataset = sample(water, load_teacher(), tmp_path / "w.h5", settings, progress=False)
    assert [f.kind for f in dataset.frames].count("normal-mode") == 0
    assert all(np.all(np.isfinite(f.stress)) for f in dataset.frames)
    np.testing.assert_array_equal(dataset.frames[0].cell, np.eye(3) * 6.2)


def test_harmonic_modes_of_water_match_known_frequencies():
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    from ase.optimize import BFGS

    from mlff_distiller.teachers import TeacherCalculator

    teacher = load_teacher()
    water.calc = TeacherCalculator(teacher)
    BFGS(water, logfile=None).run(fmax=1e-4)
    eigenvalues, modes = harmonic_modes(water, teacher)
    assert len(eigenvalues) == 3
    np.testing.assert_allclose(modes.T @ modes, np.eye(3), atol=TIGHT)
    # Independent reference: ASE's own finite-difference vibrational analysis of the same teacher.
    from ase.units import _amu, _c, _e, _hplanck
    from ase.vibrations import Vibrations

    wavenumbers = np.sqrt(eigenvalues * _e / _amu) * 1e10 / (2 * np.pi * _c * 100)
    vib = Vibrations(water, name=str(__import__("tempfile").mkdtemp()) + "/vib", delta=0.01)
    vib.run()
    reference = np.sort(np.real(vib.get_frequencies()))[-3:]
    np.testing.assert_allclose(np.sort(wavenumbers), reference, rtol=VIBRATIONS)
    assert _hplanck  # constants imported for the conversion above


def test_cli_sample_errors_are_one_line(tmp_path, mlffd):
    code, _, err = mlffd("sample", "C1CC(", "-o", tmp_path / "x.h5", "--frames", "4")
    assert code == 2 and "not a valid SMILES" in err and "Traceback" not in err
    write(tmp_path / "u.xyz", Atoms("UH", positions=[[0, 0, 0], [0, 0, 2.0]]))
    code, _, err = mlffd("sample", tmp_path / "u.xyz", "-o", tmp_path / "u.h5", "--frames", "4")
    assert code == 2 and "teacher 'gfn2-xtb' does not support element(s) U" in err
    assert not (tmp_path / "u.h5").exists()


def test_cli_sample_writes_and_refuses_to_overwrite(tmp_path, mlffd):
    args = [
        "sample",
        "O",
        "-o",
        tmp_path / "w.h5",
        "--frames",
        "5",
        "--stride",
        "1",
        "--equilibration",
        "0",
        "--temperatures",
        "300",
        "--quiet",
    ]
    code, out, _ = mlffd(*args)
    assert code == 0 and "5 frames of H2O" in out
    code, _, err = mlffd(*args)
    assert code == 2 and "--resume" in err
    code, out, _ = mlffd(*args, "--resume")
    assert code == 0 and "(0 new teacher calls)" in out


def test_unsupported_element_raised_by_sample_api(tmp_path):
    with pytest.raises(UnsupportedElementError):
        sample(Atoms("U"), load_teacher(), tmp_path / "x.h5", SMALL, progress=False)
