"""Every figure a validation report states: its section, results key, unit and definition."""

from .drift import MIN_FIT_ROWS, MIN_PRODUCTION_FRACTION_BEFORE_FAILURE, MIN_ROWS_BEFORE_FAILURE

#: (section, key, unit, definition); the key names an entry of the analysis's ``results``.
FIGURES: list[tuple[str, str, str, str]] = [
    (
        "energy_drift",
        "slope_meV_per_atom_per_ps",
        "meV/atom/ps",
        "least-squares slope of the total energy against time after the warm-up window, divided by the number of atoms; "
        "a failed run: over its energy rows before the first stability failure only",
    ),
    (
        "energy_drift",
        "drift_to_fluctuation",
        "1",
        "|slope| x duration of the fitted window / standard deviation of the kinetic energy in that window",
    ),
    (
        "energy_drift",
        "relative_drift_percent",
        "%",
        "100 (E_tot[end] - E_tot[0]) / |E_tot[0]|, end: the last row (before any stability failure); depends on the "
        "energy zero, never read it alone",
    ),
    ("energy_drift", "max_relative_deviation_percent", "%", "100 max|E_tot - E_tot[0]| / |E_tot[0]|"),
    (
        "energy_drift",
        "rms_fluctuation_meV_per_atom",
        "meV/atom",
        "standard deviation of the total energy in the fitted window, divided by the number of atoms",
    ),
    (
        "energy_drift",
        "com_drift_A",
        "Å",
        "largest displacement of the centre of mass from its first position (minimum-image steps between frames)",
    ),
    ("energy_drift", "temperature_mean_K", "K", "mean instantaneous temperature (before any stability failure)"),
    ("energy_drift", "temperature_std_K", "K", "standard deviation of the instantaneous temperature"),
    ("energy_drift", "fit_start_ps", "ps", "start of the fitted window (end of the warm-up)"),
    ("energy_drift", "fit_end_ps", "ps", "end of the fitted window (the last energy row before any stability failure)"),
    (
        "energy_drift",
        "measured_until_ps",
        "ps",
        "time of the last energy row the figures cover: the last before the run's first stability failure (collapse, "
        "hydrogen loss, explosion, close contact), else the last of the run",
    ),
    (
        "energy_drift",
        "n_rows",
        "1",
        "finite energy rows of the production the figures cover (before any stability failure); no fit below "
        f"{MIN_FIT_ROWS}, and a failed run's drift is judged over at least {MIN_ROWS_BEFORE_FAILURE} rows reaching "
        f"{100 * MIN_PRODUCTION_FRACTION_BEFORE_FAILURE:g} % of the production",
    ),
    ("energy_drift", "duration_ps", "ps", "length of the fitted window"),
    ("energy_drift", "n_nonfinite", "1", "energy rows with a non-finite value, left out of every figure"),
    (
        "temperature",
        "temperature_mean_K",
        "K",
        "mean instantaneous temperature of the production (after any equilibration, before any stability failure)",
    ),
    (
        "temperature",
        "target_temperature_K",
        "K",
        "the thermostat's temperature, or the temperature an NVE run was started at (--temperature, settings.json, LAMMPS fix)",
    ),
    ("temperature", "temperature_deviation_percent", "%", "100 (mean temperature - target) / target"),
    (
        "temperature",
        "nve_scatter_percent",
        "%",
        "100 / sqrt(f): how far one NVE run's mean temperature strays from its start temperature by chance (1 sd; "
        "the energy it has when NVE starts); the pass line is at least twice this",
    ),
    (
        "temperature",
        "kinetic_variance_ratio",
        "1",
        "var(E_kin) / ((f/2) (k_B T_target)^2) over the production: 1 in the canonical ensemble (thermostatted runs only)",
    ),
    (
        "temperature",
        "degrees_of_freedom",
        "1",
        "f: degrees of freedom of the kinetic temperature (see the notes for their source)",
    ),
    ("temperature", "production_start_ps", "ps", "start of the production (end of the equilibration)"),
    (
        "temperature",
        "measured_until_ps",
        "ps",
        "time of the last energy row the temperature figures cover (the last before any stability failure)",
    ),
    ("force_fidelity", "rmse", "eV/Å", "sqrt(mean over atoms, components and frames of (F_student - F_teacher)^2)"),
    ("force_fidelity", "mae", "eV/Å", "mean |F_student - F_teacher| over atoms, components and frames"),
    ("force_fidelity", "r2", "1", "1 - SS_res / SS_tot over the flattened force components"),
    (
        "force_fidelity",
        "angle_mean_deg",
        "deg",
        "mean angle between student and teacher force per atom (atoms with a teacher force above the threshold)",
    ),
    ("force_fidelity", "angle_median_deg", "deg", "median of the same angles"),
    ("force_fidelity", "n_angles", "1", "atoms x frames with a measured angle"),
    (
        "force_fidelity",
        "worst_atom_rmse",
        "eV/Å",
        "largest per-atom force RMSE: sqrt(mean over frames and components of (F_student - F_teacher)^2) of the worst atom",
    ),
    ("force_fidelity", "max_atom_error", "eV/Å", "largest |F_student - F_teacher| of any atom on any compared frame"),
    (
        "force_fidelity",
        "energy_mae_meV_per_atom",
        "meV/atom",
        "mean |E_student - E_teacher| / N over the compared frames",
    ),
    (
        "force_fidelity",
        "energy_offset_meV_per_atom",
        "meV/atom",
        "mean (E_student - E_teacher) / N (a constant offset)",
    ),
    ("force_fidelity", "energy_spread_meV_per_atom", "meV/atom", "standard deviation of (E_student - E_teacher) / N"),
    ("force_fidelity", "n_compared", "1", "frames on which the teacher was evaluated and compared"),
    ("force_fidelity", "n_requested", "1", "frames sampled for comparison (compared + gaps)"),
    (
        "force_fidelity",
        "audit_rmse",
        "eV/Å",
        "force RMSE over the frames audited during MD (mlffd md --audit-every): sqrt(mean of squared per-frame RMSEs)",
    ),
    ("force_fidelity", "audit_rmse_max", "eV/Å", "largest force RMSE of any audited frame"),
    ("force_fidelity", "n_audits", "1", "frames audited during MD"),
    (
        "stability",
        "stable_time_ps",
        "ps",
        "time from the start of the production to the last frame before the first collapse, hydrogen loss, explosion or "
        "close contact (to the last frame if none)",
    ),
    ("stability", "completed_time_ps", "ps", "production time reached by the run (after any equilibration)"),
    ("stability", "requested_time_ps", "ps", "production time the run was asked for (settings.json)"),
    ("stability", "fraction_completed", "1", "completed / requested time"),
    (
        "stability",
        "n_bonds",
        "1",
        "bonds found from covalent radii on the first frame, or on the structure the run started from (the topology "
        "file's coordinates) when the first frame is already exploded",
    ),
    ("stability", "n_watched_hydrogens", "1", "hydrogens bonded to a heavy atom (in the same structure as the bonds)"),
    (
        "stability",
        "min_nonbonded_distance_A",
        "Å",
        "smallest distance of any two atoms neither bonded nor sharing a bonded atom (the bonds of n_bonds; minimum "
        "image)",
    ),
    (
        "stability",
        "n_close_contacts",
        "1",
        "most such pairs closer than their contact distance on any frame (e.g. O…O 2.2 Å; see Stability)",
    ),
    (
        "internal_coordinates",
        "max_outside_fraction",
        "1",
        "largest share of frames in which one bond or angle lies outside the teacher MD's range widened by one of its "
        "standard deviations",
    ),
    (
        "internal_coordinates",
        "max_divergence",
        "bits",
        "largest Jensen-Shannon divergence (base 2: 0 identical, 1 disjoint) between the run's and the teacher's histogram "
        "of one bond or angle, on shared bins",
    ),
    (
        "internal_coordinates",
        "max_dihedral_divergence",
        "bits",
        "the same over dihedrals (rotamer populations of short runs differ; not judged)",
    ),
    (
        "internal_coordinates",
        "n_coordinates",
        "1",
        "bonds, angles and dihedrals compared, from the first frame's bonds",
    ),
    (
        "model_deviation",
        "max_deviation_mean",
        "eV/Å",
        "mean over frames of the committee's largest per-atom force deviation max_i σ_i, σ_i = sqrt(mean over members "
        "k of |F_ki - mean_k F_ki|²) (DeePMD's model deviation; teacher-free, not judged)",
    ),
    ("model_deviation", "max_deviation_median", "eV/Å", "median over frames of the largest per-atom force deviation"),
    (
        "model_deviation",
        "max_deviation_p95",
        "eV/Å",
        "95th percentile over frames of the largest per-atom force deviation",
    ),
    ("model_deviation", "max_deviation_max", "eV/Å", "largest per-atom force deviation on any frame"),
    (
        "model_deviation",
        "mean_deviation_mean",
        "eV/Å",
        "mean over frames and atoms of the per-atom force deviation σ_i",
    ),
    (
        "model_deviation",
        "fraction_above_trust_lo",
        "1",
        "share of frames whose largest deviation exceeds trust_lo (DP-GEN: not yet learned, a candidate for labelling)",
    ),
    (
        "model_deviation",
        "fraction_above_trust_hi",
        "1",
        "share of frames whose largest deviation exceeds trust_hi (DP-GEN: too far from the data to trust)",
    ),
    ("model_deviation", "trust_lo", "eV/Å", "lower trust level (DP-GEN's model_devi_f_trust_lo, 0.05 eV/Å by default)"),
    ("model_deviation", "trust_hi", "eV/Å", "upper trust level (DP-GEN's model_devi_f_trust_hi, 0.15 eV/Å by default)"),
    ("model_deviation", "n_frames", "1", "frames with a deviation (recorded during MD, or evaluated by the committee)"),
    (
        "model_deviation",
        "pearson_rmse",
        "1",
        "Pearson correlation, over the frames compared with the teacher, of the largest deviation with the force RMSE",
    ),
    ("model_deviation", "spearman_rmse", "1", "Spearman (rank) correlation of the same two per-frame series"),
    (
        "model_deviation",
        "pearson_max_error",
        "1",
        "Pearson correlation of the largest deviation with the largest per-atom force error |F_student - F_teacher| per frame",
    ),
    ("model_deviation", "spearman_max_error", "1", "Spearman (rank) correlation of the same two per-frame series"),
    ("model_deviation", "n_correlated", "1", "frames with both a deviation and a teacher comparison"),
    (
        "structure",
        "error",
        "1",
        "RDF: integral |g_ref - g| dr / integral |g_ref - 1| dr; molecules: integral |h_ref - h| dr (0 to 2)",
    ),
]


def section_figures(section: str, results) -> dict[str, dict]:
    """The figures of one section as ``{key: {"value", "unit", "definition"}}``; NaN and inf become None."""
    out = {}
    for name, key, unit, definition in FIGURES:
        if name != section:
            continue
        value = results.get(key) if hasattr(results, "get") else None
        out[key] = {"value": finite_or_none(value), "unit": unit, "definition": definition}
    return out


def finite_or_none(value):
    """A JSON-safe number: None for missing, NaN or infinite values."""
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
