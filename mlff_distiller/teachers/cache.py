"""A cache of teacher labels keyed by a configuration hash, in memory and optionally in an SQLite file."""

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
from ase import Atoms

#: Label arrays stored per configuration besides the energy.
ARRAY_LABELS = ("forces", "stress")


def configuration_hash(atoms: Atoms, namespace: str = "") -> str:
    """SHA-256 hex digest of a configuration: atomic numbers, positions (Å), cell (Å) and periodicity.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration; positions, cell and numbers are hashed bit for bit in float64/int64.
    namespace : str
        Prefixed to the digest input, e.g. a teacher's identity, so that two teachers never share labels.
    """
    digest = hashlib.sha256(namespace.encode())
    digest.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(atoms.cell[:], dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(atoms.pbc, dtype=bool).tobytes())
    return digest.hexdigest()


class LabelCache:
    """Teacher labels by configuration hash: a dict in memory, mirrored to an SQLite file when ``path`` is given.

    Parameters
    ----------
    path : str or Path, optional
        SQLite file (created if missing). Every label is committed as soon as it is stored,
        so an interrupted run loses nothing it already paid for.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, dict] = {}
        self._db = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS labels (key TEXT PRIMARY KEY, energy REAL, n_atoms INTEGER, "
                "forces BLOB, stress BLOB)"
            )
            self._db.commit()

    def __len__(self) -> int:
        if self._db is not None:
            return int(self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])
        return len(self._memory)

    def get(self, key: str) -> dict | None:
        """Labels stored under ``key`` (copies), or None."""
        labels = self._memory.get(key)
        if labels is None and self._db is not None:
            row = self._db.execute(
                "SELECT energy, n_atoms, forces, stress FROM labels WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                energy, n_atoms, forces, stress = row
                labels = {
                    "energy": float(energy),
                    "forces": np.frombuffer(forces, dtype=np.float64).reshape(n_atoms, 3),
                }
                if stress is not None:
                    labels["stress"] = np.frombuffer(stress, dtype=np.float64).copy()
                self._memory[key] = labels
        if labels is None:
            return None
        return {name: (value.copy() if isinstance(value, np.ndarray) else value) for name, value in labels.items()}

    def put(self, key: str, labels: dict) -> None:
        """Store ``labels`` (energy in eV, forces (N, 3) in eV/Å, optional stress (6,) in eV/Å³)."""
        stored = {"energy": float(labels["energy"])}
        for name in ARRAY_LABELS:
            if name in labels:
                stored[name] = np.array(labels[name], dtype=np.float64)
        self._memory[key] = stored
        if self._db is not None:
            stress = stored.get("stress")
            self._db.execute(
                "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    stored["energy"],
                    len(stored["forces"]),
                    stored["forces"].tobytes(),
                    None if stress is None else stress.tobytes(),
                ),
            )
            self._db.commit()

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None
