"""Regression suites: YAML lists of cases (a run configuration, seeded runs, expectations)
run one after another or side by side, judged against their expectations and a saved
baseline; split across machines and merged.

    harness suite suites/reference.yaml [--store DIR] [--baseline DIR] [--save-baseline DIR]
                  [--jobs N|auto] [--shard K/N]
    harness suite merge DIR...
    pytest --suite suites/reference.yaml [-n N] [--suite-shard K/N]

model.py parses and validates suites; runner.py runs a case's seeded runs (jobs.py and
worker.py: side by side, each in a child process); shard.py splits and merges; compare.py
aggregates them and judges expectations and baselines; index.py writes the index HTML;
cli.py is the `harness suite` command; pytest_items.py makes a case a pytest item.
"""
