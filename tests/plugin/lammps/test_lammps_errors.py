"""Every bad input to pair_style mlffd stops LAMMPS with its own ERROR line and a non-zero exit,
never a C++ exception escaping LAMMPS (``terminate called``) or torch's backtrace."""

import torch

import pytest
from lammps_harness import run_lammps, water_box, write_data

from mlff_distiller.export import export_lammps, export_openmm
from mlff_distiller.export.metadata import load_exported, save_with_metadata
from mlff_distiller.models import Student, preset, save_checkpoint

SCRIPT = """
units {units}
newton {newton}
atom_style atomic
read_data system.data
pair_style mlffd {model}
pair_coeff * * {elements}
run 0
"""


class EarlierLammpsExport(torch.nn.Module):
    """What a LAMMPS export looked like before the pair style read ``kernel_weights``."""

    def __init__(self):
        super().__init__()
        self.cutoff, self.layers, self.width = 5.0, 3, 88

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return positions.sum()


class ListWeightsExport(EarlierLammpsExport):
    """What a LAMMPS export looked like before its weights were named: a positional list."""

    kernel_weights: list[torch.Tensor]

    def __init__(self):
        super().__init__()
        self.norm_epsilon, self.symbols = 1e-8, ["O", "H"]
        self.kernel_weights = [torch.zeros(2, 22)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    torch.manual_seed(0)
    save_checkpoint(Student(preset("ultra-tiny")), folder / "student.ckpt")
    write_data(water_box(2), folder / "system.data", ["O", "H"])
    (folder / "garbage.pt").write_bytes(b"this is not a model")
    save_with_metadata(torch.jit.script(EarlierLammpsExport()), folder / "earlier.pt", {"engine": "lammps"})
    save_with_metadata(torch.jit.script(ListWeightsExport()), folder / "list.pt", {"engine": "lammps"})
    lammps = export_lammps(folder / "student.ckpt", folder / "lammps.pt", precision="float64")
    data = lammps.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    weights = dict(torch.jit.load(str(lammps)).kernel_weights)
    misshapen = weights["interactions.1.filter.weight"][:, :-1].contiguous()
    tampering = {
        "tampered.pt": ("kernel_weights", {k: v for k, v in weights.items() if k != "readout_in.bias"}),  # one gone
        "mixed-dtype.pt": (
            "kernel_weights",
            {**weights, "interactions.0.gate_out.bias": weights["interactions.0.gate_out.bias"].float()},
        ),
        "misshapen.pt": ("kernel_weights", {**weights, "interactions.1.filter.weight": misshapen}),
        "extra-element.pt": ("symbols", list(torch.jit.load(str(lammps)).symbols) + ["Xe"]),  # not embedded
    }
    for name, (attribute, value) in tampering.items():
        module, metadata = load_exported(lammps)
        setattr(module, attribute, value)
        save_with_metadata(module, folder / name, metadata)
    return {"folder": folder, "lammps": lammps, "openmm": export_openmm(folder / "student.ckpt", folder / "openmm.pt")}


CASES = {
    "missing model file": ({"model": "no-such-model.pt"}, "cannot open model file no-such-model.pt"),
    "not a model": ({"model": "garbage.pt"}, "is not a TorchScript model file"),
    "truncated model file": ({"model": "truncated.pt"}, "truncated.pt is not a TorchScript model file"),
    "weight missing": (
        {"model": "tampered.pt"},
        "tampered.pt holds no usable network: mlffd: weight 'readout_in.bias' is missing",
    ),
    "weight of another dtype": (
        {"model": "mixed-dtype.pt"},
        "weight 'interactions.0.gate_out.bias' is Float, expected Double",
    ),
    "weight of another shape": (
        {"model": "misshapen.pt"},
        "weight 'interactions.1.filter.weight' has shape [66, 20], expected [66, 21]",
    ),
    "weights as a list": (
        {"model": "list.pt"},
        "holds its weights as a list, as older mlff-distiller versions wrote them",
    ),
    "element without embedding": ({"model": "extra-element.pt"}, "lists 11 elements but its network embeds 10"),
    "OpenMM model": ({"model": "openmm.pt"}, "was exported for engine 'openmm', not LAMMPS"),
    "model from an earlier version": (
        {"model": "earlier.pt"},
        "was written by an older mlff-distiller; export it again",
    ),
    "element the model lacks": ({"elements": "O Na"}, "element Na (atom type 2) is not supported by model"),
    "the model's elements listed": ({"elements": "O Na"}, "; it supports H C N O F P S Cl Br I (or NULL)"),
    "wrong number of elements": ({"elements": "O"}, "one element symbol or NULL per atom type (2 types)"),
    "NULL without hybrid": ({"elements": "O NULL"}, "All pair coeffs are not set"),
    "units lj": (
        {"units": "lj"},
        "requires 'units metal' (Å, eV, ps) or 'units real' (Å, kcal/mol, fs); this input uses 'units lj'",
    ),
    "units si": ({"units": "si"}, "this input uses 'units si'"),
    "newton off": ({"newton": "off"}, "requires 'newton on'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_a_lammps_error(case, files):
    changes, message = CASES[case]
    settings = {"units": "metal", "newton": "on", "model": files["lammps"], "elements": "O H", **changes}
    if settings["model"] == "openmm.pt":
        settings["model"] = files["openmm"]
    result = run_lammps(SCRIPT.format(**settings), files["folder"], check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    error_lines = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert error_lines, output[-2000:]
    assert message in error_lines[0], error_lines[0]
    for crash in ("Segmentation", "terminate called", "Exception raised from", "frame #"):
        assert crash not in output, output[-2000:]


CLOSE_ATOMS = """
units metal
atom_style atomic
read_data system.data
create_atoms 1 single {x} {y} {z} units box
pair_style mlffd {model}
pair_coeff * * O H
run 0
"""


@pytest.mark.parametrize(("shift", "ranks"), [(0.0, 2), (0.05, 1)])
def test_atoms_closer_than_a_tenth_of_an_angstrom_give_an_error_naming_them(files, shift, ranks):
    """An atom placed on (or 0.05 Å from) atom 1 of the 24-atom water box: an ERROR naming both
    atoms and their distance, not nan thermo with exit 0."""
    first = water_box(2)[0].position  # atom 1 of system.data (read_data keeps the order)
    script = CLOSE_ATOMS.format(x=first[0] + shift, y=first[1], z=first[2], model=files["lammps"])
    result = run_lammps(script, files["folder"], ranks=ranks, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    error_lines = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert error_lines, output[-2000:]
    assert f"atoms 1 and 25 are {shift:.3g} Å apart at step 0, closer than 0.1 Å" in error_lines[0].replace(
        "atoms 25 and 1", "atoms 1 and 25"
    ), error_lines[0]
    assert not any(" nan" in line.lower() for line in output.splitlines())  # no thermo of nan


MASSES = """
units metal
atom_style atomic
read_data system.data
pair_style mlffd {model}
pair_coeff * * H O
pair_coeff * * O H
run 0
mass 1 1.008
run 0
"""


def test_masses_that_are_not_the_mapped_elements_give_a_warning(files):
    """pair_coeff * * H O on a data file whose type 1 is O (15.999) and type 2 H (1.008): a WARNING
    naming both types and elements; the corrected mapping none; a mass changed after pair_coeff is
    checked when the run starts."""
    result = run_lammps(MASSES.format(model=files["lammps"]), files["folder"])
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING: pair_style mlffd")]
    assert len(warnings) == 2, warnings
    assert "type 1 (mass 15.999) is mapped to H (1.008); type 2 (mass 1.008) is mapped to O (15.999)" in warnings[0]
    assert "type 1 (mass 1.008) is mapped to O (15.999)" in warnings[1] and "type 2" not in warnings[1]
