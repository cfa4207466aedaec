"""Bundled names wherever the command line takes a structure or a model file, and one-line errors for typos."""

import pytest

from mlff_distiller.cli import build_parser
from mlff_distiller.data import bundled_structure, bundled_student, resolve_model, resolve_structure
from mlff_distiller.errors import CheckpointError, StructureError


def test_an_existing_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aspirin.xyz").write_text("1\n\nH 0 0 0\n")
    (tmp_path / "organic-tiny.ckpt").write_bytes(b"")
    assert resolve_structure("aspirin.xyz") == "aspirin.xyz"
    assert str(resolve_model("organic-tiny.ckpt")) == "organic-tiny.ckpt"


def test_bundled_names_with_or_without_suffix():
    for text in ("aspirin", "aspirin.xyz"):
        assert resolve_structure(text) == str(bundled_structure("aspirin"))
    assert resolve_structure("water-32") == str(bundled_structure("water-32"))
    for text in ("organic-standard", "organic-standard.ckpt"):
        assert resolve_model(text) == bundled_student("organic-standard")


def test_smiles_passes_through():
    assert resolve_structure("CC(=O)Oc1ccccc1C(=O)O") == "CC(=O)Oc1ccccc1C(=O)O"
    assert resolve_structure("F/C=C/F") == "F/C=C/F"  # stereo bonds are not folders


@pytest.mark.parametrize("text", ["aspirn.gro", "runs/aspirn.pdb"])
def test_a_misspelt_file_is_missing_not_bad_smiles(text):
    with pytest.raises(StructureError) as error:
        resolve_structure(text)
    message = str(error.value)
    assert "no such file" in message and "did you mean 'aspirin'" in message and "SMILES" not in message
    assert "water-32" in message and "\n" not in message


def test_text_that_is_nothing_says_so():
    with pytest.raises(StructureError, match="no such file, not a valid SMILES string.*did you mean 'water-32'"):
        resolve_structure("water-33")
    with pytest.raises(CheckpointError, match="did you mean 'organic-standard'.*bundled students: organic-standard"):
        resolve_model("organic-standrd.ckpt")


def test_the_parser_resolves_names_of_every_command():
    parser = build_parser()
    md = parser.parse_args(["md", "aspirin", "--model", "organic-standard", "-o", "run"])
    assert md.structure == str(bundled_structure("aspirin")) and md.model == bundled_student("organic-standard")
    engines = parser.parse_args(["check-engines", "water-standard", "water-32", "--checkpoint", "water-standard"])
    assert engines.model == engines.checkpoint == bundled_student("water-standard")
    assert parser.parse_args(["sample", "ethanol", "-o", "x.h5"]).structure == str(bundled_structure("ethanol"))
    assert parser.parse_args(["evaluate", "organic-tiny", "x.h5"]).checkpoint == bundled_student("organic-tiny")
    distill = parser.parse_args(["distill", "x.h5", "-o", "s.ckpt", "--teacher-student", "organic-tiny"])
    assert distill.teacher_student == bundled_student("organic-tiny")
    validate = parser.parse_args(["validate", "run", "--model", "organic-tiny", "-o", "r"])
    assert validate.model == bundled_student("organic-tiny")
    export = parser.parse_args(["export", "organic-tiny", "--engine", "openmm", "--topology", "aspirin", "-o", "a.pt"])
    assert export.checkpoint == bundled_student("organic-tiny") and export.topology == str(bundled_structure("aspirin"))
    assert parser.parse_args(["info", "water-standard"]).file == bundled_student("water-standard")


def test_a_typo_on_the_command_line_is_one_line_and_exit_2(mlffd, tmp_path):
    result = mlffd("md", "aspirn.gro", "--model", "organic-standard", "-o", tmp_path / "run")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.startswith("mlffd: error: aspirn.gro: no such file") and "did you mean 'aspirin'" in result.err
    assert len(result.err.strip().splitlines()) == 1
    result = mlffd("validate", tmp_path, "--model", "organic-standrd", "-o", tmp_path / "report")
    assert result.code == 2 and "did you mean 'organic-standard'" in result.err


def test_dotted_smiles_is_not_a_file_name():
    assert resolve_structure("CCO.O") == "CCO.O"


def test_info_of_a_bundled_student(mlffd):
    result = mlffd("info", "organic-ultra-tiny")
    assert result.code == 0 and "kind: checkpoint" in result.out
