"""The package root: every public name imports, lazily, and ``import mlff_distiller`` stays light."""

import importlib
import subprocess
import sys

import pytest

import mlff_distiller

HEAVY = ("torch", "openmm", "MDAnalysis")


def _modules_loaded_by(code: str) -> list:
    """The modules of :data:`HEAVY` that running ``code`` in a fresh interpreter imports."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_import_loads_no_heavy_module():
    result = subprocess.run(
        [sys.executable, "-c", "import mlff_distiller, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
    assert _modules_loaded_by("import mlff_distiller; mlff_distiller.__version__; dir(mlff_distiller)") == []


@pytest.mark.parametrize("name", mlff_distiller.__all__)
def test_every_public_name_imports(name):
    namespace: dict = {}
    exec(f"from mlff_distiller import {name}", namespace)
    assert namespace[name] is getattr(mlff_distiller, name)
    if name != "__version__":
        source = importlib.import_module(mlff_distiller._SOURCES[name], "mlff_distiller")
        assert namespace[name] is getattr(source, name)


def test_dir_and_all_list_every_name():
    assert len(set(mlff_distiller.__all__)) == len(mlff_distiller.__all__)
    assert set(mlff_distiller.__all__) <= set(dir(mlff_distiller))
    assert "__version__" in mlff_distiller.__all__


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        mlff_distiller.no_such_name  # noqa: B018  (the attribute access is the test)
    with pytest.raises(ImportError):
        exec("from mlff_distiller import no_such_name", {})


def test_submodules_are_reachable_as_attributes():
    code = "import mlff_distiller\nassert mlff_distiller.models.Student is mlff_distiller.Student"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_distill_names_the_function_whatever_is_imported_first():
    code = (
        "import mlff_distiller.distillation.training\n"
        "from mlff_distiller import distill\n"
        "import mlff_distiller\n"
        "assert callable(distill) and mlff_distiller.distill is distill, distill\n"
        "assert mlff_distiller.distillation.distill is distill"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
