"""Teachers: the GFN2-xTB adapter against tblite itself, the label cache, and bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from kit import EXACT, assert_close
from tblite.ase import TBLite

from mlff_distiller.errors import MLFFDError, UnsupportedElementError
from mlff_distiller.teachers import LabelCache, Teacher, TeacherError, configuration_hash, load_teacher


class CountingTBLite(TBLite):
    """The real tblite calculator, counting how often it is asked to calculate."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = 0

    def calculate(self, *args, **kwargs):
        self.count += 1
        super().calculate(*args, **kwargs)


def test_gfn2_adapter_equals_direct_tblite():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    labels = load_teacher("gfn2-xtb").compute(atoms)
    direct = atoms.copy()
    direct.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert labels["energy"] == pytest.approx(direct.get_potential_energy(), rel=EXACT, abs=0)
    assert_close(labels["forces"], direct.get_forces(), EXACT, "forces")
    assert "stress" not in labels


def test_periodic_labels_include_stress_equal_to_tblite():
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.eye(3) * 6.0, pbc=True)
    labels = load_teacher().compute(atoms)
    direct = atoms.copy()
    direct.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert labels["stress"].shape == (6,)
    assert_close(labels["stress"], direct.get_stress(), EXACT, "stress (eV/Å³)")


def test_cache_answers_without_calling_the_calculator(tmp_path):
    calculator = CountingTBLite(method="GFN2-xTB", verbosity=0)
    teacher = Teacher("gfn2-xtb", calculator, cache=tmp_path / "labels.sqlite")
    atoms = molecule("H2O")
    first = teacher.compute(atoms)
    second = teacher.compute(atoms.copy())
    assert calculator.count == 1 and teacher.calls == 1
    assert second["energy"] == first["energy"]
    np.testing.assert_array_equal(second["forces"], first["forces"])
    moved = atoms.copy()
    moved.positions[0, 0] += 1e-6
    teacher.compute(moved)
    assert calculator.count == 2

    # A new teacher on the same file pays nothing for what was computed before.
    fresh = CountingTBLite(method="GFN2-xTB", verbosity=0)
    reopened = Teacher("gfn2-xtb", fresh, cache=tmp_path / "labels.sqlite")
    again = reopened.compute(atoms)
    assert fresh.count == 0
    np.testing.assert_array_equal(again["forces"], first["forces"])


def test_configuration_hash_sees_every_part_of_a_configuration():
    atoms = molecule("H2O")
    base = configuration_hash(atoms)
    variants = [atoms.copy() for _ in range(4)]
    variants[0].positions[1, 2] += 1e-12
    variants[1].numbers[1] = 9
    variants[2].cell = np.eye(3) * 5
    variants[3].pbc = [True, False, False]
    assert len({base, *(configuration_hash(v) for v in variants)}) == 5
    assert configuration_hash(atoms, "other teacher") != base


def test_cache_round_trips_stress(tmp_path):
    cache = LabelCache(tmp_path / "c.sqlite")
    cache.put("k", {"energy": -1.5, "forces": np.ones((2, 3)), "stress": np.arange(6.0)})
    cache.close()
    labels = LabelCache(tmp_path / "c.sqlite").get("k")
    assert labels["energy"] == -1.5
    np.testing.assert_array_equal(labels["stress"], np.arange(6.0))


def test_unsupported_element_is_refused_before_calling():
    teacher = load_teacher("gfn2-xtb")
    with pytest.raises(UnsupportedElementError, match="U"):
        teacher.compute(Atoms("UH", positions=[[0, 0, 0], [0, 0, 2.0]]))
    assert teacher.calls == 0


def test_scf_failure_names_the_configuration():
    teacher = load_teacher("gfn2-xtb", max_iterations=1)
    atoms = molecule("CH3CH2OH")
    with pytest.raises(TeacherError, match="configuration [0-9a-f]{12}"):
        teacher.compute(atoms)


def test_unknown_and_factory_teachers():
    with pytest.raises(MLFFDError, match="unknown teacher"):
        load_teacher("dft-magic")
    with pytest.raises(MLFFDError, match="cannot import"):
        load_teacher("no_such_module_xyz:make")
    teacher = load_teacher("ase.calculators.emt:EMT")
    labels = teacher.compute(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]]))
    assert labels["forces"].shape == (2, 3)


def test_sevenn_missing_names_the_extra():
    try:
        import sevenn  # noqa: F401
    except ImportError:
        with pytest.raises(MLFFDError, match=r"pip install mlff-distiller\[sevenn\]"):
            load_teacher("sevenn-0")
    else:
        assert load_teacher("sevenn-0").compute(molecule("H2O"))["forces"].shape == (3, 3)
