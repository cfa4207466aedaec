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
#: bar in one eV/Å^3, as LAMMPS rounds it in ``units metal`` (its ``force->nktv2p``; CODATA gives
#: 1.602176634e6).
EV_PER_A3_TO_BAR_LAMMPS = 1.6021765e6

#: Energy units, each with the eV it is worth.
ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "kJ/mol": 1.0 / EV_TO_KJ_PER_MOL,
    "kcal/mol": 1.0 / EV_TO_KCAL_PER_MOL,
}
#: Force units, each with the eV/Å it is worth.
FORCE_UNITS: dict[str, float] = {
    "eV/Å": 1.0,
    "kJ/(mol·Å)": 1.0 / EV_TO_KJ_PER_MOL,
    "kJ/(mol·nm)": 1.0 / (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM),
    "kcal/(mol·Å)": 1.0 / EV_TO_KCAL_PER_MOL,
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
