"""Wiring of stages: the demo run."""
