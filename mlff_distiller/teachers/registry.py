"""Named teachers: GFN2-xTB (default), SevenNet-0, and any ``module:factory`` returning an ASE calculator."""

import importlib
import json
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes

from ..errors import MLFFDError
from .cache import LabelCache
from .teacher import Teacher

#: The teacher used when none is named.
DEFAULT_TEACHER = "gfn2-xtb"

#: One line per built-in teacher, shown in ``--help`` and in the docs.
TEACHERS: dict[str, str] = {
    "gfn2-xtb": "GFN2-xTB semi-empirical tight binding (tblite): organic molecules and liquids, elements H to Rn, "
    "periodic boxes with stress; the default",
    "sevenn-0": "SevenNet-0 foundation MLFF (optional extra: pip install mlff-distiller[sevenn]); trained on "
    "inorganic crystals (PBE, Materials Project), so chemically doubtful on organic molecules",
}

#: GFN2-xTB is parametrised for Z = 1 (H) to 86 (Rn).
GFN2_ELEMENTS = range(1, 87)


class ThreadLimitedTBLite(Calculator):
    """tblite's GFN2-xTB calculator run with a fixed number of OpenMP threads.

    Parameters
    ----------
    threads : int
        OpenMP threads tblite may use during each calculation.
    **settings
        tblite settings (``accuracy``, ``electronic_temperature`` in K, ``max_iterations``, ``charge``, ...).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, threads: int = 1, **settings):
        super().__init__()
        from tblite.ase import TBLite
        from threadpoolctl import ThreadpoolController

        self.threads = int(threads)
        self.tblite = TBLite(**{"method": "GFN2-xTB", "verbosity": 0, **settings})
        self._threadpools = ThreadpoolController()  # scanning the loaded libraries once costs ~10 ms

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        with self._threadpools.limit(limits=self.threads, user_api="openmp"):
            self.tblite.calculate(self.atoms, properties, system_changes)
        self.results = dict(self.tblite.results)


def _gfn2_xtb(threads: int = 1, **settings) -> Calculator:
    return ThreadLimitedTBLite(threads=threads, **settings)


def _sevenn_0(device: str = "cpu") -> Calculator:
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError as exc:
        raise MLFFDError(
            "teacher 'sevenn-0' needs the optional SevenNet package: pip install mlff-distiller[sevenn]"
        ) from exc
    return SevenNetCalculator("7net-0", device=device)


def _from_factory(spec: str, **options) -> Calculator:
    module_name, _, factory_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MLFFDError(f"teacher '{spec}': cannot import module '{module_name}' ({exc})") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise MLFFDError(f"teacher '{spec}': module '{module_name}' has no callable '{factory_name}'")
    calculator = factory(**options)
    if not isinstance(calculator, Calculator) and not hasattr(calculator, "get_potential_energy"):
        raise MLFFDError(f"teacher '{spec}': '{factory_name}()' did not return an ASE calculator")
    return calculator


def load_teacher(name: str = DEFAULT_TEACHER, cache: str | Path | LabelCache | None = None, **options) -> Teacher:
    """A :class:`Teacher` by name.

    Parameters
    ----------
    name : str
        ``"gfn2-xtb"`` (default), ``"sevenn-0"``, or ``"package.module:factory"``: any importable
        callable that returns an ASE calculator (energies in eV, forces in eV/Å), called with ``options``.
    cache : str or Path or LabelCache, optional
        SQLite file keeping labels across runs (see :class:`~mlff_distiller.teachers.LabelCache`).
    **options
        Passed to the teacher: for ``gfn2-xtb``, ``threads`` (default 1) and tblite settings such as
        ``accuracy`` or ``electronic_temperature`` (K); for ``sevenn-0``, ``device``.

    Raises
    ------
    MLFFDError
        Unknown name, missing optional package, or a factory that cannot be imported.
    """
    identity = name if not options else f"{name} {json.dumps(options, sort_keys=True, default=str)}"
    if name == "gfn2-xtb":
        return Teacher(name, _gfn2_xtb(**options), GFN2_ELEMENTS, cache=cache, identity=identity)
    if name == "sevenn-0":
        return Teacher(name, _sevenn_0(**options), None, cache=cache, identity=identity)
    if ":" in name:
        return Teacher(name, _from_factory(name, **options), None, cache=cache, identity=identity)
    raise MLFFDError(
        f"unknown teacher '{name}'; choose {', '.join(TEACHERS)} or name a factory as 'package.module:function'"
    )
