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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
