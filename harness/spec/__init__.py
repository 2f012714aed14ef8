"""Experiment specs: the typed, validated dataclasses an experiment file declares, loading them, and profiles."""
