"""Nemeses: faults with start and heal (partition, pause, kill, clock)."""
