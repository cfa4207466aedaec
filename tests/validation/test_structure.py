"""Pair distributions against independent computations: numpy (molecules) and MDAnalysis InterRDF (periodic)."""

import MDAnalysis as mda
import numpy as np
import pytest
from kit import EXACT, RECOMPUTED, TEXT_DIGITS
from MDAnalysis.analysis.rdf import InterRDF
from MDAnalysisTests.datafiles import DCD, PSF
from scipy.spatial.distance import pdist
from validation_systems import lj_fluid_run

from mlff_distiller.errors import TrajectoryError
from mlff_distiller.validation import PairDistribution, StructureComparison, distribution_error


@pytest.fixture(scope="module")
def adk():
    return mda.Universe(PSF, DCD)


def test_molecular_h_of_r_equals_numpy(adk):
    calpha = adk.select_atoms("name CA")
    h = PairDistribution(calpha, r_max=12.0, n_bins=48).run(stop=10).results
    edges = np.linspace(0, 12.0, 49)
    counts = np.zeros(48)
    for _ in adk.trajectory[:10]:
        counts += np.histogram(pdist(calpha.positions.astype(np.float64)), bins=edges)[0]
    expected = counts / (counts.sum() * 0.25)
    np.testing.assert_allclose(h.g, expected, rtol=TEXT_DIGITS, atol=RECOMPUTED)
    assert not h.periodic
    assert np.sum(h.g * 0.25) == pytest.approx(1.0)


def test_comparison_of_a_trajectory_with_itself_and_with_its_other_half(adk):
    calpha = adk.select_atoms("name CA")
    reference = mda.Universe(PSF, DCD).select_atoms("name CA")
    same = StructureComparison(calpha, reference, r_max=12.0).run()
    assert same.results.error == pytest.approx(0.0, abs=EXACT)
    # the first 20 frames against the whole run: the protein moves, so the structures differ a little
    part = StructureComparison(calpha, reference, r_max=12.0).run(stop=20)
    assert 0.0 < part.results.error < 0.5
    g, g_ref, r = part.results.g, part.results.g_reference, part.results.r
    assert part.results.error == pytest.approx(np.sum(np.abs(g_ref - g)) * (r[1] - r[0]), rel=RECOMPUTED)


def test_periodic_rdf_matches_mdanalysis_interrdf(tmp_path):
    run = lj_fluid_run(tmp_path, timestep_fs=10.0, steps=400, report_every=20)
    universe = mda.Universe(str(run["pdb"]), str(run["dcd"]))
    ours = PairDistribution(universe.atoms, r_max=8.0, n_bins=40).run().results
    theirs = InterRDF(universe.atoms, universe.atoms, nbins=40, range=(0.0, 8.0), exclusion_block=(1, 1)).run().results
    assert ours.periodic
    np.testing.assert_allclose(ours.g, theirs.rdf, rtol=TEXT_DIGITS, atol=RECOMPUTED)
    reference = mda.Universe(str(run["pdb"]), str(run["dcd"]))
    comparison = StructureComparison(universe.atoms, reference.atoms, r_max=8.0, n_bins=40).run(start=10)
    expected = distribution_error(ours.r, comparison.results.g, ours.g, True)
    assert comparison.results.error == pytest.approx(expected)
    assert 0.0 < comparison.results.error < 0.5


def test_comparing_different_systems_is_refused(adk):
    with pytest.raises(TrajectoryError, match="atoms"):
        StructureComparison(adk.select_atoms("name CA"), adk.atoms)
