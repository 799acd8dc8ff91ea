"""Workloads: what candidate processes do (campaign, hold, leader-only work, resign)."""
