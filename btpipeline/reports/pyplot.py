"""matplotlib's pyplot on the Agg backend (no display needed), imported on first use.

Importing it costs ~0.5-1 s: every process that imports the definitions (each run, the code
server) would pay it although only rendering a report or a sweep heatmap needs it.
"""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, with the Agg backend selected before its first import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
