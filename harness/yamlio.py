"""The one way the harness reads a YAML file: safe, and bounded in every direction.

Configurations and suites are small, hand-written files. What is not one is refused
with a `ConfigError` naming the file and the reason, before it can cost memory or time:

- not a regular file (a FIFO would block forever, `/dev/zero` never ends, a directory);
- larger than MAX_BYTES;
- not UTF-8, or not YAML (the message names the line);
- nested deeper than MAX_DEPTH (deeper nesting used to end in a RecursionError);
- aliases that expand the document beyond MAX_NODES values, or refer to themselves
  (a 478-byte "billion laughs" document used to cost 1.3 GB once anything walked it).

Expansion is counted while the document is composed, before any Python object exists:
each node's expanded size and depth are known once its children are, and an alias
costs the full size of the node it names. PyYAML is the only non-stdlib import, as in
the reference elector (Debian's python3-yaml is in node images).
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from harness.errors import ConfigError, HarnessError
from harness.validation import cut

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
MAX_NAME = 300  # characters of a file name shown in a message
MAX_NODES = 100_000  # values after expanding every alias (configurations have hundreds)


class _Refused(HarnessError):
    """Raised inside the loader; turned into a ConfigError naming the file and line."""

    def __init__(self, reason: str, mark: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting as it goes: the document's values after expanding
    aliases (refused beyond MAX_NODES, as soon as the count passes it) and each node's
    depth after expanding aliases (refused beyond MAX_DEPTH)."""

    # Given by the parser it is mixed with (PyYAML's Parser, or libyaml's CParser).
    check_event: Any
    peek_event: Any

    def _start_bounds(self) -> None:
        self._depth = 0  # composition depth (Python recursion), aliases not followed
        self._values = 0  # values so far, every alias counted as what it names
        self._aliases = False
        # id(node) -> (values, depth) after expanding aliases; nodes stay alive in the
        # tree while composing, so ids are not reused.
        self._expanded: dict[int, tuple[int, int]] = {}

    def _count(self, values: int, mark: Any) -> None:
        self._values += values
        if self._values > MAX_NODES:
            how = "its aliases expand it beyond" if self._aliases else "it has more than"
            raise _Refused(f"{how} {MAX_NODES} values", mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._expanded:  # its own composition is not finished
                raise _Refused("an alias refers to a node that contains it (recursive)", mark)
            self._aliases = True
            self._count(self._expanded[id(node)][0], mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
        self._count(1, mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = self._expanded[id(child)]
            size += child_size
            depth = max(depth, child_depth + 1)
        if depth > MAX_DEPTH:
            raise _Refused(f"its aliases nest it deeper than {MAX_DEPTH} levels", mark)
        self._expanded[id(node)] = (size, depth)
        return node


class PureBoundedLoader(
    _BoundedComposer,
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """A safe loader (no arbitrary objects) that refuses unbounded documents, all in
    Python: used where PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._start_bounds()

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The Python scanner's work per `[` grows with the flow depth: refuse while
        # scanning, before 20,000 nested brackets cost seconds.
        super().fetch_flow_collection_start(TokenClass)
        if self.flow_level > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.get_mark())


BoundedLoader: type[Any] = PureBoundedLoader
if yaml.__with_libyaml__:
    # libyaml scans and parses (fast, no recursion); composing stays in Python, where
    # the counting is. The Python scanner needs minutes for a dense 4 MiB file.
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class CBoundedLoader(
        _BoundedComposer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
    ):
        """A safe loader (no arbitrary objects) that refuses unbounded documents."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._start_bounds()

    BoundedLoader = CBoundedLoader


def read_text(source: str, what: str = "file") -> str:
    """A small regular file's text (UTF-8), refused with a ConfigError otherwise."""
    name = cut(source, MAX_NAME)  # a path from a YAML value may be any length
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a terminal
        # device named by mistake must not become our controlling terminal.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise ConfigError(f"{name}: cannot read: not a regular {what} ({kind})")
        if info.st_size > MAX_BYTES:
            raise ConfigError(
                f"{name}: refused: {info.st_size} bytes; a {what} may have at most "
                f"{MAX_BYTES} bytes"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:  # it grew after fstat
        raise ConfigError(f"{name}: refused: a {what} may have at most {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text: {exc.reason}") from None


def parse_yaml(text: str, source: str, loader_class: type[Any] | None = None) -> Any:
    """One YAML document from `text`, within the bounds above; None for an empty one."""
    name = cut(source, MAX_NAME)
    loader = (loader_class or BoundedLoader)(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ConfigError(f"{name}:{exc.mark.line + 1}: refused: {exc.reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {cut(problem)}") from None
    except (ValueError, OverflowError) as exc:
        # A scalar YAML accepts but Python cannot hold (an integer of 5000 digits).
        raise ConfigError(f"{name}: invalid YAML: {cut(str(exc))}") from None
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike[str], what: str = "file") -> Any:
    """Read and parse one YAML file, refusing anything unbounded (see the module doc)."""
    source = os.fspath(path)
    return parse_yaml(read_text(source, what), source)


__all__ = [
    "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "BoundedLoader", "PureBoundedLoader", "load_yaml",
    "parse_yaml",
]  # fmt: skip
