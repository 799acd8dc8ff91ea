"""The candidates' settings (the `workload:` section of a run's YAML), validated.

`discipline` is `guarded` (stop acting at lease grant + TTL - margin, timed from when
the request was sent, checked before every write) or `naive` (act until told it lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

DISCIPLINES = ("guarded", "naive")


class SettingsError(ValueError):
    """A bad setting: the message names the key and what was expected."""


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


def _number(key: str, value: Any, low: float, high: float, integer: bool = False) -> float:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"key {key!r}: expected {kind} from {low:g} to {high:g}, got {value!r}")
    return value


def parse_candidate_settings(
    data: Mapping[str, Any] | None, where: str = "workload"
) -> CandidateSettings:
    data = dict(data or {})
    known = {f.name for f in fields(CandidateSettings)}
    for key in data:
        if key not in known:
            raise SettingsError(
                f"key '{where}.{key}': unknown; expected one of {', '.join(sorted(known))}"
            )
    out: dict[str, Any] = {}
    if "discipline" in data:
        if data["discipline"] not in DISCIPLINES:
            raise SettingsError(
                f"key '{where}.discipline': expected one of {', '.join(DISCIPLINES)}, "
                f"got {data['discipline']!r}"
            )
        out["discipline"] = data["discipline"]
    for key, low, high in (
        ("write_interval_ms", 1, 60_000),
        ("lease_margin_ms", 0, 60_000),
        ("check_interval_ms", 1, 60_000),
    ):
        if key in data:
            out[key] = int(_number(f"{where}.{key}", data[key], low, high, integer=True))
    for key, low, high in (
        ("campaign_timeout_s", 0.05, 3600),
        ("request_timeout_s", 0.05, 600),
        ("resign_probability", 0.0, 1.0),
        ("resign_backoff_s", 0.0, 3600),
    ):
        if key in data:
            out[key] = float(_number(f"{where}.{key}", data[key], low, high))
    if "hold_s" in data:
        hold = data["hold_s"]
        if not isinstance(hold, list | tuple) or len(hold) != 2:
            raise SettingsError(f"key '{where}.hold_s': expected [min, max] seconds, got {hold!r}")
        low = float(_number(f"{where}.hold_s[0]", hold[0], 0.0, 3600))
        high = float(_number(f"{where}.hold_s[1]", hold[1], low, 3600))
        out["hold_s"] = (low, high)
    return CandidateSettings(**out)
