"""Pass lines of the verdict, their sources, and how to change them in a TOML file."""

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .. import inputs
from ..errors import InvalidValueError, MLFFDError
from ..inputs import FRACTION, Rule


@dataclass
class Thresholds:
    """Pass lines of a validation verdict.

    Attributes
    ----------
    min_stable_time_ps : float
        ps the run must last without collapse, hydrogen loss or explosion (older study: 10).
    max_relative_drift_percent : float
        Upper bound on |relative drift| in % (older study: 1).
    max_force_rmse : float
        eV/Å (older study: 0.2).
    max_force_mae : float
        eV/Å (older study: 0.15).
    max_median_angle_deg : float
        Degrees (older study: 15).
    min_r2 : float
        Lower bound on the force R² (older study: 0.9).
    max_drift_slope : float
        Upper bound on |drift slope| in meV/atom/ps (LAMBench: 0.5).
    max_drift_to_fluctuation : float
        Upper bound on the drift-to-fluctuation ratio (MLIPAudit: 1).
    max_structure_error : float
        Upper bound on the normalised RDF error against the reference (this project's choice: 0.2).
    max_internal_outside_fraction : float
        Upper bound on the share of frames in which any bond or angle lies outside the teacher MD's
        range widened by one of its standard deviations (this project: 0.1; two GFN2-xTB runs of
        aspirin or salicylic acid differ by at most 0.024, bundled students at 300 K by 0.025, and
        organic-ultra-tiny's C-O-H angle in salicylic acid at 600 K leaves it 21% of the time).
    max_temperature_deviation_percent : float
        Upper bound on |mean production temperature - target| / target, in % (this project: 10).
    min_kinetic_variance_ratio, max_kinetic_variance_ratio : float
        Bounds on var(E_kin) over its canonical value in a thermostatted run (this project: 0.5 and 2).
    """

    min_stable_time_ps: float = 10.0
    max_relative_drift_percent: float = 1.0
    max_force_rmse: float = 0.2
    max_force_mae: float = 0.15
    max_median_angle_deg: float = 15.0
    min_r2: float = 0.9
    max_drift_slope: float = 0.5
    max_drift_to_fluctuation: float = 1.0
    max_structure_error: float = 0.2
    max_internal_outside_fraction: float = 0.1
    max_temperature_deviation_percent: float = 10.0
    min_kinetic_variance_ratio: float = 0.5
    max_kinetic_variance_ratio: float = 2.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~mlff_distiller.errors.InvalidValueError` for a pass line no figure could meet or fail.

        Each follows :data:`RULES` (finite, in its figure's range: R² at most 1, fractions 0 to 1,
        angles 0 to 180 degrees, the strict bounds above 0); the kinetic-variance band must not be empty.
        """
        found = inputs.problems((RULES[f.name], getattr(self, f.name), f.name) for f in fields(self))
        if not found and self.min_kinetic_variance_ratio > self.max_kinetic_variance_ratio:
            found.append(
                f"min_kinetic_variance_ratio = {self.min_kinetic_variance_ratio:g} is above "
                f"max_kinetic_variance_ratio = {self.max_kinetic_variance_ratio:g}"
            )
        if found:
            raise InvalidValueError("; ".join(found))

    @classmethod
    def from_toml(cls, path: str | Path) -> "Thresholds":
        """Read thresholds from a TOML file: keys named as the attributes, at top level or under ``[thresholds]``.

        Keys that are absent keep their defaults; unknown keys and non-numbers are errors.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise MLFFDError(f"thresholds file {path} does not exist") from None
        except IsADirectoryError:
            raise MLFFDError(f"thresholds file {path} is a directory; give a TOML file") from None
        except OSError as exc:
            raise MLFFDError(f"thresholds file {path} cannot be read ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MLFFDError(f"{path} is not valid TOML: {exc}") from None
        data = data.get("thresholds", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MLFFDError(f"{path}: unknown threshold(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MLFFDError(f"{path}: threshold {key} must be a number, got {value!r}")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except InvalidValueError as exc:
            raise InvalidValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: What each pass line accepts. Bounds a figure is compared with by "<" must be above 0 (else
#: nothing passes); shares lie in 0 to 1, angles in 0 to 180 degrees, R² at most 1.
RULES: dict[str, Rule] = {
    "min_stable_time_ps": Rule("time in ps", low=0.0),
    "max_relative_drift_percent": Rule("percentage", low=0.0, low_open=True),
    "max_force_rmse": Rule("force in eV/Å", low=0.0),
    "max_force_mae": Rule("force in eV/Å", low=0.0),
    "max_median_angle_deg": Rule("angle in degrees", low=0.0, high=180.0),
    "min_r2": Rule("R²", high=1.0),
    "max_drift_slope": Rule("drift rate in meV/atom/ps", low=0.0, low_open=True),
    "max_drift_to_fluctuation": Rule("ratio", low=0.0, low_open=True),
    "max_structure_error": Rule("normalised error", low=0.0),
    "max_internal_outside_fraction": FRACTION,
    "max_temperature_deviation_percent": Rule("percentage", low=0.0),
    "min_kinetic_variance_ratio": Rule("ratio", low=0.0),
    "max_kinetic_variance_ratio": Rule("ratio", low=0.0, low_open=True),
}


@dataclass
class Criterion:
    """One row of the verdict: a figure of the report, compared with a threshold."""

    name: str
    section: str
    figure: str
    threshold_key: str
    comparison: str  # "<", "<=", ">=" or "between", applied to the figure (its absolute value when absolute=True)
    source: str
    absolute: bool = False
    upper_key: str = ""  # "between": the threshold of the upper bound (threshold_key is the lower one)


#: The verdict's rows: the older study's production criteria, then the modern energy-conservation ones.
CRITERIA: list[Criterion] = [
    Criterion("stable for the required time", "stability", "stable_time_ps", "min_stable_time_ps", ">=", "older study"),
    Criterion(
        "relative energy drift",
        "energy_drift",
        "relative_drift_percent",
        "max_relative_drift_percent",
        "<",
        "older study",
        absolute=True,
    ),
    Criterion("force RMSE", "force_fidelity", "rmse", "max_force_rmse", "<=", "older study"),
    Criterion("force MAE", "force_fidelity", "mae", "max_force_mae", "<=", "older study"),
    Criterion("median force angle", "force_fidelity", "angle_median_deg", "max_median_angle_deg", "<=", "older study"),
    Criterion("force R²", "force_fidelity", "r2", "min_r2", ">=", "older study"),
    Criterion(
        "energy drift rate",
        "energy_drift",
        "slope_meV_per_atom_per_ps",
        "max_drift_slope",
        "<",
        "LAMBench",
        absolute=True,
    ),
    Criterion(
        "drift-to-fluctuation ratio",
        "energy_drift",
        "drift_to_fluctuation",
        "max_drift_to_fluctuation",
        "<",
        "MLIPAudit",
    ),
    Criterion("RDF error against the reference", "structure", "error", "max_structure_error", "<=", "this project"),
    Criterion(
        "bonds and angles inside the teacher's range",
        "internal_coordinates",
        "max_outside_fraction",
        "max_internal_outside_fraction",
        "<=",
        "this project",
    ),
    Criterion(
        "mean temperature against the target",
        "temperature",
        "temperature_deviation_percent",
        "max_temperature_deviation_percent",
        "<=",
        "this project",
        absolute=True,
    ),
    Criterion(
        "kinetic-energy variance / canonical",
        "temperature",
        "kinetic_variance_ratio",
        "min_kinetic_variance_ratio",
        "between",
        "canonical ensemble",
        upper_key="max_kinetic_variance_ratio",
    ),
]


#: Relative tolerance of every threshold comparison: the round-off of accumulated time steps
#: (a 2 ps run stores 1.9999999999998 ps) must not decide a verdict.
RELATIVE_TOLERANCE = 1e-9


def judge(value: float | None, criterion: Criterion, threshold: float | tuple) -> bool | None:
    """Whether ``value`` passes ``criterion`` at ``threshold``; None when the value was not measured.

    A value within :data:`RELATIVE_TOLERANCE` of the threshold counts as equal to it: it passes
    ``<=`` and ``>=`` and fails ``<``. ``between`` takes a (lower, upper) pair, both inclusive.
    """
    if value is None or value != value:  # None or NaN
        return None
    if criterion.absolute:
        value = abs(value)
    if criterion.comparison == "between":
        lower, upper = threshold
        return _at_least(value, lower) and _at_least(upper, value)
    equal = math.isclose(value, threshold, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)
    return {"<": value < threshold and not equal, "<=": value <= threshold or equal, ">=": _at_least(value, threshold)}[
        criterion.comparison
    ]


def _at_least(value: float, bound: float) -> bool:
    return value >= bound or math.isclose(value, bound, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)


def threshold_of(thresholds: Thresholds, criterion: Criterion) -> float | tuple:
    """The threshold of ``criterion``: one number, or (lower, upper) for ``between``."""
    lower = getattr(thresholds, criterion.threshold_key)
    return (lower, getattr(thresholds, criterion.upper_key)) if criterion.upper_key else lower
