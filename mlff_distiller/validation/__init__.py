"""Trajectory validation: MDAnalysis analyses of drift, force fidelity, stability and structure; reports.

>>> from mlff_distiller.validation import validate
>>> report = validate("runs/aspirin", teacher="gfn2-xtb")
>>> report.write("reports/aspirin")
>>> report.passed
"""

from .compare import compare_reports, recommend
from .drift import EnergyDrift, drift_figures
from .energies import EnergySeries, read_energies
from .ensemble import Ensemble, resolve_ensemble
from .force_statistics import angular_errors, force_statistics
from .forces import ForceFidelity
from .model_deviation import ModelDeviation
from .report import ValidationReport, validate
from .selection import Selection, select_atoms
from .stability import Stability
from .structure import PairDistribution, StructureComparison, distribution_error
from .temperature import canonical_variance_ratio, temperature_figures
from .thresholds import Thresholds
from .trajectory import Run, open_run
from .verdict import verdict

__all__ = [
    "EnergyDrift",
    "EnergySeries",
    "Ensemble",
    "Selection",
    "ForceFidelity",
    "ModelDeviation",
    "PairDistribution",
    "Run",
    "Stability",
    "StructureComparison",
    "Thresholds",
    "ValidationReport",
    "angular_errors",
    "canonical_variance_ratio",
    "compare_reports",
    "distribution_error",
    "drift_figures",
    "force_statistics",
    "open_run",
    "read_energies",
    "recommend",
    "resolve_ensemble",
    "select_atoms",
    "temperature_figures",
    "validate",
    "verdict",
]
