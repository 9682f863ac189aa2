"""Plain-text result tables for the benchmark scripts (the last thing each prints before its JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> None:
    """Print ``rows`` under ``columns`` = (header, row key, format spec such as ",", ".3f" or "");
    the first column is left-aligned, the rest right-aligned, each as wide as its widest cell."""
    cells = [[format(r[key], spec) for _, key, spec in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    print(line([h for h, _, _ in columns]))
    for c in cells:
        print(line(c))
