"""The sweep chunk kernel alone: 100 MACD combinations over a year of 1-minute EURUSD.

``run_chunk`` as the sweep job's steps call it (one chunk: the store read once, indicators
shared, ``backtest_metrics`` per combination), timed ``--repeats`` times in one process
after one untimed warm-up run; prints the best wall time, the best CPU time (user + system:
less sensitive to other processes on the machine than wall time), the page faults per run
and the load average, then a digest of the rows (the sum of the total returns and of the
fills) to check that two versions agree. Pair it with ``ab.py`` to compare commits:
see sweep_kernel.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # PYTHONPATH (ab.py) goes first

from benchmarks.peers import BIG_CASH, EPIC, GRID, YEAR, make_data  # noqa: E402
from btpipeline.data.store import CandleStore  # noqa: E402
from btpipeline.sweeps.chunks import run_chunk, split_chunks  # noqa: E402
from btpipeline.sweeps.spec import build_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="btp_kernel_") as tmp:
        root = Path(tmp) / "data"
        make_data(root)
        spec = build_spec(strategy="macd_crossover", epic=EPIC, start_date=f"{YEAR}-01-01",
                          end_date=f"{YEAR}-12-31", grid=GRID, costs={},
                          initial_capital=BIG_CASH, rank_by="total_return")
        [chunk] = split_chunks(spec.tasks, 1)
        rows, _ = run_chunk(chunk, CandleStore(root))  # warm-up: imports, first allocations
        wall, cpu, faults = [], [], []
        for _ in range(args.repeats):
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            rows, _ = run_chunk(chunk, CandleStore(root))
            wall.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            faults.append(after.ru_minflt - before.ru_minflt)
    returns = sum(float(r["total_return"]) for r in rows)
    fills = sum(int(r["fills"]) for r in rows)
    digest = hashlib.sha256(repr([(r["fills"], round(float(r["total_return"]), 12))
                                  for r in rows]).encode()).hexdigest()[:12]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"combinations {len(rows)}  wall best {min(wall):.3f} s  cpu best {min(cpu):.3f} s  "
          f"page faults/run {min(faults):,}  load average {load}")
    print(f"rows: sum total_return {returns:.12f}  fills {fills:,}  digest {digest}")


if __name__ == "__main__":
    main()
