"""The verdict: each criterion whose section was analysed, its value, pass line and outcome."""

from .figures import FIGURES
from .thresholds import CRITERIA, Thresholds, judge, threshold_of

#: Outcomes that do not fail a verdict: the criterion does not apply to this run.
NOT_APPLICABLE = "not applicable"
#: The outcome of a criterion whose figure could not be measured (it fails the verdict), "(why)" appended when known.
NOT_MEASURED = "not measured"
#: An NVE run's mean temperature may stray from its start temperature by this many times its
#: expected scatter 100/sqrt(f) % before it is flagged (small molecules scatter by 15-20 %).
NVE_SCATTER_SIGMAS = 2.0
#: Sections judged only when their analysis ran (a reference was given, ...).
OPTIONAL_SECTIONS = ("structure", "internal_coordinates")


def verdict(
    figures: dict, thresholds: Thresholds, ensemble: dict | None = None, reasons: dict[str, str] | None = None
) -> dict:
    """The verdict table of a report.

    A criterion whose figure could not be measured reads "not measured" (with "(why)" when
    ``reasons`` gives its section one) and fails the verdict.
    Criteria that do not apply to the run read "not applicable (why)" and do not count:

    - energy conservation in a thermostatted run (NVT, NPT) that stored no conserved quantity;
    - the kinetic-energy variance of an NVE run (only a thermostat makes it canonical);
    - the mean temperature when no target temperature is known.

    Parameters
    ----------
    figures : dict
        ``report.json``'s figures: section -> key -> {"value", "unit", "definition"}.
    thresholds : Thresholds
        The pass lines.
    ensemble : dict, optional
        ``report.json``'s ``input.ensemble`` (name, conserved_quantity, target_temperature_K).
    reasons : dict, optional
        Section -> why its figures could not be measured (``report.json``'s ``details.not_measured``:
        e.g. too few energy rows before a failed run's explosion for a drift fit).
    """
    reasons = reasons or {}
    ensemble = ensemble or {"name": "nve", "conserved_quantity": False, "target_temperature_K": None}
    rows = []
    for criterion in CRITERIA:
        if criterion.section not in figures and criterion.section in OPTIONAL_SECTIONS:
            continue
        entry = figures.get(criterion.section, {}).get(criterion.figure, {"value": None, "unit": ""})
        threshold = threshold_of(thresholds, criterion)
        if criterion.figure == "temperature_deviation_percent":
            threshold = _temperature_line(threshold, figures.get("temperature", {}))
        outcome = judge(entry["value"], criterion, threshold)
        status = NOT_MEASURED if outcome is None else ("pass" if outcome else "fail")
        if outcome is None and reasons.get(criterion.section):
            status = f"{NOT_MEASURED} ({reasons[criterion.section]})"
        status = _not_applicable(criterion.section, criterion.figure, ensemble) or status
        comparison = ("|x| " if criterion.absolute else "") + criterion.comparison
        rows.append(
            {
                "criterion": criterion.name,
                "section": criterion.section,
                "figure": criterion.figure,
                "value": entry["value"],
                "unit": entry.get("unit") or unit_of(criterion.section, criterion.figure),
                "comparison": comparison,
                "threshold": list(threshold) if isinstance(threshold, tuple) else threshold,
                "source": criterion.source,
                "status": status,
            }
        )
    return {"passed": all(passes(r["status"]) for r in rows), "criteria": rows}


def _temperature_line(threshold: float, temperature: dict) -> float:
    """The mean-temperature pass line (%): the threshold, widened for NVE to twice the run's expected scatter."""
    scatter = (temperature.get("nve_scatter_percent") or {}).get("value")
    return max(threshold, NVE_SCATTER_SIGMAS * scatter) if scatter else threshold


def passes(status: str) -> bool:
    """Whether a criterion's outcome lets the verdict pass (pass, or not applicable to this run)."""
    return status == "pass" or status.startswith(NOT_APPLICABLE)


def _not_applicable(section: str, figure: str, ensemble: dict) -> str | None:
    name = ensemble["name"].upper()
    if section == "energy_drift" and ensemble["name"] != "nve" and not ensemble.get("conserved_quantity"):
        return f"{NOT_APPLICABLE} ({name}: no conserved quantity stored)"
    if figure == "kinetic_variance_ratio" and ensemble["name"] == "nve":
        return f"{NOT_APPLICABLE} (NVE)"
    if figure == "temperature_deviation_percent" and not ensemble.get("target_temperature_K"):
        return f"{NOT_APPLICABLE} (no target temperature; pass --temperature)"
    return None


def unit_of(section: str, key: str) -> str:
    """The unit of a figure, from :data:`FIGURES`."""
    return next((unit for s, k, unit, _ in FIGURES if s == section and k == key), "")
