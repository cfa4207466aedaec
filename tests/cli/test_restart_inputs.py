"""``mlffd md --restart`` reads a run directory: damaged settings or an empty trajectory are one line, exit code 2.

The run directory is checked before the model loads, so these run directories hold stand-ins for
the files that are not under test.
"""

import json

import h5py
import pytest

from mlff_distiller.errors import SimulationError
from mlff_distiller.plugin.openmm.md_settings import MDSettings, check_restart_trajectory

SETTINGS = {"structure": "aspirin", "model": "organic-ultra-tiny", "timestep": 0.5, "time": 0.05, "report_interval": 10}


def run_dir(tmp_path, settings: str | None = None, trajectory: bytes | None = None):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps(SETTINGS) if settings is None else settings)
    (folder / "checkpoint.chk").write_bytes(b"stand-in")
    (folder / "topology.pdb").write_text("END\n")
    if trajectory is None:
        with h5py.File(folder / "trajectory.h5md", "w") as handle:
            handle.create_group("particles/all")
    else:
        (folder / "trajectory.h5md").write_bytes(trajectory)
    return folder


def restart(mlffd, folder):
    result = mlffd("md", "--restart", folder, "--time", "0.1", "--quiet")
    assert result.code == 2 and "Traceback" not in result.err + result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlffd: error: "), result.err
    return lines[0]


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"structure": ', "cannot be read as a run's settings (Expecting value"),
        ("", "cannot be read as a run's settings"),
        ("[1, 2]", "holds a JSON list, not a run's settings"),
        ('{"time": 5}', "is not a run's settings: structure, model missing"),
        (json.dumps({**SETTINGS, "timestep": "fast"}), "timestep = 'fast' is not accepted"),
        (json.dumps({**SETTINGS, "seed": -4}), "seed = -4 is not accepted"),
    ],
)
def test_damaged_settings(tmp_path, mlffd, text, words):
    folder = run_dir(tmp_path, settings=text)
    before = (folder / "settings.json").read_bytes()
    assert words in restart(mlffd, folder)
    assert (folder / "settings.json").read_bytes() == before


@pytest.mark.parametrize(
    "data, words", [(b"", "(0 bytes)"), (b"not HDF5", "not a readable H5MD trajectory"), (None, None)]
)
def test_unreadable_trajectory(tmp_path, mlffd, data, words):
    folder = run_dir(tmp_path, trajectory=data)
    if data is None:  # a readable one passes this check (the stand-in checkpoint is refused later, in one line)
        check_restart_trajectory(folder / "trajectory.h5md")
        return
    assert words in restart(mlffd, folder)
    assert (folder / "trajectory.h5md").read_bytes() == data


def test_an_hdf5_file_without_particles(tmp_path):
    path = tmp_path / "t.h5md"
    with h5py.File(path, "w") as handle:
        handle.create_group("observables")
    with pytest.raises(SimulationError, match="no H5MD particles group"):
        check_restart_trajectory(path)


def test_read_returns_the_settings_and_the_whole_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({**SETTINGS, "model_sha256": "abc", "restarts": []}))
    settings, data = MDSettings.read(path)
    assert settings.time == 0.05 and settings.report_interval == 10 and data["model_sha256"] == "abc"
