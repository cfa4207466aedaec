"""Defaults of the teacher MD that a molecule's bonds and angles are judged against (``--reference teacher``).

One definition, used by ``mlffd validate``, ``mlffd demo`` and ``mlffd study`` and their Python functions;
light (no imports), so the command line can show them in its help.
"""

#: Simulated length (ps, equilibration included) of the teacher MD that a run's bonds and angles are
#: compared with: a fixed number of steps from a fixed seed, so the same start gives the same reference
#: on any machine. Aspirin (21 atoms) with GFN2-xTB on one thread: 10 ms per energy+forces call, 15 ms
#: per 0.5 fs Langevin step on a loaded machine, so its 3000 steps take 30-45 s.
REFERENCE_TIME_PS = 1.5
#: Wall-time safety cap (s) of that teacher MD, for systems too large for it: a reference it cuts short
#: of :data:`REFERENCE_TIME_PS` is not used (the criterion reads "not measured (why)"), so a busy
#: machine changes no verdict.
REFERENCE_BUDGET_S = 600.0
#: Seed of the teacher MD's initial velocities and thermostat noise.
REFERENCE_SEED = 0
#: Time step (fs) of the teacher MD.
REFERENCE_TIMESTEP_FS = 0.5
