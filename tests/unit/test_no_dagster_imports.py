"""The protected scanner, the client and the machine layer load without Dagster.

Each check imports the modules in a fresh interpreter (this test process has Dagster loaded
already) and lists the ``dagster*`` modules that came with them; on failure the message shows
the import chain that pulled Dagster in, from ``python -X importtime``.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import btpipeline.machine

MACHINE_DIR = Path(btpipeline.machine.__file__).parent
MACHINE_MODULES = sorted(
    f"btpipeline.machine.{info.name}" for info in pkgutil.iter_modules([str(MACHINE_DIR)]))
DAGSTER_FREE = {
    "scanner": ["btpipeline.scanner", "btpipeline.scanner.app", "btpipeline.scanner.runner",
                "btpipeline.scanner.isolation", "btpipeline.scanner.report"],
    "client": ["btpipeline.client"],
    "machine": ["btpipeline.machine", *MACHINE_MODULES],
    # The pure layers under the Dagster-facing code: strategies, data, results, sweeps, reports.
    "pure layers": ["btpipeline.strategies", "btpipeline.data.store", "btpipeline.results.writer",
                    "btpipeline.results.readers", "btpipeline.results.live_sink",
                    "btpipeline.sweeps.spec", "btpipeline.sweeps.chunks",
                    "btpipeline.reports.build", "btpipeline.universe"],
}
_PROBE = """
import sys
for name in sys.argv[1:]:
    __import__(name)
print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0].startswith("dagster"))))
"""
#: Layers the machine layer must never import (they are Dagster-facing).
FORBIDDEN_FOR_MACHINE = ("btpipeline.executors", "btpipeline.assets", "btpipeline.resources",
                         "btpipeline.definitions", "btpipeline.monitor")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def _import_chain(modules: list[str]) -> str:
    """From the first Dagster module loaded up to the top-level import that pulled it in,
    read from ``-X importtime`` (which prints a module after the modules it imported)."""
    trace = [line.rsplit("|", 1)[-1] for line in
             _run("-X", "importtime", "-c", _PROBE, *modules).stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    first = next((i for i, name in enumerate(trace)
                  if name.strip().split(".")[0].startswith("dagster")), None)
    if first is None:
        return "(no Dagster module in the import trace)"
    chain, depth = [], None
    for name in trace[first:]:
        indent = len(name) - len(name.lstrip())
        if depth is None or indent < depth:
            chain.append(name.strip())
            depth = indent
    return " <- ".join(chain)


@pytest.mark.parametrize("group", sorted(DAGSTER_FREE))
def test_imports_no_dagster_module(group: str) -> None:
    modules = DAGSTER_FREE[group]
    probe = _run("-c", _PROBE, *modules)
    assert probe.returncode == 0, probe.stderr
    loaded = probe.stdout.split()
    chain = _import_chain(modules) if loaded else ""
    assert loaded == [], (f"importing {group} loaded Dagster ({len(loaded)} modules, e.g. "
                          f"{loaded[:3]}); import chain: {chain}")


@pytest.mark.parametrize("path", sorted(MACHINE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_machine_imports_nothing_dagster_facing(path: Path) -> None:
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    bad = [name for name in imported
           if name.split(".")[0] == "dagster" or name.startswith(FORBIDDEN_FOR_MACHINE)]
    assert bad == [], f"{path.name} imports {bad}: the machine layer must stay Dagster-free"


def test_the_chain_helper_names_the_culprit() -> None:
    """The failure message's chain really leads to a Dagster module (guards the helper)."""
    chain = _import_chain(["btpipeline.assets.keys"])
    assert chain.startswith("dagster") and "btpipeline.assets.keys" in chain


_SINK_PROBE = """
import sys
from btpipeline.results.live_sink import LiveSignalSink
sink = LiveSignalSink(sys.argv[1])
sink.write_live_signals([])  # what the scanner does at start: connect, create live_signals
sink.dispose()
print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0].startswith("dagster"))))
"""


def test_the_scanners_signal_sink_writes_without_loading_dagster(tmp_path: Path) -> None:
    """Not only the imports: the scanner's start (its results sink connecting and creating
    live_signals) runs without Dagster too."""
    probe = _run("-c", _SINK_PROBE, f"sqlite:///{tmp_path / 'live.db'}")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [], f"the live-signal sink loaded Dagster: {probe.stdout[:200]}"
    assert (tmp_path / "live.db").exists()
