"""mlffd sample --label: a user's own configurations labelled by the real GFN2-xTB teacher, resumed, refused."""

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from kit import SCF_START, SCF_START_FORCES, assert_close
from tblite.ase import TBLite

from mlff_distiller.distillation import Dataset, label_configurations
from mlff_distiller.errors import OverwriteError, StructureError, UnsupportedElementError
from mlff_distiller.teachers import Teacher, load_teacher


def ethanol_frames(count=3, seed=3):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = molecule("CH3CH2OH")
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        frames.append(atoms)
    return frames


def water_box():
    atoms = molecule("H2O")
    atoms.cell = np.eye(3) * 6.0
    atoms.pbc = True
    atoms.center()
    return atoms


class InterruptedTBLite(TBLite):
    """Real tblite that is interrupted (as by Ctrl-C) at its ``stop_at``-th calculation."""

    def __init__(self, stop_at=None):
        super().__init__(method="GFN2-xTB", verbosity=0)
        self.stop_at, self.count = stop_at, 0

    def calculate(self, *args, **kwargs):
        self.count += 1
        if self.count == self.stop_at:
            raise KeyboardInterrupt
        super().calculate(*args, **kwargs)


@pytest.fixture
def user_file(tmp_path):
    """Two ethanol frames (the first carrying someone else's labels, which are ignored) and a periodic water box."""
    frames = [*ethanol_frames(2), water_box()]
    frames[0].calc = SinglePointCalculator(frames[0], energy=1.0, forces=np.zeros((9, 3)))
    path = tmp_path / "mine.extxyz"
    ase.io.write(path, frames)
    return path


def test_every_frame_labelled_as_a_fresh_teacher_labels_it(tmp_path, user_file):
    teacher = load_teacher(cache=tmp_path / "cache.sqlite")
    dataset = label_configurations(user_file, tmp_path / "out.h5", teacher, progress=False)
    assert [(f.kind, f.frame_id) for f in dataset.frames] == [("user", 0), ("user", 1), ("user", 2)]
    assert teacher.calls == 3 and dataset.attrs["teacher"] == "gfn2-xtb"
    read_back = ase.io.read(user_file, index=":")
    for frame, atoms in zip(dataset.frames, read_back, strict=True):
        np.testing.assert_array_equal(frame.positions, atoms.positions)
        fresh = load_teacher("gfn2-xtb").compute(atoms)  # a new calculator: its SCF starts from scratch
        assert frame.energy == pytest.approx(fresh["energy"], rel=SCF_START)
        assert_close(frame.forces, fresh["forces"], SCF_START_FORCES, "forces")
        if atoms.pbc.all():
            assert_close(frame.stress, fresh["stress"], SCF_START_FORCES, "stress")
            np.testing.assert_array_equal(frame.cell, atoms.cell[:])
        else:
            assert np.isnan(frame.stress).all()
    assert Dataset.load(tmp_path / "out.h5").content_hash() == dataset.content_hash()


def test_frames_limit_then_extend_with_resume(tmp_path):
    path = tmp_path / "e.xyz"
    ase.io.write(path, ethanol_frames(3))
    cache = tmp_path / "out.h5.labels.sqlite"
    first = label_configurations(path, tmp_path / "out.h5", load_teacher(cache=cache), frames=2, progress=False)
    assert len(first) == 2
    with pytest.raises(OverwriteError, match="--resume"):
        label_configurations(path, tmp_path / "out.h5", load_teacher(cache=cache), progress=False)
    teacher = load_teacher(cache=cache)
    resumed = label_configurations(path, tmp_path / "out.h5", teacher, resume=True, progress=False)
    assert [f.frame_id for f in resumed.frames] == [0, 1, 2] and teacher.calls == 1
    ase.io.write(tmp_path / "other.xyz", ethanol_frames(3, seed=9))
    with pytest.raises(OverwriteError, match="other settings or another teacher"):
        label_configurations(tmp_path / "other.xyz", tmp_path / "out.h5", teacher, resume=True, progress=False)


def test_an_interrupted_run_keeps_its_frames_and_resumes(tmp_path):
    path = tmp_path / "e.xyz"
    ase.io.write(path, ethanol_frames(3))
    cache = tmp_path / "c.sqlite"
    with pytest.raises(KeyboardInterrupt):
        label_configurations(path, tmp_path / "out.h5", Teacher("gfn2-xtb", InterruptedTBLite(3), cache=cache))
    assert [f.frame_id for f in Dataset.load(tmp_path / "out.h5").frames] == [0, 1]
    calculator = InterruptedTBLite()
    resumed = label_configurations(
        path, tmp_path / "out.h5", Teacher("gfn2-xtb", calculator, cache=cache), resume=True, progress=False
    )
    assert len(resumed) == 3 and calculator.count == 1


def test_bad_configurations_are_refused_before_the_teacher_starts(tmp_path):
    frames = ethanol_frames(3)
    frames[2].positions[1] = frames[2].positions[0]
    teacher = load_teacher()
    with pytest.raises(StructureError, match=r"e.xyz frame 2: atom 1 \(C\) is 0 Å from atom 0"):
        ase.io.write(tmp_path / "e.xyz", frames)
        label_configurations(tmp_path / "e.xyz", tmp_path / "out.h5", teacher, progress=False)
    heavy = [Atoms("HFm", positions=[[0, 0, 0], [0, 0, 2.0]])]
    with pytest.raises(UnsupportedElementError, match="teacher 'gfn2-xtb' does not support element"):
        label_configurations(heavy, tmp_path / "out.h5", teacher, progress=False)
    assert teacher.calls == 0 and not (tmp_path / "out.h5").exists()


def test_cli_labels_a_file(tmp_path, mlffd, user_file):
    result = mlffd("sample", "--label", user_file, "-o", tmp_path / "out.h5", "--frames", "2", "--quiet")
    assert result.code == 0, result.err
    assert "wrote" in result.out and "2 frames of mine.extxyz labelled by gfn2-xtb (2 new teacher calls)" in result.out
    assert (tmp_path / "out.h5.labels.sqlite").exists()
    again = mlffd("sample", "--label", user_file, "-o", tmp_path / "out.h5", "--resume", "--quiet")
    assert "3 frames" in again.out and "(1 new teacher calls)" in again.out


@pytest.mark.parametrize(
    "args, words",
    [
        (["--label", "{file}", "aspirin"], "give a structure to sample, or --label FILE"),
        ([], "give a structure to sample, or --label FILE"),
        (["--label", "{file}", "--temperatures", "500", "--seed", "3"], "--temperatures, --seed shape(s) generated"),
        (["--label", "{missing}"], "missing.xyz: no such file"),
        (["--label", "{out}"], "(--overwrite never replaces an input)"),
    ],
)
def test_cli_refusals_are_one_line(tmp_path, mlffd, user_file, args, words):
    names = {"{file}": user_file, "{missing}": tmp_path / "missing.xyz", "{out}": tmp_path / "out.h5"}
    ase.io.write(tmp_path / "out.h5", water_box(), format="extxyz")
    args = [names.get(a, a) for a in args]
    result = mlffd("sample", *args, "-o", tmp_path / "out.h5", "--overwrite", "--quiet")
    assert result.code == 2 and words in result.err, result.err
    assert result.err.count("\n") == 1
