"""Metrics and statistics over finished runs."""
