"""Shrinking: from a failing run to the smallest schedule that still fails (harness shrink)."""
