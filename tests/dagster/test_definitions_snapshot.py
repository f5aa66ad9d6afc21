"""The loaded Definitions match the committed listing in tests/dagster/snapshots/definitions.txt.

What the code location offers (asset keys, jobs, sensors, schedules, resources, executor) is
what the UI, the daemon, schedules, sensors and stored runs refer to by name; a rename or a
lost definition must be a deliberate change, seen in review as a diff of the snapshot file.
"""

import ast
import os
from pathlib import Path

from dagster import Definitions

from btpipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
ASSETS = Path(__file__).parents[2] / "btpipeline" / "assets"
UPDATE_ENV = "BTPIPELINE_UPDATE_SNAPSHOT"


def _assets(defs: Definitions) -> list[str]:
    graph = defs.resolve_asset_graph()
    lines = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        partitions = type(node.partitions_def).__name__ if node.partitions_def else "none"
        lines.append(f"asset {key.to_user_string()} group={node.group_name} "
                     f"partitions={partitions}")
    return lines


def _jobs(defs: Definitions) -> list[str]:
    repo = defs.get_repository_def()
    return [f"job {job.name} executor={job.executor_def.name}" for job in repo.get_all_jobs()
            if not job.name.startswith("__")]  # Dagster's implicit asset job


def _automation(defs: Definitions) -> list[str]:
    repo = defs.get_repository_def()
    sensors = [f"sensor {s.name} default_status={s.default_status.value}"
               for s in repo.sensor_defs]
    schedules = [f"schedule {s.name} cron={s.cron_schedule} tz={s.execution_timezone} "
                 f"default_status={s.default_status.value}" for s in repo.schedule_defs]
    return sensors + schedules


def listing(defs: Definitions) -> str:
    """A sorted, stable text listing of what ``defs`` offers."""
    lines = [*_assets(defs), *_jobs(defs), *_automation(defs),
             *(f"resource {key}" for key in (defs.resources or {})),
             f"executor {defs.executor.name if defs.executor else 'default'}"]
    return "\n".join(sorted(lines)) + "\n"


def test_definitions_match_the_committed_snapshot() -> None:
    current = listing(defs)
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    committed = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    assert current == committed, (
        f"btpipeline.definitions no longer matches {SNAPSHOT.name}: an asset key, group, "
        "partitioning, job, sensor, schedule, resource or executor was added, removed or "
        "renamed (pytest lists the differing lines). Expected the committed listing, found "
        "the listing of the loaded definitions. Fix: if the change is intended, run "
        f"`{UPDATE_ENV}=1 python -m pytest tests/dagster/test_definitions_snapshot.py` and commit "
        "tests/dagster/snapshots/definitions.txt; otherwise restore the name.")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_domain_module_imports_the_definitions_module() -> None:
    """btpipeline.definitions imports the domains; the other way round would be a circle."""
    offenders = sorted(str(path.relative_to(ASSETS.parent.parent)) for path in
                       ASSETS.rglob("*.py") if "btpipeline.definitions" in _imported_modules(path))
    assert not offenders, (
        f"{offenders} import btpipeline.definitions, which imports every domain: an import "
        "circle. Expected no module under btpipeline/assets/ to import it. Fix: resolve jobs "
        "by name in btpipeline.definitions (its *_job_def entry points) instead.")
