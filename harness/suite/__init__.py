"""Regression suites: YAML lists of cases (a run configuration, seeded runs, expectations)
run one after another, judged against their expectations and a saved baseline.

    harness suite suites/reference.yaml [--store DIR] [--baseline DIR] [--save-baseline DIR]
    pytest --suite suites/reference.yaml

model.py parses and validates suites; runner.py runs a case's seeded runs; compare.py
aggregates them and judges expectations and baselines; index.py writes the index HTML;
cli.py is the `harness suite` command; pytest_items.py makes a case a pytest item.
"""
