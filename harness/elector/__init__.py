"""The project's own reference elector: a small Raft-style leader election (terms, majority
votes, heartbeats, pre-vote, check-quorum, leader stickiness and a clock-aware leader lease)
with a local HTTP API for the candidate process on the same node. Standard library only,
plus PyYAML for the configuration file, so it runs with Debian's python3 in node images.
Run it with `python -m harness.elector`; see README.md in this directory.
"""
