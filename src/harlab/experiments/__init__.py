"""Experiments: configurations trained repeatedly with different seeds, and their results files."""
