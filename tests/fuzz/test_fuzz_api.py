"""The Python API's equivalents: StudentCalculator, load_checkpoint, export_openmm/export_lammps,
validate, MDSettings/MDRun. Each bad input raises an MLFFDError (one readable message), never a
KeyError or a silent number, and leaves its input files byte-identical."""

import math
import shutil

import numpy as np
import pytest
from ase import Atoms
from fuzzkit import cpu_limit, sha256
from test_fuzz_models import DAMAGED_CHECKPOINTS

from mlff_distiller import MLFFDError

BAD_MODELS = DAMAGED_CHECKPOINTS + ("pt_openmm", "missing", "dir")


def fuzz_class(cls: str, cases: int = 1):
    def mark(function):
        function.fuzz_class, function.fuzz_cases = cls, cases
        return function

    return mark


def staged(fuzz_inputs, tmp_path, name):
    source = fuzz_inputs[name]
    target = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        shutil.copy2(source, target)
    return target


def refuses(call, *inputs):
    """``call()`` raises an MLFFDError with a one-line message and leaves ``inputs`` unchanged."""
    before = {p: sha256(p) for p in inputs if p.exists()}
    with cpu_limit(), pytest.raises(MLFFDError) as info:
        call()
    assert str(info.value).strip() and "\n" not in str(info.value).strip()
    for path, digest in before.items():
        assert sha256(path) == digest, f"{path.name} was changed"


XFAILS: dict[str, str] = {}


def xf(key: str):
    return [pytest.mark.xfail(strict=True, reason=XFAILS[key])] if key in XFAILS else []


@fuzz_class("api")
@pytest.mark.parametrize("name", [pytest.param(n, marks=xf(f"load_checkpoint {n}")) for n in BAD_MODELS])
def test_load_checkpoint(name, fuzz_inputs, tmp_path):
    from mlff_distiller import load_checkpoint

    path = staged(fuzz_inputs, tmp_path, name)
    refuses(lambda: load_checkpoint(path), path)


@fuzz_class("api")
@pytest.mark.parametrize("name", [pytest.param(n, marks=xf(f"StudentCalculator {n}")) for n in BAD_MODELS])
def test_calculator_model(name, fuzz_inputs, tmp_path):
    from mlff_distiller import StudentCalculator

    path = staged(fuzz_inputs, tmp_path, name)
    refuses(lambda: StudentCalculator(path), path)


def ethanol(change=None) -> Atoms:
    from ase.io import read

    from mlff_distiller import bundled_structure

    atoms = read(bundled_structure("ethanol"))
    if change:
        change(atoms)
    return atoms


def set_position(value):
    def change(atoms):
        positions = atoms.get_positions()
        positions[0, 0] = value
        atoms.set_positions(positions)

    return change


def set_number(z):
    def change(atoms):
        numbers = atoms.get_atomic_numbers()
        numbers[0] = z
        atoms.set_atomic_numbers(numbers)

    return change


def coincide(atoms):
    positions = atoms.get_positions()
    positions[1] = positions[0]
    atoms.set_positions(positions)


def tiny_cell(atoms):
    atoms.set_cell([1.0, 1.0, 1.0])
    atoms.set_pbc(True)


def flat_cell(atoms):
    atoms.set_cell([[10, 0, 0], [0, 10, 0], [10, 10, 0]])
    atoms.set_pbc(True)


STRUCTURES = {
    "nan coordinate": set_position(math.nan),
    "inf coordinate": set_position(math.inf),
    "huge coordinate": set_position(1e30),
    "element X (0)": set_number(0),
    "element Og (118)": set_number(118),
    "element Si (not in the model)": set_number(14),
    "coincident atoms": coincide,
    "degenerate cell": flat_cell,
}


@fuzz_class("api")
@pytest.mark.parametrize("what", [pytest.param(k, marks=xf(f"StudentCalculator structure {k}")) for k in STRUCTURES])
def test_calculator_structure(what, fuzz_inputs):
    from mlff_distiller import StudentCalculator

    atoms = ethanol(STRUCTURES[what])
    atoms.calc = StudentCalculator(fuzz_inputs["ckpt"], kernel="portable")
    refuses(lambda: (atoms.get_potential_energy(), atoms.get_forces()))


@fuzz_class("legitimate")
def test_calculator_sound(fuzz_inputs):
    from mlff_distiller import StudentCalculator

    atoms = ethanol()
    atoms.calc = StudentCalculator(fuzz_inputs["ckpt"], kernel="portable")
    assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(atoms.get_forces()).all()


EXPORT_MODELS = ("ckpt_flipped", "ckpt_truncated", "ckpt_nan_signed", "ckpt_cutoff_negative", "ckpt_shape", "missing")


@fuzz_class("api")
@pytest.mark.parametrize("engine", ["openmm", "lammps"])
@pytest.mark.parametrize("name", EXPORT_MODELS)
def test_export_damaged(engine, name, fuzz_inputs, tmp_path, request):
    from mlff_distiller import export_lammps, export_openmm

    key = f"export_{engine} {name}"
    if key in XFAILS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=XFAILS[key]))
    path = staged(fuzz_inputs, tmp_path, name)
    exporter = export_openmm if engine == "openmm" else export_lammps
    refuses(lambda: exporter(path, tmp_path / "out.pt"), path)
    assert not (tmp_path / "out.pt").exists()


@fuzz_class("api")
@pytest.mark.parametrize("engine", ["openmm", "lammps"])
@pytest.mark.parametrize("target", ["input", "directory"])
def test_export_outputs(engine, target, fuzz_inputs, tmp_path, request):
    from mlff_distiller import export_lammps, export_openmm

    key = f"export_{engine} -> {target}"
    if key in XFAILS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=XFAILS[key]))
    path = staged(fuzz_inputs, tmp_path, "ckpt")
    output = path if target == "input" else staged(fuzz_inputs, tmp_path, "dir")
    exporter = export_openmm if engine == "openmm" else export_lammps
    refuses(lambda: exporter(path, output), path, output)


VALIDATE_ARGUMENTS = {
    "frames 0": {"frames": 0, "teacher": "gfn2-xtb"},
    "workers 0": {"workers": 0, "teacher": "gfn2-xtb"},
    "warmup 1.5": {"warmup_fraction": 1.5},
    "warmup nan": {"warmup_fraction": math.nan},
    "temperature -5": {"temperature": -5.0},
    "temperature nan": {"temperature": math.nan},
    "frame interval 0": {"frame_interval_ps": 0.0},
    "teacher bogus": {"teacher": "bogus"},
    "select syntax": {"select": "name (("},
    "thresholds missing": {"thresholds": "/nonexistent/thresholds.toml"},
}


@fuzz_class("api")
@pytest.mark.parametrize("what", [pytest.param(k, marks=xf(f"validate {k}")) for k in VALIDATE_ARGUMENTS])
def test_validate(what, fuzz_inputs, tmp_path):
    from mlff_distiller import validate

    run = staged(fuzz_inputs, tmp_path, "run")
    kwargs = {"teacher": None, **VALIDATE_ARGUMENTS[what]}
    refuses(lambda: validate(run, **kwargs), run)


@fuzz_class("api")
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=xf(f"validate {n}")) for n in ("missing", "dir", "run_empty_trajectory", "xyz_garbage")],
)
def test_validate_inputs(name, fuzz_inputs, tmp_path):
    from mlff_distiller import validate

    path = staged(fuzz_inputs, tmp_path, name)
    refuses(lambda: validate(path, teacher=None), path)


MD_SETTINGS = {
    "timestep 0": {"timestep": 0.0},
    "timestep nan": {"timestep": math.nan},
    "time -1": {"time": -1.0},
    "time inf": {"time": math.inf},
    "temperature nan": {"temperature": math.nan},
    "temperature -1": {"temperature": -1.0},
    "friction -5": {"friction": -5.0, "ensemble": "nvt"},
    "report interval 0": {"report_interval": 0},
    "checkpoint interval -1": {"checkpoint_interval": -1},
    "seed -1": {"seed": -1},
    "seed 2**40": {"seed": 2**40},
    "temperature limit nan": {"temperature_limit": math.nan},
    "ensemble npt": {"ensemble": "npt"},
    "platform Metal": {"platform": "Metal"},
    "structure X": {"structure": "xyz_X"},
    "structure nan": {"structure": "xyz_nan"},
    "structure coincident": {"structure": "xyz_coincident"},
    "model flipped": {"model": "ckpt_flipped"},
    "model nan": {"model": "ckpt_nan_signed"},
}


@fuzz_class("api")
@pytest.mark.parametrize("what", [pytest.param(k, marks=xf(f"MDRun {k}")) for k in MD_SETTINGS])
def test_md_run(what, fuzz_inputs, tmp_path):
    from mlff_distiller import MDRun, MDSettings

    values = dict(MD_SETTINGS[what])
    structure = staged(fuzz_inputs, tmp_path, values.pop("structure", "xyz"))
    model = staged(fuzz_inputs, tmp_path, values.pop("model", "ckpt"))
    base = {"time": 0.005, "report_interval": 5, "checkpoint_interval": 5}
    refuses(
        lambda: MDRun(
            MDSettings(structure=str(structure), model=str(model), **{**base, **values}), tmp_path / "run"
        ).run(),
        structure,
        model,
    )
