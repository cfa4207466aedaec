"""Engine plugins: the OpenMM system builder and MD runner, the LAMMPS pair style."""
