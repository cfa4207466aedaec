"""PNG plots of a validation report, each drawn from an analysis's ``results``."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..safe_write import staged_file  # noqa: E402
from ..units import EV_TO_MEV  # noqa: E402

DPI = 130


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    try:
        with staged_file(path, overwrite=True) as staged:
            fig.savefig(staged, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def plot_energies(drift, path: Path) -> Path:
    """Potential, kinetic and total energy per atom against time (meV/atom, shifted to start at 0), with the drift fit."""
    r = drift
    n = r["n_atoms"]
    t = np.asarray(r["time_ps"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]})
    for name, values, color in (
        ("potential", r["potential_eV"], "tab:blue"),
        ("kinetic", r["kinetic_eV"], "tab:orange"),
    ):
        values = np.asarray(values, dtype=float)
        top.plot(t, (values - values[0]) * EV_TO_MEV / n, color=color, lw=0.9, label=name)
    top.set_ylabel("E - E(0) (meV/atom)")
    top.legend(loc="best", fontsize=8)
    top.set_title("Energies per atom")
    total = np.asarray(r["total_eV"], dtype=float)
    e0 = total[np.isfinite(total)][0] if np.isfinite(total).any() else 0.0
    bottom.plot(t, (total - e0) * EV_TO_MEV / n, color="black", lw=0.9, label="total")
    if r.get("fit_slope_eV_per_ps") == r.get("fit_slope_eV_per_ps"):  # a fit exists (not NaN)
        window = (t >= r["fit_start_ps"]) & (t <= r.get("fit_end_ps", np.inf))  # a failed run: fitted before it
        fit = r["fit_slope_eV_per_ps"] * t[window] + r["fit_intercept_eV"]
        bottom.plot(
            t[window],
            (fit - e0) * EV_TO_MEV / n,
            color="tab:red",
            lw=1.6,
            label=f"fit: {r['slope_meV_per_atom_per_ps']:.3g} meV/atom/ps",
        )
        bottom.axvspan(t[0], r["fit_start_ps"], color="0.9", label="warm-up (not fitted)")
    bottom.set_xlabel("time (ps)")
    bottom.set_ylabel("E_tot - E_tot(0) (meV/atom)")
    bottom.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_temperature(drift, stability, path: Path) -> Path:
    """Temperature (K) and the largest bond-length deviation (Å) against time."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    if drift is not None and drift.get("temperature_K") is not None and len(drift["temperature_K"]):
        temps = np.asarray(drift["temperature_K"], dtype=float)
        top.plot(drift["time_ps"], temps, color="tab:red", lw=0.9)
        mean = drift.get("temperature_mean_K", np.nanmean(temps))  # the report's: before any stability failure
        if mean == mean:
            top.axhline(mean, color="0.4", ls="--", lw=0.8, label=f"mean {mean:.1f} K")
            top.legend(loc="best", fontsize=8)
    top.set_ylabel("temperature (K)")
    top.set_title("Temperature and bond integrity")
    if stability is not None and len(stability["max_bond_deviation_A"]):
        bottom.plot(stability["time_ps"], stability["max_bond_deviation_A"], color="tab:green", lw=0.9)
        bottom.axhline(stability.get("bond_tolerance", 0.5), color="tab:red", ls="--", lw=0.8, label="collapse line")
        bottom.legend(loc="best", fontsize=8)
    bottom.set_ylabel("largest bond deviation (Å)")
    bottom.set_xlabel("time (ps)")
    return _save(fig, path)


def plot_parity(forces, path: Path) -> Path:
    """Student against teacher force components (eV/Å), coloured by element."""
    from ..elements import symbols

    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    student, teacher = np.asarray(forces["student_forces"]), np.asarray(forces["teacher_forces"])
    numbers = np.asarray(forces["numbers"])
    for z in np.unique(numbers):
        pick = numbers == z
        ax.scatter(teacher[:, pick].ravel(), student[:, pick].ravel(), s=3, alpha=0.4, label=symbols([z])[0])
    lim = float(np.nanmax(np.abs(np.concatenate([student.ravel(), teacher.ravel()])))) * 1.05
    ax.plot([-lim, lim], [-lim, lim], color="black", lw=0.8)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(f"teacher force component (eV/Å), {forces['teacher']}")
    ax.set_ylabel("student force component (eV/Å)")
    ax.set_title(f"Force parity: RMSE {forces['rmse']:.3f} eV/Å, R² {forces['r2']:.3f}")
    ax.legend(loc="upper left", fontsize=8, markerscale=3)
    return _save(fig, path)


def plot_angles(forces, path: Path) -> Path:
    """Histogram of the angle between student and teacher force per atom (degrees)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    angles = np.asarray(forces["angles_deg"])
    ax.hist(angles, bins=np.linspace(0, 180, 61), color="tab:purple")
    ax.axvline(
        forces["angle_median_deg"], color="black", ls="--", lw=1, label=f"median {forces['angle_median_deg']:.1f}°"
    )
    ax.set_xlabel("angle between student and teacher force (degrees)")
    ax.set_ylabel("atoms x frames")
    ax.set_title("Angular force error")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_rmse_per_frame(forces, path: Path) -> Path:
    """Force RMSE (eV/Å) on each compared frame against time, with audit records and gaps."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(forces["time_ps"]):
        ax.plot(
            forces["time_ps"], forces["per_frame_rmse"], "o-", ms=3, lw=0.9, color="tab:blue", label="sampled frames"
        )
    audit = forces.get("audit")
    if audit is not None:
        ax.plot(audit["time_ps"], audit["rmse_eV_per_A"], "s", ms=3, color="tab:orange", label="audit during MD")
    for i, gap in enumerate(forces.get("gaps") or []):
        ax.axvline(gap["time_ps"], color="tab:red", lw=0.8, ls=":", label="teacher failed" if i == 0 else None)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("force RMSE (eV/Å)")
    ax.set_ylim(bottom=0)
    ax.set_title("Force error along the trajectory")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_per_element(forces, path: Path) -> Path:
    """Force RMSE and MAE per element (eV/Å)."""
    per = forces["per_element"]
    names = list(per)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 4))
    ax.bar(x - 0.2, [per[k]["rmse"] for k in names], 0.4, label="RMSE")
    ax.bar(x + 0.2, [per[k]["mae"] for k in names], 0.4, label="MAE")
    ax.set_xticks(x, [f"{k}\n({per[k]['n_atoms']} atoms)" for k in names])
    ax.set_ylabel("force error (eV/Å)")
    ax.set_title("Force error per element")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_rdf(structure, path: Path) -> Path:
    """g(r) or h(r) of the trajectory and of the reference."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(structure["r"], structure["g_reference"], color="black", lw=1.2, label="reference")
    ax.plot(structure["r"], structure["g"], color="tab:red", lw=1.0, ls="--", label="this run")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)" if structure["periodic"] else "h(r) (1/Å)")
    ax.set_title(
        f"{'Radial distribution' if structure['periodic'] else 'Pair-distance distribution'}: error {structure['error']:.3f}"
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_internal_coordinates(internal, path: Path, n: int = 4, key: str = "worst") -> Path:
    """Distributions of the ``n`` worst internal coordinates (``key``: "worst" or "worst_dihedrals"), run over reference."""
    worst = list(internal[key])[:n]
    fig, axes = plt.subplots(1, max(len(worst), 1), figsize=(3.4 * max(len(worst), 1) + 0.6, 3.6), squeeze=False)
    for ax, w in zip(axes[0], worst, strict=False):
        edges = np.asarray(w["edges"])
        ax.stairs(w["reference_density"], edges, color="black", lw=1.2, label="teacher")
        ax.stairs(w["density"], edges, color="tab:red", lw=1.0, ls="--", label="this run")
        for bound in w["bounds"]:
            ax.axvline(bound, color="0.5", ls=":", lw=0.8)
        ax.set_xlabel(f"{w['kind']} ({w['unit']}); dotted: teacher range + 1 sd")
        ax.set_title(
            f"{w['label'].rsplit(' ', 1)[0]}\nJS {w['divergence']:.2f} bits, "
            f"{100 * w['outside_fraction']:.0f}% outside, shift {w['shift']:+.3g} {w['unit']}",
            fontsize=9,
        )
    axes[0][0].set_ylabel(f"probability density (1/{worst[0]['unit']})" if worst else "")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Internal coordinates furthest from the teacher's distribution", fontsize=10)
    return _save(fig, path)


def plot_close_contacts(stability, path: Path) -> Path:
    """Closest non-bonded distance / its contact distance (below 1 is a close contact) and contacts per frame."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    t = np.asarray(stability["time_ps"])
    top.plot(t, stability["min_contact_ratio_per_frame"], color="tab:blue", lw=0.9)
    top.axhline(1.0, color="tab:red", ls="--", lw=0.8, label="close contact")
    top.set_ylabel("closest pair / contact distance")
    top.set_title("Non-bonded contacts (1-2 and 1-3 pairs left out)")
    top.legend(loc="best", fontsize=8)
    bottom.plot(t, stability["close_contacts_per_frame"], color="tab:red", lw=0.9, drawstyle="steps-mid")
    bottom.set_ylabel("pairs in close contact")
    bottom.set_xlabel("time (ps)")
    return _save(fig, path)


def plot_model_deviation(deviation, forces, path: Path) -> Path:
    """Largest (and mean) committee force deviation per frame against time with the trust levels, the teacher's
    per-frame force RMSE and largest error beside it (eV/Å), and deviation against teacher error."""
    with_teacher = deviation.get("teacher_max_error") is not None and forces is not None
    fig, axes = plt.subplots(1, 2 if with_teacher else 1, figsize=(11 if with_teacher else 7, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(deviation["time_ps"], deviation["max_deviation"], color="tab:purple", lw=0.9, label="largest deviation")
    ax.plot(
        deviation["time_ps"], deviation["mean_deviation"], color="tab:purple", lw=0.7, ls=":", label="mean deviation"
    )
    for level, name, color in (
        (deviation["trust_lo"], "trust lo", "tab:orange"),
        (deviation["trust_hi"], "trust hi", "tab:red"),
    ):
        ax.axhline(level, color=color, ls="--", lw=0.8, label=f"{name} {level:g} eV/Å")
    if with_teacher:
        ax.plot(forces["time_ps"], forces["per_frame_rmse"], "o", ms=3, color="tab:blue", label="teacher: force RMSE")
        ax.plot(
            forces["time_ps"],
            deviation["teacher_max_error"],
            "s",
            ms=3,
            color="tab:green",
            label="teacher: largest error",
        )
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("force deviation or error (eV/Å)")
    ax.set_ylim(bottom=0)
    ax.set_title("Model deviation along the run")
    ax.legend(fontsize=7, loc="best")
    if with_teacher:
        index = {int(f): i for i, f in enumerate(deviation["frames"])}
        frames = [int(f) for f in forces["frames"]]
        x = [deviation["max_deviation"][index[f]] if f in index else np.nan for f in frames]
        right = axes[0][1]
        right.scatter(x, forces["per_frame_rmse"], s=12, color="tab:blue", label="force RMSE")
        right.scatter(x, deviation["teacher_max_error"], s=12, color="tab:green", marker="s", label="largest error")
        right.set_xlabel("largest committee deviation (eV/Å)")
        right.set_ylabel("teacher force error (eV/Å)")
        right.set_title(
            f"Spearman {deviation['spearman_rmse']:.2f} (RMSE), {deviation['spearman_max_error']:.2f} (largest error)"
        )
        right.legend(fontsize=7, loc="best")
    return _save(fig, path)


def draw_all(analyses: dict, directory: Path) -> list[str]:
    """Draw every plot the available analyses allow; returns the PNG file names written."""
    drift, forces, stability, structure = (
        analyses.get(k) for k in ("energy_drift", "force_fidelity", "stability", "structure")
    )
    jobs = []
    if drift is not None and len(drift["time_ps"]):  # none when the run stopped in its warm-up
        jobs.append(("energies.png", lambda p: plot_energies(drift, p)))
    if drift is not None or stability is not None:
        jobs.append(("temperature.png", lambda p: plot_temperature(drift, stability, p)))
    if forces is not None and forces.get("student_forces") is not None:
        jobs += [
            ("force_parity.png", lambda p: plot_parity(forces, p)),
            ("angular_error.png", lambda p: plot_angles(forces, p)),
        ]
    if forces is not None and (forces.get("student_forces") is not None or forces.get("audit") is not None):
        jobs.append(("force_rmse_per_frame.png", lambda p: plot_rmse_per_frame(forces, p)))
    if forces is not None and forces.get("per_element"):
        jobs.append(("per_element.png", lambda p: plot_per_element(forces, p)))
    if structure is not None:
        jobs.append(("rdf.png", lambda p: plot_rdf(structure, p)))
    if stability is not None and len(stability.get("min_contact_ratio_per_frame", [])):
        jobs.append(("close_contacts.png", lambda p: plot_close_contacts(stability, p)))
    deviation = analyses.get("model_deviation")
    if deviation is not None and deviation["n_frames"]:
        jobs.append(("model_deviation.png", lambda p: plot_model_deviation(deviation, forces, p)))
    internal = analyses.get("internal_coordinates")
    if internal and len(internal["worst"]):
        jobs.append(("internal_coordinates.png", lambda p: plot_internal_coordinates(internal, p)))
    written = []
    for name, draw in jobs:
        draw(Path(directory) / name)
        written.append(name)
    return written


def plot_comparison(rows: list[dict], path: Path) -> Path:
    """Each model's key figures as a fraction of their pass line (below 1 passes, for 'max' lines)."""
    keys = [
        ("stable", "required/stable time"),
        ("slope", "drift rate"),
        ("ratio", "drift/fluct."),
        ("relative", "relative drift"),
        ("rmse", "force RMSE"),
        ("angle", "median angle"),
        ("one_minus_r2", "1 - R²"),
    ]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(keys) + 1), 4.5))
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(keys))
    for i, row in enumerate(rows):
        values = [row["ratios"].get(k) for k, _ in keys]
        values = [np.nan if v is None else v for v in values]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=row["label"])
    ax.axhline(1.0, color="black", ls="--", lw=1, label="pass line")
    ax.set_yscale("log")
    ax.set_xticks(x, [label for _, label in keys])
    ax.set_ylabel("figure / threshold (below 1 passes)")
    ax.set_title("Models against the production thresholds")
    ax.legend(fontsize=8)
    return _save(fig, path)
