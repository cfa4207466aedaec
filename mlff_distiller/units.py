"""Unit conversions. Models work in Å and eV; OpenMM in nm and kJ/mol; LAMMPS ``metal`` in Å and eV."""

#: kJ/mol in one eV (CODATA 2018 via OpenMM's constants).
EV_TO_KJ_PER_MOL = 96.485332123310018
#: Å in one nm.
NM_TO_ANGSTROM = 10.0
#: meV in one eV.
EV_TO_MEV = 1000.0
#: Boltzmann constant in eV/K.
BOLTZMANN_EV_PER_K = 8.617333262e-5
