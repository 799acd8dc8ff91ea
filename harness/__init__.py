"""Fault-injection harness for leader-election systems."""
