"""Benchmark: how fast, and with how much memory, the one YAML loader refuses hostile
input (issue 15): the 478-byte alias bomb, 20,000 nested brackets, a 4 MiB flat list,
and how long a real configuration takes to load, for comparison.

Prints one line per input: the median wall time over --repeat loads, the peak of Python
allocations (tracemalloc) during one load, and the first words of the refusal. Timing
figures are noisy on a shared machine; the peak memory is not.

    python bench/yaml_bounds.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from harness.errors import ConfigError
from harness.yamlio import MAX_BYTES, parse_yaml

ROOT = Path(__file__).resolve().parents[1]

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def inputs() -> dict[str, str]:
    flat = "[" + "1," * ((MAX_BYTES - 2) // 2) + "1]"
    return {
        f"alias bomb ({len(BOMB)} bytes)": BOMB,
        "20,000 nested [": "[" * 20_000 + "]" * 20_000,
        f"flat list ({len(flat) // 1024} KiB)": flat,
        "configs/etcd/guarded.yaml": (ROOT / "configs/etcd/guarded.yaml").read_text(),
        "suites/reference.yaml": (ROOT / "suites/reference.yaml").read_text(),
    }


def outcome(load: Callable[[], object]) -> str:
    try:
        load()
    except ConfigError as exc:
        return str(exc).split(": ", 1)[-1][:60]
    return "loaded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'input':34} {'median ms':>10} {'peak MiB':>9}  outcome  (n={args.repeat})")
    for name, text in inputs().items():
        load = lambda text=text: parse_yaml(text, "doc.yaml")  # noqa: E731
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = outcome(load)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        outcome(load)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:34} {statistics.median(times) * 1000:10.1f} {peak / 2**20:9.1f}  {result}")


if __name__ == "__main__":
    main()
