"""The H5MD file of ``mlffd md`` as other readers see it, and restarts of files in the earlier layout.

Every series of a file written now shares one ``step`` and one ``time`` dataset (hard links):
MDAnalysis's H5MD reader and raw h5py read it as the H5MD 1.1 layout says, units from the
``unit`` attributes. A run directory whose trajectory has a ``step`` and ``time`` per series (as
written before, and as the H5MD specification allows) is extended by ``mlffd md --restart``.
"""

from pathlib import Path

import h5py
import MDAnalysis as mda
import numpy as np
import pytest
from kit import FLOAT32_STORED, TIGHT, assert_close
from MDAnalysis.coordinates.H5MD import H5MDReader

ETHANOL = str(Path(__file__).resolve().parents[3] / "mlff_distiller" / "data" / "molecules" / "ethanol.xyz")
TIMESTEP_PS = 0.5e-3
PARTICLES = {"position": "nm", "velocity": "nm ps-1", "force": "kJ mol-1 nm-1"}
OBSERVABLES = {"potential_energy": "eV", "kinetic_energy": "eV", "total_energy": "eV", "temperature": "K"}
#: MDAnalysis's units (Å, ps, kJ/mol) per nm-based unit of the file: its reader's own conversions.
TO_MDANALYSIS = {"position": 10.0, "velocity": 10.0, "force": 0.1}


def md(mlffd, checkpoint, run_dir, steps, *options):
    """``mlffd md`` on ethanol, NVE on the Reference platform in float64, a frame every 10 steps."""
    result = mlffd(
        "md", ETHANOL, "--model", checkpoint, "--time", steps * TIMESTEP_PS, "--report-interval", 10,
        "--platform", "Reference", "--precision", "double", "--ensemble", "nve", "-o", run_dir, "--quiet", *options,
    )  # fmt: skip
    assert result.code == 0, result.err


def series_paths(f: h5py.File) -> list[str]:
    """Every time series of the file: particle data, box edges if any, observables."""
    paths = [f"particles/system/{name}" for name in PARTICLES]
    if "edges" in f["particles/system/box"]:
        paths.append("particles/system/box/edges")
    return paths + [f"observables/{name}" for name in f["observables"]]


def test_mdanalysis_and_h5py_read_the_shared_clock(mlffd, make_checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    md(mlffd, make_checkpoint("organic-ultra-tiny"), run_dir, 40)
    steps = np.arange(0, 41, 10)
    with h5py.File(run_dir / "trajectory.h5md", "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        paths = series_paths(f)
        clock = f["particles/system/position"]
        for path in paths:  # one dataset, linked from every series
            assert f[path]["step"] == clock["step"] and f[path]["time"] == clock["time"], path
        assert h5py.h5o.get_info(clock["step"].id).rc == len(paths)
        np.testing.assert_array_equal(clock["step"][:], steps)
        assert clock["time"].attrs["unit"] == "ps"
        assert_close(clock["time"][:], steps * TIMESTEP_PS, TIGHT, "times")
        for name, unit in PARTICLES.items():
            assert f[f"particles/system/{name}/value"].attrs["unit"] == unit
        assert [b.decode() for b in f["particles/system/box"].attrs["boundary"]] == ["none"] * 3
        for name, unit in OBSERVABLES.items():
            assert f[f"observables/{name}/value"].attrs["unit"] == unit
        particles = {name: f[f"particles/system/{name}/value"][:] for name in PARTICLES}
        observables = {name: f[f"observables/{name}/value"][:] for name in OBSERVABLES}
        times = clock["time"][:]
    assert particles["position"].shape == (len(steps), 9, 3)
    table = np.genfromtxt(run_dir / "energies.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(table["step"], steps)
    assert_close(observables["potential_energy"], table["potential_energy_eV"], TIGHT, "H5MD against CSV")
    assert_close(observables["total_energy"], observables["potential_energy"] + observables["kinetic_energy"], TIGHT)

    universe = mda.Universe(str(run_dir / "topology.pdb"), str(run_dir / "trajectory.h5md"))
    assert isinstance(universe.trajectory, H5MDReader) and len(universe.trajectory) == len(steps)
    for frame, ts in enumerate(universe.trajectory):
        assert ts.time == pytest.approx(times[frame])
        assert ts.data["step"] == steps[frame]
        for name, got in (("position", ts.positions), ("velocity", ts.velocities), ("force", ts.forces)):
            expected = particles[name][frame] * TO_MDANALYSIS[name]
            np.testing.assert_allclose(got, expected, rtol=FLOAT32_STORED, err_msg=name)
        for name in OBSERVABLES:
            assert ts.data[name] == pytest.approx(observables[name][frame])
    universe.trajectory.close()


def rewrite_in_the_old_layout(path: Path, extra_step: int) -> None:
    """Write ``path`` again with a ``step`` and ``time`` of its own in every series (chunked as h5py
    chooses, unlike the writer's), plus one frame at ``extra_step`` after the run's end, as a run
    killed after its last checkpoint leaves."""
    with h5py.File(path, "r") as f:
        attrs = {name: dict(f[name].attrs) for name in ("h5md", "h5md/author", "h5md/creator", "particles/system/box")}
        data = {
            series: {name: f[f"{series}/{name}"][:] for name in ("value", "step", "time")} for series in series_paths(f)
        }
        value_units = {series: f[f"{series}/value"].attrs.get("unit") for series in data}
    with h5py.File(path, "w") as f:
        for group, values in attrs.items():
            f.require_group(group).attrs.update(values)
        for series, arrays in data.items():
            group = f.require_group(series)
            for name, array in arrays.items():
                extended = np.concatenate([array, array[-1:] * 2 if name == "value" else [extra_step]])
                if name == "time":
                    extended[-1] = extra_step * TIMESTEP_PS
                dataset = group.create_dataset(name, data=extended, maxshape=(None, *array.shape[1:]), chunks=True)
                if name == "time":
                    dataset.attrs["unit"] = "ps"
            if value_units[series] is not None:
                group["value"].attrs["unit"] = value_units[series]


def test_restart_appends_to_a_trajectory_in_the_old_layout(mlffd, make_checkpoint, tmp_path):
    """40 steps, the trajectory rewritten with a clock per series and a frame after the checkpoint,
    then ``--restart`` to 80 steps: the extra frame is dropped, every series' own step and time run
    0..80 without a gap, and every value equals that of an 80-step run in one go (NVE on the
    Reference platform restarts bit for bit)."""
    checkpoint = make_checkpoint("organic-ultra-tiny")
    run_dir, one_go = tmp_path / "old", tmp_path / "one-go"
    md(mlffd, checkpoint, run_dir, 40, "--checkpoint-interval", 20)
    md(mlffd, checkpoint, one_go, 80)
    trajectory = run_dir / "trajectory.h5md"
    rewrite_in_the_old_layout(trajectory, extra_step=50)
    result = mlffd("md", "--restart", run_dir, "--time", 80 * TIMESTEP_PS, "--quiet")
    assert result.code == 0, result.err

    steps = np.arange(0, 81, 10)
    with h5py.File(trajectory, "r") as restarted, h5py.File(one_go / "trajectory.h5md", "r") as expected:
        paths = series_paths(restarted)
        assert paths == series_paths(expected)
        assert len({h5py.h5o.get_info(restarted[f"{path}/step"].id).addr for path in paths}) == len(paths)
        for path in paths:
            np.testing.assert_array_equal(restarted[f"{path}/step"][:], steps, err_msg=path)
            assert_close(restarted[f"{path}/time"][:], steps * TIMESTEP_PS, TIGHT, f"{path} times")
            np.testing.assert_array_equal(restarted[f"{path}/value"][:], expected[f"{path}/value"][:], err_msg=path)
    universe = mda.Universe(str(run_dir / "topology.pdb"), str(trajectory))
    assert [ts.data["step"] for ts in universe.trajectory] == list(steps)
    universe.trajectory.close()
