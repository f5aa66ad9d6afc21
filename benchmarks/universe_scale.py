"""How the code location scales with the universe file: definitions load time and ``dagster
dev`` readiness for 28 instruments x 12 variants (336 backtest assets) beside the shipped grid
(6 x 4 = 24).

For each universe (the shipped ``universe.yaml``, and a generated one in a temporary folder):

* ``load``: a fresh ``python -c`` that imports ``btpipeline.definitions`` (which reads and
  validates the file, checks every strategy and builds the definitions) and resolves the asset
  graph; wall time of the whole process, and of the import + build inside it, median of
  ``--repeats``; ``build only``: a second ``build_definitions()`` in the same process (the
  modules imported already: what the universe's size costs).
* ``dev ready``: ``python -m dagster dev`` on a free local port with its own DAGSTER_HOME, from
  start until the webserver lists every asset over GraphQL (one sample: it is heavy).

The generated instruments are index-like CFDs quoted in USD (``IDX01``..``IDX28``), so one USD
account fits every variant on every instrument. Run: ``python benchmarks/universe_scale.py``.

``--storage --baseline DIR [--years N] [--pg-url URL]`` measures the results storage instead:
N years of the 24 built-in assets computed and written through ``ResultsDatabase`` by this
checkout (fill blocks) and by the checkout at DIR (the earlier one-row-per-fill layout), each in
its own process with its own ``PYTHONPATH``; bytes per fill (SQLite file after VACUUM, or
PostgreSQL's ``pg_total_relation_size`` of the schema's tables) and write vs compute time per
asset (see ``storage_main``).
``--backfill`` measures instead one year (2023) of every backtest asset as ONE single-run
backfill on ``backtest_executor`` (``--workers``, default 2), for the shipped universe and the
generated one (positions of 1 contract), each in a child process with its own instance (the
shipped dagster.yaml; ``--event-log dagster`` drops its ``storage:`` block to compare with
Dagster's own SQLite storage) and results database, after a small warm-up backfill. The run's
wall time is split from its event log (run creation and its planned-materialization events,
executor start, the steps, after the steps, teardown) and, inside the steps, by the asset's own
timings (``run_read_us``, ``run_compute_us``, ``run_write_us`` on every materialization) and the
executor's (``event_write_us`` of its step-timing events). Beside it, the bare kernel: the same
candle reads and ``run_backtest`` calls in a pool of as many forked processes, no Dagster, no
database. Figures: ``benchmarks/universe_scale.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = {"macd_crossover": [{}, {"fast": 8, "slow": 21, "signal": 5},
                                 {"fast": 24, "slow": 52, "signal": 18}],
              "ema_crossover": [{}, {"fast": 5, "slow": 20}, {"fast": 20, "slow": 100}],
              "rsi_mean_reversion": [{}, {"period": 7}, {"period": 21}],
              "bollinger_breakout": [{}, {"window": 10}, {"window": 40}]}
LOAD = ("import time; t=time.perf_counter(); from btpipeline.definitions import defs; "
        "n=len(list(defs.resolve_asset_graph().get_all_asset_keys())); "
        "i=time.perf_counter()-t; from btpipeline.definitions import build_definitions; "
        "t=time.perf_counter(); build_definitions().resolve_asset_graph(); "
        "print(n, i, time.perf_counter()-t)")


def big_universe(path: Path, instruments: int = 28, units: float | None = None) -> Path:
    """A universe of ``instruments`` USD-quoted CFDs x 12 variants (4 strategies x 3);
    ``units``: every variant's position size (the default 100,000 contracts of a ~2,000 USD
    index stops a 100,000 USD account out on its first trade)."""
    lines = ["history_start: 2020-01-01", "instruments:"]
    lines += [f"  IDX{i:02d}: {{pip_size: 0.1, spread_pips: 2, contract_size: 1, "
              f"quote_currency: USD, reference_price: {1000 + 100 * i}}}"
              for i in range(1, instruments + 1)]
    lines.append("variants:")
    for strategy, variants in STRATEGIES.items():
        for n, params in enumerate(variants):
            sizing = "" if units is None else f", sizing: {{units: {units:g}}}"
            lines.append(f"  {strategy}_{n}: {{strategy: {strategy}, "
                         f"params: {json.dumps(params)}{sizing}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(universe: Path, home: Path, instance_yaml: str | None = None) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml or (REPO / "dagster.yaml").read_text())
    return {**os.environ, "BTPIPELINE_UNIVERSE": str(universe), "DAGSTER_HOME": str(home),
            "BTPIPELINE_HOME": str(home / "btp"), "PYTHONPATH": str(REPO)}


def load_seconds(env: dict[str, str], repeats: int) -> tuple[int, float, float, float]:
    """(assets, median process wall time, median in-process import+build time, median time
    of a second build in the same process: the definitions alone, modules already imported)."""
    walls, inner, builds, count = [], [], [], "0"
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", LOAD], cwd=REPO, env=env, text=True,
                              capture_output=True, check=True, timeout=600)
        walls.append(time.perf_counter() - start)
        count, first, again = done.stdout.split()[-3:]
        inner.append(float(first))
        builds.append(float(again))
    return (int(count), statistics.median(walls), statistics.median(inner),
            statistics.median(builds))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _asset_count(port: int) -> int:
    body = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return len((json.loads(response.read()).get("data") or {}).get("assetNodes") or [])


def dev_ready_seconds(env: dict[str, str], assets: int, log: Path,
                      deadline_s: float = 300) -> float:
    """Seconds from starting ``dagster dev`` until GraphQL lists ``assets`` asset nodes."""
    port = _free_port()
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-m", "btpipeline.definitions",
             "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while time.perf_counter() - start < deadline_s:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {proc.returncode}; see {log}")
            try:
                if _asset_count(port) >= assets:
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"dagster dev not ready within {deadline_s} s; see {log}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# -- results storage (``--storage``) -------------------------------------------------------
STORAGE_EPICS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD")
STORAGE_STRATEGIES = ("macd_crossover", "ema_crossover", "rsi_mean_reversion",
                      "bollinger_breakout")


def storage_child(url: str, schema: str | None, years: int) -> None:
    """Compute and write the 24 built-in assets (6 epics x 4 strategies) over ``years`` years
    of synthetic M1 candles, each asset's whole range in one ``write_backtest`` (as a
    single-run backfill writes it), then read each back with ``read_signals``; prints one JSON
    line per asset. Uses only APIs both layouts have, so it runs under either code base
    (``PYTHONPATH``)."""
    import datetime as dt

    from btpipeline.data.synthetic import generate_candles
    from btpipeline.epics import get_epic
    from btpipeline.machine.naming import month_key
    from btpipeline.resources.results_database import ResultsDatabase
    from btpipeline.strategies import run_backtest
    from btpipeline.strategies.account import Account

    account = Account(initial_capital=1e9)  # no stop-out: every asset trades all the years

    first = 2025 - years
    keys = [f"{y}-{m:02d}-01" for y in range(first, 2025) for m in range(1, 13)]
    db = ResultsDatabase(url=url, db_schema=schema)
    db.create_schema()
    for name in STORAGE_EPICS:
        epic = get_epic(name)
        candles = generate_candles(epic, dt.date(first, 1, 1), dt.date(2024, 12, 31))
        span = (int(candles.timestamp[0]), int(candles.timestamp[-1]) + 1)
        for strategy in STORAGE_STRATEGIES:
            started = dt.datetime.now(dt.timezone.utc)
            t0 = time.perf_counter()
            result = run_backtest(candles, strategy=strategy, params=None, epic=epic,
                                  start_ns=span[0], end_ns=span[1], account=account)
            t1 = time.perf_counter()
            fills = result.fills.assign(partition_key=month_key(result.fills["timestamp"]))
            daily = result.daily.assign(partition_key=month_key(result.daily["day"]))
            tk = time.perf_counter()
            db.write_backtest(strategy=strategy, epic=name, partition_keys=keys,
                              run_id="storage-bench", params=dict(result.params),
                              started_at=started, finished_at=dt.datetime.now(dt.timezone.utc),
                              metrics=result.metrics, fills=fills, daily=daily)
            t2 = time.perf_counter()
            assert len(db.read_signals(variant=strategy, epic=name)) == len(fills)
            print(json.dumps({"asset": f"{strategy}/{name}", "fills": len(fills),
                              "compute_s": t1 - t0, "keys_s": tk - t1, "write_s": t2 - tk,
                              "read_s": time.perf_counter() - t2}), flush=True)
    db.dispose()


def _stored_bytes(url: str, schema: str | None) -> int:
    """SQLite: the file after VACUUM; PostgreSQL: pg_total_relation_size (heap, TOAST and
    indexes) of every table in ``schema``."""
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("VACUUM"))
        engine.dispose()
        return Path(str(parsed.database)).stat().st_size
    engine = create_engine(parsed.set(drivername="postgresql+psycopg"),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                                  {"s": schema}).scalars().all()
            for table in tables:
                conn.execute(text(f'VACUUM "{schema}"."{table}"'))
            return int(conn.execute(text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relkind = 'r'"), {"s": schema}).scalar_one())
    finally:
        engine.dispose()


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, make_url, text

    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def storage_case(code: Path, url: str, schema: str | None, years: int) -> dict[str, float]:
    """One layout (the code base at ``code``) on one database: totals over the 24 assets."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, __file__, "--storage-child", url, "--years",
                           str(years), *(["--schema", schema] if schema else [])],
                          cwd=code, env=env, text=True, capture_output=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"storage child under {code} failed:\n{done.stderr[-3000:]}")
    assets = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    stored = _stored_bytes(url, schema)
    if schema:
        _drop_schema(url, schema)
    fills = sum(a["fills"] for a in assets)
    return {"assets": len(assets), "fills": fills, "bytes": stored,
            "compute_s": statistics.median(a["compute_s"] for a in assets),
            "keys_s": statistics.median(a["keys_s"] for a in assets),
            "write_s": statistics.median(a["write_s"] for a in assets),
            "read_s": statistics.median(a["read_s"] for a in assets),
            "write_over_compute": sum(a["keys_s"] + a["write_s"] for a in assets)
            / sum(a["compute_s"] for a in assets)}


def storage_main(years: int, baseline: Path, pg_url: str | None) -> None:
    """The row layout (``baseline``: a checkout of the code before fill blocks) beside the
    block layout (this checkout), on SQLite and, with ``pg_url``, on PostgreSQL. Per asset
    (medians): ``compute`` is ``run_backtest``; ``keys`` tags each fill and day with its month
    (``month_key``, as the asset does before writing); ``write`` is ``write_backtest``;
    ``(keys+write)/compute`` sums all assets, the share the asset logs as ``write_us``."""
    print(f"load average before: {os.getloadavg()}")
    print("| layout | database | assets | fills | stored MB | bytes/fill | compute s/asset | "
          "keys s/asset | write s/asset | (keys+write)/compute | read s/asset |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql") if pg_url else ("sqlite",):
            for layout, code in (("rows (before)", baseline), ("blocks", REPO)):
                tag = "rows" if code == baseline else "blocks"
                if backend == "sqlite":
                    url, schema = f"sqlite:///{tmp}/{tag}.db", None
                else:
                    url, schema = str(pg_url), f"btp_storage_{tag}_{os.getpid()}"
                r = storage_case(code, url, schema, years)
                print(f"| {layout} | {backend} | {r['assets']} | {r['fills']} | "
                      f"{r['bytes'] / 1e6:.1f} | {r['bytes'] / r['fills']:.1f} | "
                      f"{r['compute_s']:.3f} | {r['keys_s']:.3f} | {r['write_s']:.3f} | "
                      f"{r['write_over_compute']:.2f} | {r['read_s']:.3f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")
# ---------------------------------------------------------------- one year as one backfill
# ``--backfill``: each universe in a child process of its own (the universe file is read when
# btpipeline.definitions is imported) with its own DAGSTER_HOME (the shipped dagster.yaml) and
# BTPIPELINE_HOME (candles, results database), so nothing is shared between the two rows.

BACKFILL_YEAR = 2023
BACKFILL_PHASES = (
    ("load + plan", "execute_job called until the first planned-materialization event"),
    ("planned events", "first to last ASSET_MATERIALIZATION_PLANNED (one per asset x month)"),
    ("run start", "last planned event to RUN_START"),
    ("executor start", "RUN_START to the first STEP_START (instance, pool, workers)"),
    ("steps", "first STEP_START to the last STEP_SUCCESS"),
    ("after steps", "last STEP_SUCCESS to RUN_SUCCESS"),
    ("teardown", "RUN_SUCCESS until execute_job returned"),
)


def _year_ns(year: int) -> tuple[int, int]:
    import datetime as dt

    start = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc)
    return int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9


def _kernel_task(index: int) -> tuple[int, int]:
    """Read + compute of backtest ``index`` as the asset does it, no Dagster, no database:
    (read ns, kernel ns)."""
    from btpipeline.assets.backtests.assets import _read_candles
    from btpipeline.assets.backtests.config import BacktestConfig
    from btpipeline.assets.backtests.run_settings import resolve
    from btpipeline.data.store import CandleStore
    from btpipeline.settings import default_data_dir
    from btpipeline.strategies import run_backtest
    from btpipeline.universe import backtest_specs, default_universe

    spec = backtest_specs(default_universe())[index]
    run = resolve(spec, BacktestConfig())
    start_ns, end_ns = _year_ns(BACKFILL_YEAR)
    t0 = time.perf_counter_ns()
    candles = _read_candles(CandleStore(default_data_dir()), run, start_ns, end_ns)  # type: ignore[arg-type]
    t1 = time.perf_counter_ns()
    run_backtest(candles, strategy=run.strategy, params=run.params, epic=run.epic,
                 start_ns=start_ns, end_ns=end_ns, costs=run.costs, size_units=run.size_units,
                 account=run.account, max_gap_hours=run.max_gap_hours,
                 equity_fraction=run.equity_fraction)
    return t1 - t0, time.perf_counter_ns() - t1


def bare_kernel_seconds(assets: int, workers: int) -> dict[str, float]:
    """Every backtest of the year in a pool of ``workers`` forked processes (the modules
    imported and the page cache warm first): wall time, and the summed read and kernel time."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_kernel_task, range(min(assets, workers * 2)))  # warm-up
        began = time.perf_counter()
        parts = pool.map(_kernel_task, range(assets), chunksize=1)
        wall = time.perf_counter() - began
    return {"wall": wall, "read": sum(p[0] for p in parts) / 1e9,
            "kernel": sum(p[1] for p in parts) / 1e9}


def _backfill_run(workers: int, assets: int | None = None) -> tuple[str, float, float]:
    """One year of every backtest asset as ONE run, the way a single-run backfill makes it:
    ``execute_job`` of ``backtest_job`` with Dagster's partition-range tags (what
    ``dagster asset materialize --partition-range``, the demo and the backfill daemon's
    single-run path set); ``assets``: only the first that many backtest assets.
    Returns (run id, called at, returned at) in epoch seconds."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from btpipeline.assets.keys import backtest_key
    from btpipeline.definitions import backtest_job_def
    from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
    from btpipeline.universe import backtest_specs, default_universe

    config = {"execution": {"config": {"max_concurrent_backtests": workers,
                                       "execution_mode": "STANDALONE"}},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {RANGE_START_TAG: f"{BACKFILL_YEAR}-01-01", RANGE_END_TAG: f"{BACKFILL_YEAR}-12-01"}
    instance = DagsterInstance.get()
    called = time.time()
    selection = None if assets is None else [
        backtest_key(spec.variant.name, spec.instrument.name)
        for spec in backtest_specs(default_universe())[:assets]]
    with execute_job(reconstructable(backtest_job_def), instance=instance, run_config=config,
                     tags=tags, asset_selection=selection) as result:
        if not result.success:
            raise RuntimeError(f"the backfill run {result.run_id} failed")
        run_id = result.run_id
    return run_id, called, time.time()


def backfill_split(run_id: str, called: float, returned: float,
                   workers: int) -> dict[str, object]:
    """Where the run's wall time went, from its event log: the phases in order, and inside
    the steps the asset's own timings (``run_read_us``, ``run_compute_us``, ``run_write_us``
    on every materialization) and the executor's (``event_write_us`` of its step-timing
    events)."""
    from dagster import DagsterInstance

    records = DagsterInstance.get().all_logs(run_id)
    kinds: dict[str, list[float]] = {}
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    inside: dict[str, dict[str, float]] = {}
    event_write = 0.0
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        kinds.setdefault(kind, []).append(record.timestamp)
        if kind == "STEP_START":
            starts[event.step_key or ""] = record.timestamp
        elif kind == "STEP_SUCCESS":
            ends[event.step_key or ""] = record.timestamp
        elif kind == "ASSET_MATERIALIZATION" and event.step_key not in inside:
            meta = event.step_materialization_data.materialization.metadata
            inside[event.step_key or ""] = {
                k: float(meta[f"run_{k}_us"].value) / 1e6  # type: ignore[arg-type]
                for k in ("read", "compute", "write")}
        elif kind == "ENGINE_EVENT" and event.step_key:
            meta = event.engine_event_data.metadata
            if "event_write_us" in meta:
                event_write += float(meta["event_write_us"].value) / 1e6  # type: ignore[arg-type]
    planned = kinds["ASSET_MATERIALIZATION_PLANNED"]
    marks = [called, min(planned), max(planned), kinds["PIPELINE_START"][0], min(starts.values()),
             max(ends.values()), kinds["PIPELINE_SUCCESS"][0], returned]
    phases = {name: marks[i + 1] - marks[i] for i, (name, _) in enumerate(BACKFILL_PHASES)}
    steps = sum(ends[k] - starts[k] for k in ends)
    summed = {k: sum(v[k] for v in inside.values()) for k in ("read", "compute", "write")}
    wall = returned - called
    return {"run_id": run_id, "wall": wall, "workers": workers, "phases": phases,
            "steps": len(ends), "step_seconds": steps, "read": summed["read"],
            "kernel": summed["compute"], "write": summed["write"],
            "step_dagster": steps - sum(summed.values()), "event_write": event_write,
            "idle": workers * phases["steps"] - steps,
            "events": {k: len(v) for k, v in sorted(kinds.items())}}


def backfill_child(year: int, workers: int) -> None:
    """In the child: candles for the universe's instruments (December before the year for the
    warm-up), the bare kernel, a warm-up backfill, then the measured one; one JSON line."""
    import datetime as dt

    from btpipeline import universe
    from btpipeline.data.store import CandleStore, generate_into_store
    from btpipeline.settings import default_data_dir
    from btpipeline.universe import backtest_specs, default_universe

    assets = len(backtest_specs(default_universe()))
    generate_into_store(CandleStore(default_data_dir()), universe.epics(),
                        dt.date(year - 1, 12, 1), dt.date(year, 12, 31), 7)
    kernel = bare_kernel_seconds(assets, workers)
    _backfill_run(workers, 2 * workers)  # warm-up: results tables, imports, workers' code
    split = backfill_split(*_backfill_run(workers), workers)
    print(json.dumps({"assets": assets, "bare": kernel, "backfill": split}))


def instance_yaml(event_log: str) -> str:
    """The shipped dagster.yaml; ``event_log="dagster"``: without its ``storage:`` block, so
    Dagster's own SQLite storage (one transaction per event) is used."""
    text = (REPO / "dagster.yaml").read_text()
    if event_log == "batched":
        return text
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("storage:"):
            skipping = True
        elif skipping and line and not line.startswith(" "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def measure_backfill(name: str, universe: Path, home: Path, workers: int,
                     event_log: str = "batched") -> dict:
    env = _env(universe, home, instance_yaml(event_log))
    load = os.getloadavg()
    done = subprocess.run([sys.executable, __file__, "--backfill-child", "--workers",
                           str(workers)], cwd=REPO, env=env, text=True, capture_output=True,
                          timeout=7200)
    if done.returncode:
        raise RuntimeError(f"{name}: the backfill child failed:\n{done.stderr[-4000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found.update(name=f"{name}, {event_log} event log", load_before=load,
                 load_after=os.getloadavg())
    print(json.dumps(found), file=sys.stderr, flush=True)  # kept if a later row is cut short
    return found


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in avg)


def print_backfill(rows: list[dict]) -> None:
    """The two tables of universe_scale.md: the split, and backfill vs bare kernel."""
    print("One year as one backfill (wall time of the run, s; shares of wall time):\n")
    print("| universe | backtests | steps x months | wall | " +
          " | ".join(name for name, _ in BACKFILL_PHASES) + " | load avg before/after |")
    print("|---|---|---|---|" + "---|" * len(BACKFILL_PHASES) + "---|")
    for row in rows:
        b = row["backfill"]
        print(f"| {row['name']} | {row['assets']} | {b['steps']} x 12 | {b['wall']:.2f} | " +
              " | ".join(f"{b['phases'][n]:.2f}" for n, _ in BACKFILL_PHASES) +
              f" | {_load(row['load_before'])} -> {_load(row['load_after'])} |")
    print("\nInside the steps (sums over steps, worker-seconds; `/ workers` = their share of "
          "the wall time). 'Dagster in the step': STEP_START to STEP_SUCCESS minus the asset's "
          "read, kernel and write; 'event writes': the worker's event-log writes per request "
          "(executor step timings); 'outside steps': workers x steps phase minus the steps, "
          "i.e. each request's resource init and log capture before STEP_START, dispatch and "
          "pool-slot claims in the run process:\n")
    print("| universe | workers | step time | read candles | kernel | results write | "
          "Dagster in the step | of which event writes | workers outside steps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        b = row["backfill"]
        print(f"| {row['name']} | {b['workers']} | {b['step_seconds']:.2f} | {b['read']:.2f} | "
              f"{b['kernel']:.2f} | {b['write']:.2f} | {b['step_dagster']:.2f} | "
              f"{b['event_write']:.2f} | {b['idle']:.2f} |")
    print("\nWall time attributed (kernel, reads, writes: their worker-seconds / workers; "
          "bookkeeping: the rest):\n")
    print("| universe | wall | kernel | read candles | results write | Dagster bookkeeping | "
          "bookkeeping share |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        b, w = row["backfill"], row["backfill"]["workers"]
        work = (b["kernel"] + b["read"] + b["write"]) / w
        print(f"| {row['name']} | {b['wall']:.2f} | {b['kernel'] / w:.2f} | {b['read'] / w:.2f} | "
              f"{b['write'] / w:.2f} | {b['wall'] - work:.2f} | "
              f"{(b['wall'] - work) / b['wall']:.0%} |")
    print("\nBackfill vs bare kernel (same cores, same worker count):\n")
    print("| universe | backtests | bare kernel: wall (read + kernel, pool) | backfill wall | "
          "ratio | backfill wall without results writes | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        b, k = row["backfill"], row["bare"]
        no_write = b["wall"] - b["write"] / b["workers"]
        print(f"| {row['name']} | {row['assets']} | {k['wall']:.2f} | {b['wall']:.2f} | "
              f"{b['wall'] / k['wall']:.1f}x | {no_write:.2f} | {no_write / k['wall']:.1f}x |")
    print("\nEvents per run: " + "; ".join(
        f"{row['name']}: " + ", ".join(f"{k} {v}" for k, v in row["backfill"]["events"].items())
        for row in rows))


def backfill_main(args: argparse.Namespace) -> None:
    """``--backfill``: the shipped universe and the generated one, one year each."""
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"shipped 6 x 4": REPO / "universe.yaml",
                 f"{args.instruments} x 12": big_universe(
                     Path(tmp) / "universe_big.yaml", args.instruments, units=1)}
        rows = []
        for n, (name, path) in enumerate(cases.items()):
            if args.only and not name.startswith(args.only):
                continue
            for event_log in args.event_log.split(","):
                rows.append(measure_backfill(name, path, Path(tmp) / f"bf{n}{event_log}",
                                             args.workers, event_log))
    print(f"`python benchmarks/universe_scale.py --backfill --workers {args.workers}"
          f"{' --instruments ' + str(args.instruments) if args.instruments != 28 else ''}"
          f"{' --only ' + args.only if args.only else ''} --event-log {args.event_log}`, "
          f"year {BACKFILL_YEAR}, {os.cpu_count()} cores\n")
    print_backfill(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storage", action="store_true",
                        help="measure results storage instead (see storage_main)")
    parser.add_argument("--years", type=int, default=4, help="--storage: years of candles")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="--storage: checkout of the code before fill blocks (row layout)")
    parser.add_argument("--pg-url", default=None, help="--storage: also on this PostgreSQL")
    parser.add_argument("--storage-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--schema", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backfill", action="store_true",
                        help="measure one year of every backtest asset as one backfill, split "
                        "into Dagster bookkeeping, kernels and results writes, beside the bare "
                        "kernel (instead of load and dagster dev readiness)")
    parser.add_argument("--workers", type=int, default=2,
                        help="--backfill: backtest workers, and bare-kernel processes")
    parser.add_argument("--instruments", type=int, default=28,
                        help="--backfill: instruments of the generated universe (x 12 variants)")
    parser.add_argument("--only", default="", help="--backfill: only the universe whose name "
                        "starts with this ('shipped', or the instrument count)")
    parser.add_argument("--event-log", default="batched",
                        help="--backfill: 'batched' (the shipped dagster.yaml), 'dagster' "
                        "(Dagster's own SQLite storage), or both: 'dagster,batched'")
    parser.add_argument("--backfill-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.storage_child:
        storage_child(args.storage_child, args.schema, args.years)
        return
    if args.storage:
        if args.baseline is None:
            parser.error("--storage needs --baseline (a checkout of the row-layout code)")
        storage_main(args.years, args.baseline.resolve(), args.pg_url)
        return
    if args.backfill_child:
        backfill_child(BACKFILL_YEAR, args.workers)
        return
    if args.backfill:
        backfill_main(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"shipped 6 x 4": REPO / "universe.yaml",
                 "28 x 12": big_universe(Path(tmp) / "universe_28x12.yaml")}
        print("| universe | all assets | load: process (s) | load: import+build (s) | "
              "build only (s) | dagster dev ready (s) |\n|---|---|---|---|---|---|")
        for n, (name, path) in enumerate(cases.items()):
            env = _env(path, Path(tmp) / f"home{n}")
            assets, wall, inner, build = load_seconds(env, args.repeats)
            ready = dev_ready_seconds(env, assets, Path(tmp) / f"dev{n}.log")
            print(f"| {name} | {assets} | {wall:.2f} | {inner:.2f} | {build:.2f} | "
                  f"{ready:.1f} |")


if __name__ == "__main__":
    main()
