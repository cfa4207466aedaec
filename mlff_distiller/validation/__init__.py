"""Trajectory validation: MDAnalysis analyses of drift, force fidelity, stability and structure; reports."""
