"""Where the time of one ``sweep_job`` run goes, end to end, from Dagster's own event log.

``python benchmarks/sweep_breakdown.py run DATA_ROOT [--workers 2] [--events] [--json OUT]``
runs the 100-combination MACD grid of ``benchmarks/peers.py`` (one year of 1-minute EURUSD in
the candle store at DATA_ROOT, e.g. written by ``btpipeline generate --epics EURUSD --start
2023-01-01 --end 2023-12-31 --seed 7 --data-dir DATA_ROOT``) through ``execute_job`` on a fresh
instance configured like the project's (``dagster.yaml``, SQLite results database) in this
process, then prints its timeline:

* ``import``: importing dagster and ``btpipeline.definitions`` (the process's start-up);
* ``instance``: opening the instance; ``run_create``: ``execute_job`` up to RUN_START;
* ``executor_start``: RUN_START to the first STEP_START (plan, executor, forkserver, workers);
* one line per step: its STEP_START..STEP_SUCCESS, and for a chunk its read and compute time
  (its output metadata);
* ``teardown``: the last step's end to RUN_SUCCESS, and ``return``: to ``execute_job``'s
  return (the workers' and forkserver's shutdown).

``python benchmarks/sweep_breakdown.py ab DATA_ROOT --base OTHER_CHECKOUT [--rounds 3]`` runs
``run`` alternately with ``PYTHONPATH`` pointing at OTHER_CHECKOUT and at this repository, each
in a fresh Python process, and prints the end-to-end seconds of each side and the load average.
The script imports nothing from ``benchmarks/``, so the same copy runs against either side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
EPIC, YEAR, BIG_CASH = "EURUSD", 2023, 10_000_000.0
GRID = {"fast": [6, 8, 10, 12, 14], "slow": [20, 26, 32, 38, 44], "signal": [5, 7, 9, 11]}
REPO = Path(__file__).resolve().parent.parent


def _config(data_root: Path, home: Path, workers: int) -> dict[str, Any]:
    return {
        "ops": {"plan_sweep": {"config": {
            "strategy": "macd_crossover", "epic": EPIC, "start_date": f"{YEAR}-01-01",
            "end_date": f"{YEAR}-12-31", "grid": GRID, "rank_by": "total_return",
            "initial_capital": BIG_CASH, "sweep_id": "bench-100",
            "report_dir": str(home / "reports")}}},
        "resources": {"market_data": {"config": {"root": str(data_root)}},
                      "results_db": {"config": {"url": f"sqlite:///{home / 'results.db'}"}}},
        "execution": {"config": {"max_concurrent_backtests": workers,
                                 "execution_mode": "STANDALONE"}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }


def _timeline(records: list[Any], t_run: float) -> list[tuple[str, float, float]]:
    """(label, start, end) seconds after ``t_run`` (the wall clock when execute_job began)."""
    rows: list[tuple[str, float, float]] = []
    starts: dict[str, float] = {}
    run_start = first_step = last_step = None
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        at = record.timestamp - t_run
        kind = event.event_type.name
        if kind == "RUN_START":
            run_start = at
            rows.append(("run_create", 0.0, at))
        elif kind == "STEP_START":
            starts[event.step_key] = at
            first_step = at if first_step is None else first_step
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY"):
            rows.append((event.step_key, starts.get(event.step_key, at), at))
            last_step = at
        elif kind in ("RUN_SUCCESS", "RUN_FAILURE"):
            if last_step is not None:
                rows.append(("teardown", last_step, at))
            rows.append(("run_end", 0.0, at))
    if run_start is not None and first_step is not None:
        rows.insert(1, ("executor_start", run_start, first_step))
    return rows


def _chunk_figures(records: list[Any]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for record in records:
        event = record.dagster_event
        if event is None or event.event_type_value != "STEP_OUTPUT":
            continue
        metadata = event.event_specific_data.metadata or {}
        if "compute_ms" in metadata:
            figures[event.step_key] = {k: float(metadata[k].value)
                                       for k in ("read_ms", "compute_ms") if k in metadata}
    return figures


def run(data_root: Path, workers: int) -> dict[str, Any]:
    import dagster
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import sweep_job_def

    imported = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="btp_sweep_breakdown_"))
    try:
        home = scratch / "home"
        home.mkdir()
        package_root = Path(sys.modules["btpipeline"].__file__ or "").resolve().parent.parent
        shutil.copy(package_root / "dagster.yaml", home / "dagster.yaml")
        config = _config(data_root, home, workers)
        with DagsterInstance.from_config(str(home)) as instance:
            opened = time.perf_counter()
            t_run = time.time()
            with execute_job(reconstructable(sweep_job_def), instance=instance,
                             run_config=config) as result:
                returned = time.time() - t_run
                ok = result.success
                run_id = result.run_id
            records = list(instance.all_logs(run_id))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = _timeline(records, t_run)
    return {"ok": ok, "dagster": dagster.__version__, "import_s": imported - STARTED,
            "instance_s": opened - imported, "execute_s": returned,
            "end_to_end_s": imported - STARTED + opened - imported + returned,
            "events": len(records), "timeline": rows,
            "event_log": [(r.timestamp - t_run, r.dagster_event.event_type.name
                           if r.dagster_event else "LOG", r.step_key or "",
                           (r.user_message or "")[:90]) for r in records],
            "chunks": _chunk_figures(records)}


def show(out: dict[str, Any]) -> None:
    print(f"ok={out['ok']} events={out['events']} import {out['import_s']:.2f} s, instance "
          f"{out['instance_s']:.2f} s, execute_job {out['execute_s']:.2f} s, end to end "
          f"{out['end_to_end_s']:.2f} s")
    for label, start, end in out["timeline"]:
        extra = out["chunks"].get(label)
        more = (f"  read {extra['read_ms']:.0f} ms, compute {extra['compute_ms']:.0f} ms"
                if extra else "")
        print(f"  {label:<34} {start:7.2f} .. {end:7.2f}  ({end - start:5.2f} s){more}")
    print(f"  {'return (workers shut down)':<34} {'':>7}    {out['execute_s']:7.2f}")


def show_events(out: dict[str, Any]) -> None:
    for at, kind, step, message in out["event_log"]:
        print(f"  {at:7.3f} {kind:<24} {step:<34} {message}")


def phases(out: dict[str, Any]) -> dict[str, float]:
    """The run's phases in seconds: ``executor_start`` (RUN_START to the first step),
    ``chunks`` (first chunk start to last chunk end), ``kernel`` (the longest chunk's read +
    compute), ``overhead`` (execute_job minus ``kernel``: everything Dagster adds)."""
    spans = {label: (start, end) for label, start, end in out["timeline"]}
    chunk_spans = [v for k, v in spans.items() if k.startswith("backtest_chunk")]
    kernel = max((f.get("read_ms", 0.0) + f.get("compute_ms", 0.0)) / 1e3
                 for f in out["chunks"].values()) if out["chunks"] else 0.0
    executor = spans.get("executor_start", (0.0, 0.0))
    chunks = (max(e for _, e in chunk_spans) - min(s for s, _ in chunk_spans)
              if chunk_spans else 0.0)
    return {"executor_start": executor[1] - executor[0], "chunks": chunks, "kernel": kernel,
            "overhead": out["execute_s"] - kernel}


def _side(checkout: Path, data_root: Path, workers: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "run", str(data_root),
             "--workers", str(workers), "--json", handle.name],
            env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=checkout,
            capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{checkout}: exit {done.returncode}\n{done.stderr[-3000:]}")
        out = json.loads(Path(handle.name).read_text())
    out["process_s"] = wall
    return out


def ab(data_root: Path, base: Path, rounds: int, workers: int) -> None:
    sides = {"base": base.resolve(), "this": REPO}
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for index in range(rounds):
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for name in order:
            load = os.getloadavg()
            out = _side(sides[name], data_root, workers)
            seen[name].append(out)
            parts = phases(out)
            print(f"round {index + 1} {name:<4}: process {out['process_s']:.2f} s, execute_job "
                  f"{out['execute_s']:.2f} s (executor start {parts['executor_start']:.2f}, "
                  f"chunks {parts['chunks']:.2f}, longest chunk kernel {parts['kernel']:.2f}, "
                  f"overhead {parts['overhead']:.2f}), import {out['import_s']:.2f} s "
                  f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)
    for name, outs in seen.items():
        process = sorted(o["process_s"] for o in outs)
        execute = sorted(o["execute_s"] for o in outs)
        overhead = sorted(phases(o)["overhead"] for o in outs)
        print(f"{name} ({sides[name]}): process median {process[len(process) // 2]:.2f} s "
              f"(min {process[0]:.2f}), execute_job median {execute[len(execute) // 2]:.2f} s "
              f"(min {execute[0]:.2f}), overhead median {overhead[len(overhead) // 2]:.2f} s "
              f"(min {overhead[0]:.2f})")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "ab"])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--base", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", action="store_true", help="also print every event")
    args = parser.parse_args()
    if args.command == "ab":
        if args.base is None:
            raise SystemExit("ab needs --base OTHER_CHECKOUT (a checkout of btpipeline).")
        ab(args.data_root, args.base, args.rounds, args.workers)
        return
    import warnings

    warnings.filterwarnings("ignore")
    out = run(args.data_root, args.workers)
    if args.json:
        args.json.write_text(json.dumps(out))
    else:
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        show(out)
        if args.events:
            show_events(out)


if __name__ == "__main__":
    main()
