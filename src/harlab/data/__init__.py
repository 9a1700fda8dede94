"""Datasets → WindowSet: download, parse, verify, cache, and the UCI HAR signal pipeline."""
