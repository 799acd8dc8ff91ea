"""Benchmark: seconds to read and check generated valid histories of 100k and 1M events.

Goal (issue 2): 1M events in <= 5 s on the project's 2-core machine, 2 s the ambition,
growth close to linear. Prints one line per size and the growth factor.

    python bench/checker.py [--sizes 100000,1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import orjson

from harness.checker import check_file
from harness.history.synth import correct_history


def write_history(path: Path, events: int, seed: int) -> int:
    # About 27 events per leadership with 8 writes each; trim to the exact size.
    records = correct_history(
        random.Random(seed), leaderships=events // 27 + 1, writes_per_leadership=8
    )
    records = records[:events]
    # Trimming may cut an operation in half; drop trailing invokes' orphans by keeping
    # the prefix, which is still well-formed (an open invoke at the end is allowed).
    with path.open("wb") as fh:
        fh.writelines(orjson.dumps(r) + b"\n" for r in records)
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"history-{size}.jsonl"
            count = write_history(path, size, seed=size)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                verdict = check_file(path)
                best = min(best, time.perf_counter() - start)
            if verdict["valid"] is not True:
                raise SystemExit(f"generated history of {count} events was not valid: {verdict}")
            results.append((count, best))
            print(f"{count:>9} events: {best:.2f} s (best of {args.repeat})", flush=True)
    if len(results) >= 2:
        (n0, t0), (n1, t1) = results[0], results[-1]
        print(f"growth: x{t1 / t0:.1f} time for x{n1 / n0:.0f} events")


if __name__ == "__main__":
    main()
