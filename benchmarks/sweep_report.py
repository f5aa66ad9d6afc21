"""The sweep section of peers.py: each engine in its own process (benchmarks/sweep_runs.py),
its process tree's RSS sampled every 0.1 s with psutil (peak of the tree's sum, and of the
largest single process: a worker's), results compared with the chunk kernel's."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

RUNNER = Path(__file__).resolve().parent / "sweep_runs.py"
MB = 2**20


@dataclass(frozen=True)
class Measured:
    name: str
    out: dict[str, Any]
    wall_s: float
    peak_tree_mb: float
    peak_process_mb: float
    load: tuple[float, float, float]


def _tree_rss(root: psutil.Process) -> tuple[float, float]:
    """(sum, max) RSS in MB of ``root`` and all its descendants right now."""
    rss = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            rss.append(proc.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sum(rss) / MB, max(rss, default=0) / MB


def measure(name: str, engine: str, data_root: Path, *options: str) -> Measured:
    """Run one engine in a child process and sample its tree's RSS until it exits."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out_path = Path(handle.name)
    env = {**os.environ, "PYTHONPATH": str(RUNNER.parent.parent)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(RUNNER), engine, str(data_root),
                             str(out_path), *options], env=env)
    root = psutil.Process(proc.pid)
    peak_tree = peak_one = 0.0
    while proc.poll() is None:
        try:
            total, largest = _tree_rss(root)
        except psutil.NoSuchProcess:
            break
        peak_tree, peak_one = max(peak_tree, total), max(peak_one, largest)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if proc.wait() != 0:
        raise RuntimeError(f"{name}: {engine} exited with {proc.returncode}")
    out = json.loads(out_path.read_text())
    out_path.unlink()
    return Measured(name, out, wall, peak_tree, peak_one, os.getloadavg())


def agreement(got: list, ref: list) -> str:
    """Same trade count / max |Δ return| (pp) against the reference, per combination."""
    same = sum(g[0] == r[0] for g, r in zip(got, ref, strict=True))
    worst = max(abs(g[1] - r[1]) * 100 for g, r in zip(got, ref, strict=True))
    return f"{same}/{len(ref)} same trades, max Δ return {worst:.1e} pp"


def _row(m: Measured, vbt_s: float, note: str) -> str:
    factor = vbt_s / m.out["seconds"] if vbt_s else 0.0
    speed = f"{factor:.1f}x" if factor >= 1 else f"{factor:.2f}x ({1 / factor:.0f}x slower)"
    return (f"| {m.name} | {m.out['seconds']:.1f} s | {speed} | {m.peak_tree_mb:,.0f} MB | "
            f"{m.peak_process_mb:,.0f} MB | {' / '.join(f'{x:.1f}' for x in m.load)} | "
            f"{note} |")


def sweep_report(args: argparse.Namespace, data_root: Path) -> None:
    workers = str(args.workers)
    kernel = measure("chunk kernel (no Dagster, 1 process)", "kernel", data_root)
    dagster = measure(f"sweep_job, {workers} workers, end to end", "dagster", data_root,
                      "--workers", workers)
    vbt = measure("vectorbt broadcast (100 columns)", "vbt", data_root)
    bt = measure("backtesting.py optimize", "bt", data_root, "--bt-combos",
                 str(args.bt_sweep_combos))
    ref = kernel.out["outcomes"]
    print("\n### 100-combination sweep, side by side (each in its own process)\n")
    print("| engine | time | speed vs vectorbt | peak RSS, process tree | peak RSS, largest "
          "process | load avg at end (1/5/15 min) | notes |")
    print("|---|---|---|---|---|---|---|")
    vbt_s = vbt.out["seconds"]
    print(_row(dagster, vbt_s, f"{dagster.out['steps']} steps; "
               + agreement(dagster.out["outcomes"], ref)))
    print(_row(kernel, vbt_s, "reference"))
    print(_row(vbt, vbt_s, f"warm (numba compiled first, {vbt.out['jit_seconds']:.1f} s, not "
               "timed); " + agreement(vbt.out["outcomes"], ref)))
    print(_row(bt, vbt_s, f"ran {bt.out['ran']} combinations in "
               f"{bt.out['measured_seconds']:.1f} s, time extrapolated to 100; "
               f"{os.cpu_count()} processes"))
    if not args.skip_10k:
        big_report(args, data_root)


def big_report(args: argparse.Namespace, data_root: Path) -> None:
    workers = str(args.workers)
    dagster = measure(f"sweep_job, {workers} workers, end to end", "dagster", data_root,
                      "--workers", workers, "--size", "10000")
    vbt = measure("vectorbt, hand-chunked by 100 columns", "vbt", data_root, "--size", "10000",
                  "--vbt-max-chunks", str(args.vbt_10k_max_chunks))
    ran = vbt.out["chunks_run"]
    ref = dagster.out["outcomes"][: len(vbt.out["outcomes"])]
    note = (f"ran {ran} of {vbt.out['chunks']} chunks in {vbt.out['measured_seconds']:.1f} s, "
            "time extrapolated" if ran < vbt.out["chunks"] else "all chunks ran")
    note += f", warm (numba compile {vbt.out.get('jit_seconds', 0):.1f} s not timed)"
    print("\n### 10,000-combination sweep (fast 2..26 x slow 30..49 x signal 3..22)\n")
    print("| engine | time | speed vs vectorbt | peak RSS, process tree | peak RSS, largest "
          "process | load avg at end (1/5/15 min) | notes |")
    print("|---|---|---|---|---|---|---|")
    print(_row(dagster, vbt.out["seconds"], f"{dagster.out['steps']} steps"))
    print(_row(vbt, vbt.out["seconds"], f"{note}; " + agreement(vbt.out["outcomes"], ref)))
