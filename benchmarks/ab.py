"""Interleaved A/B of one benchmark: an earlier commit against the working tree, in one run.

Each round runs the benchmark command once in a checkout of the base commit (a temporary git
worktree) and once in this repository, alternating which goes first, so both sides see the
same machine load. Each side runs its own copy of the benchmark script against its own
package (``PYTHONPATH`` and the working directory point at that side's checkout), so a
benchmark can follow its own side's module layout. ``--same-script`` runs this repository's
copy of the script on both sides (only ``PYTHONPATH`` differs): for options the base's copy
lacks, when the script imports nothing that moved.

Run from the repository root, for example::

    python benchmarks/ab.py --base 60ff6ef --rounds 3 -- \\
        python benchmarks/executor_overhead.py --quick

Each side's output is printed under a heading with its round; copy the tables into the
benchmark's ``.md`` beside each other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _checkout(base: str, into: Path) -> Path:
    """A detached worktree of ``base`` under ``into`` (removed by :func:`_remove`)."""
    path = into / "base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), base],
                   check=True)
    return path


def _remove(path: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                   check=False)


def _run_side(label: str, checkout: Path, command: list[str], cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    argv = [sys.executable if part == "python" else part for part in command]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed (exit {done.returncode}):\n{done.stderr[-4000:]}\n"
                         "Fix: run the command by hand in that checkout to see why.")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref of the baseline (A)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--same-script", action="store_true",
                        help="run this repository's copy of the script on both sides")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the benchmark command, after --")
    args = parser.parse_args()
    command = [part for part in args.command if part != "--"]
    if not command:
        raise SystemExit("No benchmark command given. Fix: put it after --, e.g. "
                         "-- python benchmarks/executor_overhead.py --quick")
    with tempfile.TemporaryDirectory(prefix="btp-ab-") as tmp:
        base = _checkout(args.base, Path(tmp))
        try:
            sides = [(f"A ({args.base})", base), ("B (working tree)", REPO)]
            for round_no in range(1, args.rounds + 1):
                order = sides if round_no % 2 else list(reversed(sides))
                for label, checkout in order:
                    cwd = REPO if args.same_script else checkout
                    seconds, out = _run_side(label, checkout, command, cwd)
                    print(f"\n### round {round_no}, {label}: {seconds:.1f} s\n\n{out}",
                          flush=True)
        finally:
            _remove(base)


if __name__ == "__main__":
    main()
