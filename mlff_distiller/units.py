"""Unit conversions: the one table of the project.

Models work in Å and eV; OpenMM in nm and kJ/mol; LAMMPS ``units metal`` in Å, eV and ps,
``units real`` in Å, kcal/mol and fs; ASE in Å and eV. Every reader states the units of what it
returns with the names of :data:`ENERGY_UNITS` and :data:`FORCE_UNITS`, and converts with
:func:`energy_to_eV` and :func:`force_to_eV_per_A`.
"""

#: kJ/mol in one eV (CODATA 2018 via OpenMM's constants).
EV_TO_KJ_PER_MOL = 96.485332123310018
#: kJ in one thermochemical kcal.
KCAL_TO_KJ = 4.184
#: kcal/mol in one eV.
EV_TO_KCAL_PER_MOL = EV_TO_KJ_PER_MOL / KCAL_TO_KJ
#: Å in one nm.
NM_TO_ANGSTROM = 10.0
#: meV in one eV.
EV_TO_MEV = 1000.0
#: Boltzmann constant in eV/K.
BOLTZMANN_EV_PER_K = 8.617333262e-5
#: eV in one hartree (CODATA 2018).
HARTREE_TO_EV = 27.211386245988
#: Å in one bohr (CODATA 2018).
BOHR_TO_ANGSTROM = 0.529177210903
#: bar in one eV/Å^3, as LAMMPS rounds it in ``units metal`` (its ``force->nktv2p``; CODATA gives
#: 1.602176634e6).
EV_PER_A3_TO_BAR_LAMMPS = 1.6021765e6

#: Energy units, each with the eV it is worth.
ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "kJ/mol": 1.0 / EV_TO_KJ_PER_MOL,
    "kcal/mol": 1.0 / EV_TO_KCAL_PER_MOL,
    "meV": 1.0 / EV_TO_MEV,
    "Hartree": HARTREE_TO_EV,
}
#: Force units, each with the eV/Å it is worth.
FORCE_UNITS: dict[str, float] = {
    "eV/Å": 1.0,
    "kJ/(mol·Å)": 1.0 / EV_TO_KJ_PER_MOL,
    "kJ/(mol·nm)": 1.0 / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM),
    "kcal/(mol·Å)": 1.0 / EV_TO_KCAL_PER_MOL,
    "meV/Å": 1.0 / EV_TO_MEV,
    "Hartree/Bohr": HARTREE_TO_EV / BOHR_TO_ANGSTROM,
}
#: LAMMPS unit styles this project reads: energy and force units, and the ps in one time unit.
LAMMPS_UNITS: dict[str, dict] = {
    "metal": {"energy": "eV", "force": "eV/Å", "time_ps": 1.0},
    "real": {"energy": "kcal/mol", "force": "kcal/(mol·Å)", "time_ps": 1e-3},
}


def energy_to_eV(unit: str) -> float:
    """The factor that turns an energy in ``unit`` (a key of :data:`ENERGY_UNITS`) into eV."""
    try:
        return ENERGY_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown energy unit '{unit}'; known: {', '.join(ENERGY_UNITS)}") from None


def force_to_eV_per_A(unit: str) -> float:
    """The factor that turns a force in ``unit`` (a key of :data:`FORCE_UNITS`) into eV/Å."""
    try:
        return FORCE_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown force unit '{unit}'; known: {', '.join(FORCE_UNITS)}") from None


def unit_name(text: str, table: dict[str, float]) -> str:
    """The key of ``table`` (:data:`ENERGY_UNITS` or :data:`FORCE_UNITS`) that ``text`` spells, or ValueError.

    Spelling is forgiving: case is ignored, spaces, brackets and ``·`` separate like ``/``, ``A``, ``Ang`` and
    ``angstrom`` mean Å and ``Ha`` means hartree, so ``"kcal/mol/A"`` is ``"kcal/(mol·Å)"`` and
    ``"Ha/bohr"`` is ``"Hartree/Bohr"``.
    """
    wanted = _spelling(text)
    for name in table:
        if _spelling(name) == wanted:
            return name
    kind = "energy" if table is ENERGY_UNITS else "force"
    raise ValueError(f"unknown {kind} unit '{text}'; give one of {', '.join(table)}")


def _spelling(text: str) -> str:
    words = text.strip().lower()
    for separator in ("·", "*", " ", "(", ")"):
        words = words.replace(separator, "/")
    aliases = {"a": "å", "ang": "å", "angstrom": "å", "ha": "hartree"}
    return "/".join(aliases.get(part, part) for part in words.split("/") if part)
