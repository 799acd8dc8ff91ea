"""The candidates' settings (the `workload:` section of a run's YAML), validated.

`discipline` is `guarded` (stop acting at lease grant + TTL - margin, timed from when
the request was sent, checked before every write) or `naive` (act until told it lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.errors import ConfigError
from harness.validation import Reader

DISCIPLINES = ("guarded", "naive")


class SettingsError(ConfigError):
    """A bad workload setting: the message names the source, the key and what was expected."""


@dataclass(frozen=True)
class CandidateSettings:
    discipline: str = "guarded"
    write_interval_ms: int = 50
    lease_margin_ms: int = 50
    check_interval_ms: int = 100
    campaign_timeout_s: float = 2.0
    request_timeout_s: float = 1.0
    hold_s: tuple[float, float] = (2.0, 6.0)
    resign_probability: float = 0.5
    resign_backoff_s: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hold_s"] = list(self.hold_s)
        return data


def parse_candidate_settings(
    data: Mapping[str, Any] | None, source: str = "workload settings", where: str = "workload"
) -> CandidateSettings:
    """Validate the `workload:` mapping (None: all defaults); errors name `source` and the
    key under `where`."""
    r = Reader(data, source, f"{where}.", error=SettingsError)
    r.only([f.name for f in fields(CandidateSettings)])
    out: dict[str, Any] = {}
    if "discipline" in r:
        out["discipline"] = r.choice("discipline", None, DISCIPLINES)
    for key, low, high in (
        ("write_interval_ms", 1, 60_000),
        ("lease_margin_ms", 0, 60_000),
        ("check_interval_ms", 1, 60_000),
    ):
        if key in r:
            out[key] = r.integer(key, None, low, high)
    for key, flow, fhigh in (
        ("campaign_timeout_s", 0.05, 3600),
        ("request_timeout_s", 0.05, 600),
        ("resign_probability", 0.0, 1.0),
        ("resign_backoff_s", 0.0, 3600.0),
    ):
        if key in r:
            out[key] = r.number(key, None, flow, fhigh)
    if "hold_s" in r:
        out["hold_s"] = r.pair("hold_s", None, 0.0, 3600)
    return CandidateSettings(**out)
