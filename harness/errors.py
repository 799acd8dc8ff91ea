"""The harness's exception root: every error the package raises on purpose derives from
`HarnessError`, so a caller (the command line, a plugin, a team's script) can tell "the
harness refused or failed, and the message says why" from a bug.

Configuration mistakes (a bad file, key, value or option) are `ConfigError`, which is
also a `ValueError` (Hypothesis's style: the error is about a value the user gave, and
code written against `ValueError` keeps working). The command line turns both into one
line on stderr and exit status 2 (harness/exitcodes.py).

Standard library only: the reference elector on a node imports this too.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Something the harness refused or could not do; the message is the explanation."""


class ConfigError(HarnessError, ValueError):
    """A bad configuration, suite, option or setting: the message names where (file and
    key, or option) and what was expected."""


__all__ = ["ConfigError", "HarnessError"]
