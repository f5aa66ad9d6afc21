"""Create folders no wider than 0755, whatever the process umask.

``Path.mkdir(parents=True)`` gives ``0777 & ~umask``: under ``umask 000`` every folder btpipeline
creates (candles, results, Dagster state) would be world-writable.
"""

from __future__ import annotations

from pathlib import Path

MAX_DIR_MODE = 0o755


def make_dirs(path: Path) -> None:
    """``mkdir -p path``; each folder created here gets at most ``MAX_DIR_MODE`` (a stricter
    umask still wins). Existing folders are left as they are."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        folder.chmod(folder.stat().st_mode & MAX_DIR_MODE)
