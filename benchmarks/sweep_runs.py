"""The sweep measurements of peers.py, each in its own process so that its peak RSS (the
process and every child, sampled with psutil) is its own: the 100-combination grid through
``sweep_job`` (end to end, Dagster's run start included), through the chunk kernel without
Dagster, vectorbt's broadcast run and backtesting.py's optimize; and a 10,000-combination
grid through ``sweep_job`` and through vectorbt (hand-chunked: 10,000 columns of a year of
1-minute bars do not fit in memory).

``python benchmarks/sweep_runs.py ENGINE DATA_ROOT OUT_JSON [options]`` runs one engine;
peers.py starts these and reads OUT_JSON. Every engine reports per combination (in grid
order) the closed trades and total return, and its wall time.
"""

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers import (  # noqa: E402
    BIG_CASH,
    CAPITAL,
    EPIC,
    GRID,
    REPO,
    YEAR,
    bt_sweep,
    ohlc_frame,
    vbt_run,
    vbt_targets_own_macd,
    year_ns,
)
from btpipeline.data.store import CandleStore  # noqa: E402

GRID_10K = {"fast": list(range(2, 27)), "slow": list(range(30, 50)),
            "signal": list(range(3, 23))}  # 25 x 20 x 20, every fast < slow


def grid_for(size: int) -> dict[str, list[int]]:
    return GRID if size == 100 else GRID_10K


def combos(grid: dict[str, list[int]]) -> list[tuple[int, ...]]:
    return list(itertools.product(*grid.values()))


def run_dagster(data_root: Path, grid: dict[str, list[int]], workers: int) -> dict[str, Any]:
    """``sweep_job`` through execute_job on an instance configured like the project's."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.definitions import sweep_job_def

    home = Path(tempfile.mkdtemp(prefix="btp_sweep_home_", dir=data_root.parent))
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml's storage folder is read from it
    config = {
        "ops": {"plan_sweep": {"config": {
            "strategy": "macd_crossover", "epic": EPIC, "start_date": f"{YEAR}-01-01",
            "end_date": f"{YEAR}-12-31", "grid": grid, "rank_by": "total_return",
            "initial_capital": BIG_CASH, "sweep_id": f"bench-{len(combos(grid))}",
            "report_dir": str(home / "reports")}}},
        "resources": {"market_data": {"config": {"root": str(data_root)}},
                      "results_db": {"config": {"url": f"sqlite:///{home / 'results.db'}"}}},
        "execution": {"config": {"max_concurrent_backtests": workers,
                                 "execution_mode": "STANDALONE"}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    with DagsterInstance.from_config(str(home)) as instance:
        started = time.perf_counter()
        with execute_job(reconstructable(sweep_job_def), instance=instance,
                         run_config=config) as result:
            elapsed = time.perf_counter() - started
            table = result.output_for_node("rank_sweep")
            steps = len([e for e in result.all_events if e.is_step_success])
    by_key = {tuple(int(r[k]) for k in grid): (int(r["num_trades"]), r["pnl"] / CAPITAL)
              for r in table.to_dict("records")}
    return {"seconds": elapsed, "steps": steps,
            "outcomes": [by_key[c] for c in combos(grid)]}


def run_kernel(data_root: Path, grid: dict[str, list[int]]) -> dict[str, Any]:
    """The chunk kernel without Dagster: one chunk, the store read once, shared indicators."""
    from btpipeline.sweeps.chunks import run_chunk, split_chunks
    from btpipeline.sweeps.spec import build_spec

    started = time.perf_counter()
    spec = build_spec(strategy="macd_crossover", epic=EPIC, start_date=f"{YEAR}-01-01",
                      end_date=f"{YEAR}-12-31", grid=grid, costs={},
                      initial_capital=BIG_CASH, rank_by="total_return")
    [chunk] = split_chunks(spec.tasks, 1)
    rows, _ = run_chunk(chunk, CandleStore(data_root))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed,
            "outcomes": [(int(r["num_trades"]), r["pnl"] / CAPITAL) for r in rows]}


def run_vbt(data_root: Path, grid: dict[str, list[int]], columns: int,
            max_chunks: int) -> dict[str, Any]:
    """vectorbt's broadcast run, ``columns`` combinations at a time (all at once for 100);
    ``max_chunks`` > 0 stops after that many chunks and extrapolates the time."""
    frame = ohlc_frame(CandleStore(data_root).read_range(EPIC, *year_ns()))
    fast, slow, signal = grid["fast"], grid["slow"], grid["signal"]
    every = combos(grid)
    chunks = [every[i:i + columns] for i in range(0, len(every), columns)]
    ran = chunks[:max_chunks] if max_chunks > 0 else chunks
    outcomes: list[tuple[int, float]] = []
    started = time.perf_counter()  # numba compiles on first use: on 2,000 bars, not timed
    vbt_run(frame.iloc[:2_000], vbt_targets_own_macd(frame["Close"].iloc[:2_000], [12, 13],
                                                     [26, 27], [9, 10]))
    jit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for chunk in ran:
        if len(chunk) == len(every):  # the whole grid: vectorbt's own product
            targets = vbt_targets_own_macd(frame["Close"], fast, slow, signal, product=True)
        else:
            targets = vbt_targets_own_macd(frame["Close"], [c[0] for c in chunk],
                                           [c[1] for c in chunk], [c[2] for c in chunk])
        outcomes += [(o.trades, o.total_return) for o in vbt_run(frame, targets)]
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed * len(chunks) / len(ran), "measured_seconds": elapsed,
            "jit_seconds": jit_seconds,
            "chunks_run": len(ran), "chunks": len(chunks), "columns": columns,
            "outcomes": outcomes}


def run_bt(data_root: Path, grid: dict[str, list[int]], count: int) -> dict[str, Any]:
    frame = ohlc_frame(CandleStore(data_root).read_range(EPIC, *year_ns()))
    subset = [dict(zip(grid, c, strict=True)) for c in combos(grid)[:count]]
    started = time.perf_counter()
    returns = bt_sweep(frame, subset)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed * len(combos(grid)) / len(subset), "measured_seconds": elapsed,
            "ran": len(subset), "returns": {",".join(map(str, k)): v for k, v in returns.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["dagster", "kernel", "vbt", "bt"])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, choices=[100, 10_000], default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vbt-columns", type=int, default=100)
    parser.add_argument("--vbt-max-chunks", type=int, default=0)
    parser.add_argument("--bt-combos", type=int, default=8)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    grid = grid_for(args.size)
    if args.engine == "dagster":
        out = run_dagster(args.data_root, grid, args.workers)
    elif args.engine == "kernel":
        out = run_kernel(args.data_root, grid)
    elif args.engine == "vbt":
        out = run_vbt(args.data_root, grid, args.vbt_columns, args.vbt_max_chunks)
    else:
        out = run_bt(args.data_root, grid, args.bt_combos)
    args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
