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


def big_universe(path: Path, instruments: int = 28) -> Path:
    """A universe of ``instruments`` USD-quoted CFDs x 12 variants (4 strategies x 3)."""
    lines = ["history_start: 2020-01-01", "instruments:"]
    lines += [f"  IDX{i:02d}: {{pip_size: 0.1, spread_pips: 2, contract_size: 1, "
              f"quote_currency: USD, reference_price: {1000 + 100 * i}}}"
              for i in range(1, instruments + 1)]
    lines.append("variants:")
    for strategy, variants in STRATEGIES.items():
        for n, params in enumerate(variants):
            lines.append(f"  {strategy}_{n}: {{strategy: {strategy}, "
                         f"params: {json.dumps(params)}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(universe: Path, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
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
    args = parser.parse_args()
    if args.storage_child:
        storage_child(args.storage_child, args.schema, args.years)
        return
    if args.storage:
        if args.baseline is None:
            parser.error("--storage needs --baseline (a checkout of the row-layout code)")
        storage_main(args.years, args.baseline.resolve(), args.pg_url)
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
