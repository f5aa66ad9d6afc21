"""``settings_hash``: a short, stable hash of JSON-able settings (a backtest's params and costs).

It keys result rows (``params_hash``) and versions backtest assets (``code_version``); the
results migration backfills old rows with it, so it must never change: SHA-256 of the JSON
with sorted keys and no spaces, first 16 hex digits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and compact separators (the same text every time)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def settings_hash(value: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]
