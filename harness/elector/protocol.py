"""Messages between elector nodes and their wire format: one JSON object per line over TCP.

Every message carries its sender (`src`) and the sender's `term`, so the receiver can apply
Raft's term rules uniformly. Messages are one-way: a reply is a separate message sent back
over the replier's own connection. Decoding is strict (known kind, every field present with
the right type) because a confused peer must not be able to make a node act on garbage.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar

from harness.errors import HarnessError

MAX_LINE_BYTES = 64 * 1024


class ProtocolError(HarnessError, ValueError):
    """A line that is not a well-formed message."""


@dataclass(frozen=True)
class RequestVote:
    """A vote request; with `pre_vote` it asks "would you vote for me in `term`?" without
    anyone changing term; `transfer` is set when the old leader handed leadership over."""

    kind: ClassVar[str] = "request_vote"
    src: str
    term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True)
class VoteReply:
    kind: ClassVar[str] = "vote_reply"
    src: str
    term: int
    granted: bool
    pre_vote: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Heartbeat:
    """The leader's AppendEntries without entries; `sent_ns` is on the leader's own clock
    and is echoed back so the leader can time its lease from when it sent the round."""

    kind: ClassVar[str] = "heartbeat"
    src: str
    term: int
    sent_ns: int


@dataclass(frozen=True)
class HeartbeatReply:
    kind: ClassVar[str] = "heartbeat_reply"
    src: str
    term: int
    success: bool
    sent_ns: int


@dataclass(frozen=True)
class TimeoutNow:
    """A resigning leader asks a follower to campaign at once (Raft leadership transfer)."""

    kind: ClassVar[str] = "timeout_now"
    src: str
    term: int


Message = RequestVote | VoteReply | Heartbeat | HeartbeatReply | TimeoutNow

_KINDS: dict[str, type[Any]] = {
    cls.kind: cls for cls in (RequestVote, VoteReply, Heartbeat, HeartbeatReply, TimeoutNow)
}
_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool}


def encode(message: Message) -> bytes:
    body = {"kind": message.kind, **asdict(message)}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("expected a JSON object")
    cls = _KINDS.get(data.pop("kind", None))
    if cls is None:
        raise ProtocolError("unknown or missing 'kind'")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING:
                raise ProtocolError(f"{cls.kind}: missing field {f.name!r}")
            continue
        value = data.pop(f.name)
        expected = _TYPES[str(f.type)]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolError(f"{cls.kind}: field {f.name!r} must be {f.type}")
        values[f.name] = value
    if data:
        raise ProtocolError(f"{cls.kind}: unknown fields {sorted(data)}")
    if values["term"] < 0:
        raise ProtocolError(f"{cls.kind}: negative term")
    return cls(**values)
