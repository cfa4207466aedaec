"""A teacher that fails on every second configuration: ASE's EMT with an injected SCF-like failure.

Loaded by name as ``flaky_teacher:flaky_emt`` (the tests folder is on sys.path during the tests).
"""

from ase.calculators.emt import EMT


class FlakyEMT(EMT):
    """EMT (supports H, C, N, O) that raises on every second calculation, like an SCF that does not converge."""

    def __init__(self):
        super().__init__()
        self.attempts = 0

    def calculate(self, *args, **kwargs):
        self.attempts += 1
        if self.attempts % 2 == 0:
            raise RuntimeError("SCF not converged (injected)")
        super().calculate(*args, **kwargs)


def flaky_emt() -> FlakyEMT:
    return FlakyEMT()
