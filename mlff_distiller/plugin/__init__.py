"""Engine plugins, one subpackage per engine.

- :mod:`mlff_distiller.plugin.openmm`: the OpenMM system builder (``TorchForce``) and MD runner
  (``mlffd md``), and the OpenMM-ML potential ``mlff-distiller``;
- :mod:`mlff_distiller.plugin.lammps`: the ``pair_style mlffd`` plugin (C++), its build and a
  single-point driver.
"""
