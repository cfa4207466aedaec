"""The user-facing OpenMM example runs (the plain-script example is exercised in tests/export)."""

import runpy
from pathlib import Path

from mlff_distiller.models import Student, preset, save_checkpoint

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "openmm_student_md.py"


def test_student_in_a_users_openmm_script(tmp_path, capsys):
    checkpoint = save_checkpoint(Student(preset("ultra-tiny")).double(), tmp_path / "s.ckpt")
    runpy.run_path(str(EXAMPLE))["main"](str(checkpoint), "CCO", 50)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('#"Step"') and lines[-1].startswith("50,")
