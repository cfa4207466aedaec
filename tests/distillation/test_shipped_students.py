"""Every student that ships with the package loads, and re-measuring it on its shipped test split gives
exactly the metrics recorded in its checkpoint. A distilled student's test split is the part of its data
held out of training; a refined one (``mlffd refine`` trains on all of its data) ships fresh teacher-MD
frames instead, with the loop's report."""

import pytest
from kit import RECOMPUTED

from mlff_distiller.data import STUDENTS_DIR, bundled_structure, bundled_student, structure_names, student_names
from mlff_distiller.distillation import Dataset, evaluate
from mlff_distiller.errors import MLFFDError
from mlff_distiller.models import load_checkpoint

#: Relative agreement of a re-evaluation with the recorded metrics (float64, same frames, same order).

EXPECTED = ["organic-standard", "organic-tiny", "organic-ultra-tiny", "water-standard"]


@pytest.mark.parametrize("name", [n for n in EXPECTED if n in student_names()] or ["organic-standard"])
def test_shipped_student_metrics_match_a_re_evaluation(name):
    student = load_checkpoint(bundled_student(name))
    provenance = student.provenance
    test = Dataset.load(STUDENTS_DIR / provenance["test_split_file"])
    assert test.content_hash() == provenance["test_split_hash"]
    metrics = evaluate(student, test)
    recorded = provenance["test_metrics"]
    for key in ("energy_mae_mev_per_atom", "force_rmse", "force_mae", "force_r2", "angle_mean_deg", "angle_median_deg"):
        assert metrics[key] == pytest.approx(recorded[key], rel=RECOMPUTED), key
    assert provenance["teacher"]
    if provenance.get("origin") == "mlffd refine":
        assert provenance["command"].startswith("mlffd refine")
        assert (STUDENTS_DIR / f"{name}.refine.md").is_file() and (STUDENTS_DIR / f"{name}.refine.png").is_file()
    else:
        assert provenance["command"].startswith("mlffd distill")
        assert len(test) == len(provenance["split"]["test_indices"])


def test_bundled_files_are_found_by_name():
    assert bundled_structure("aspirin").name == "aspirin.xyz"
    assert bundled_structure("water-32").parent.name == "systems"
    assert "organic-standard" in student_names() and "aspirin" in structure_names()
    with pytest.raises(MLFFDError, match="available: .*organic-standard"):
        bundled_student("organic-huge")
    with pytest.raises(MLFFDError, match="no bundled structure"):
        bundled_structure("unobtainium")
