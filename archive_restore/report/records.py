"""Reading ``manifest.jsonl`` for the report: last record per input, tolerant normalisation,
the "needs review" rule and the run summary.

Owns the interpretation of manifest records (docs/manifest.md) for display. It never
touches image files; ``assets`` does that. Every function here is pure on its inputs.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

STATUSES = ("restored", "unchanged", "skipped", "failed")  # as the manifest records them
# as the page shows them: a "skipped" record re-states an earlier run's outcome (its output and
# mask carried over), so it shows as that outcome, marked "earlier run" (``Entry.reused``)
SHOWN_STATUSES = ("restored", "unchanged", "failed")
DAMAGE_KINDS = ("scratches", "dust", "text", "blotches", "user")

# The "needs review" rule. Written here once; the page's help text is generated from it.
REVIEW_MASKED_FRACTION = 0.05  # more than 5 % of the pixels were filled
REVIEW_LARGE_FILL_KINDS = ("text", "blotches")  # fills that invent large areas of content
REVIEW_LARGE_FILL_FRACTION = 0.01  # ... covering more than 1 % of the image
REVIEW_RULE_TEXT = (
    "An image needs review when any of these holds: it failed; more than "
    f"{REVIEW_MASKED_FRACTION:.0%} of its pixels were filled; a text or blotch fill covers more than "
    f"{REVIEW_LARGE_FILL_FRACTION:.0%} of the image (large invented areas); its manifest record is "
    "malformed; the restored file it names is missing from the output folder or cannot be decoded; "
    "or its input is no longer in the input folder (deleted or moved since the run)."
)


class ManifestError(Exception):
    """The manifest is missing or has no usable record."""


@dataclass(frozen=True)
class ManifestRead:
    """Result of reading a manifest: the last valid record per ``input`` (in first-seen order)
    plus the number of lines that could not be parsed."""

    records: list[dict[str, Any]]
    bad_lines: int
    total_lines: int


def read_manifest(path: Path, every: bool = False) -> ManifestRead:
    """Read ``manifest.jsonl``; the LAST record per ``input`` wins (reruns append), or with
    ``every`` all records in the order written (``pipeline.manifest_history`` needs them).

    Lines that are not JSON objects with a string ``input`` are counted in ``bad_lines``
    and skipped (a run killed mid-write may leave a truncated last line).
    Raises ManifestError if the file is missing or unreadable.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    latest: dict[str, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    bad = total = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        total += 1
        try:
            rec = json.loads(line, parse_constant=str)  # NaN/Infinity kept as text
        except ValueError:
            bad += 1
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("input"), str):
            bad += 1
            continue
        if every:
            ordered.append(rec)
            continue
        key = rec["input"]
        latest.pop(key, None)  # re-insert: order follows the latest write
        latest[key] = rec
    if every:
        return ManifestRead(records=ordered, bad_lines=bad, total_lines=total)
    return ManifestRead(records=list(latest.values()), bad_lines=bad, total_lines=total)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def safe_relpath(value: Any) -> str | None:
    """A manifest path relative to its folder, or None if absent or not safely relative
    (absolute, or escaping the folder with ``..``)."""
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts:
        return None
    if os.name == "nt" and (value.startswith("\\") or PureWindowsPath(value).drive or ".." in PureWindowsPath(value).parts):
        return None  # on POSIX a backslash is an ordinary character of a name ("\\scan.jpg")
    return p.as_posix()


@dataclass
class Entry:
    """One image as the report shows it: the raw record plus normalised, typed fields."""

    raw: dict[str, Any]
    input: str
    status: str  # one of STATUSES, or "unknown"
    error: str | None
    output: str | None  # safe relative path under out_dir
    mask: str | None  # safe relative path under out_dir
    width: int | None
    height: int | None
    masked_fraction: float | None  # 0..1
    kind_pixels: dict[str, int]
    total_s: float | None  # timings.total, seconds
    malformed: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)  # reasons; empty = fine
    reused: bool = False  # recorded "skipped": the outcome of an earlier run, carried over


def normalise(rec: dict[str, Any]) -> Entry:
    """Typed view of one manifest record; problems go to ``malformed`` instead of raising."""
    malformed: list[str] = []
    status = _str(rec.get("status"))
    if status not in STATUSES:
        malformed.append(f"unknown status {status!r}")
        status = "unknown"
    mf = _num(rec.get("masked_fraction"))
    if mf is None and status != "failed":
        malformed.append("masked_fraction missing")
    if mf is not None:
        mf = min(max(mf, 0.0), 1.0)
    kinds: dict[str, int] = {}
    raw_kinds = rec.get("kind_pixels")
    if isinstance(raw_kinds, dict):
        for k, v in raw_kinds.items():
            n = _int(v)
            if isinstance(k, str) and n is not None and n >= 0:
                kinds[k] = n
    timings = rec.get("timings")
    total_s = _num(timings.get("total")) if isinstance(timings, dict) else None
    output = safe_relpath(rec.get("output"))
    if rec.get("output") is not None and output is None:
        malformed.append("output path is not relative to the output folder")
    mask = safe_relpath(rec.get("mask"))
    if rec.get("mask") is not None and mask is None:
        malformed.append("mask path is not relative to the output folder")
    error = rec.get("error")
    if error is not None and not isinstance(error, str):
        error = json.dumps(error)
    if status == "failed" and not error:
        error = "(no error message recorded)"
    w, h = _int(rec.get("width")), _int(rec.get("height"))
    reused = status == "skipped"
    if reused:  # what the earlier run did: a skipped image with a mask was restored
        status = "restored" if mask else "unchanged"
    return Entry(
        raw=rec, input=rec["input"], status=status, error=error, output=output, mask=mask,
        width=w if w and w > 0 else None, height=h if h and h > 0 else None,
        masked_fraction=mf, kind_pixels=kinds, total_s=total_s, malformed=malformed, reused=reused,
    )


def review_reasons(entry: Entry, output_exists: bool | None, output_unreadable: bool = False,
                   input_exists: bool | None = None) -> list[str]:
    """The "needs review" rule (see REVIEW_RULE_TEXT). ``output_exists`` and ``input_exists``
    are None when unknown; ``output_unreadable`` says the output exists but could not be
    decoded for a preview."""
    reasons: list[str] = []
    if entry.status == "failed":
        reasons.append("failed")
    if entry.masked_fraction is not None and entry.masked_fraction > REVIEW_MASKED_FRACTION:
        reasons.append(f"masked {entry.masked_fraction:.1%}")
    if entry.width and entry.height:
        area = entry.width * entry.height
        for kind in REVIEW_LARGE_FILL_KINDS:
            px = entry.kind_pixels.get(kind, 0)
            if px > REVIEW_LARGE_FILL_FRACTION * area:
                reasons.append(f"large {kind} fill {px / area:.1%}")
    if entry.malformed:
        reasons.append("malformed record")
    if entry.status in ("restored", "unchanged") and output_exists is False:
        reasons.append("output file missing")
    elif entry.status in ("restored", "unchanged") and output_unreadable:
        reasons.append("output file unreadable")
    if entry.status in ("restored", "unchanged") and input_exists is False:
        reasons.append("input gone")
    return reasons


def _tally(values: list[Any]) -> list[list[Any]]:
    """[[value, count], ...] most common first; values are JSON-able."""
    counts: Counter[str] = Counter(json.dumps(v, sort_keys=True) for v in values)
    return [[json.loads(k), n] for k, n in counts.most_common()]


def _timestamp(v: Any) -> float | None:
    """An ISO 8601 ``finished_at`` ("2026-12-03T10:00:00Z") as POSIX seconds, or None."""
    if not isinstance(v, str):
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def summarise(entries: list[Entry], bad_lines: int, total_lines: int) -> dict[str, Any]:
    """Run-level numbers for the header: counts by status, time, throughput, provider,
    model, settings and dates. Times in seconds. ``restore folder`` works on several images at
    once, so per-image times overlap: throughput is images per hour of wall-clock time
    (``wall_s``: from the earliest start, ``finished_at`` minus the image's total time, to the
    last ``finished_at``; a manifest that several runs appended to counts the gaps between them).
    Skipped images did no work in the run that recorded them: they count in neither."""
    counts = {s: 0 for s in SHOWN_STATUSES}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    worked = [e for e in entries if not e.reused]  # a skipped record re-states earlier work
    times = [e.total_s for e in worked if e.total_s is not None]
    total_s = sum(times)
    spans = []
    for e in worked:
        end = _timestamp(e.raw.get("finished_at"))
        if end is not None and e.total_s is not None:
            spans.append((end - e.total_s, end))
    wall_s = max(b for _, b in spans) - min(a for a, _ in spans) if spans else None
    finished = sorted(f for e in entries if (f := _str(e.raw.get("finished_at"))))
    order = {k: i for i, k in enumerate(DAMAGE_KINDS)}  # known kinds first, in schema order
    kinds = sorted({k for e in entries for k in e.kind_pixels}, key=lambda k: (order.get(k, len(order)), k))
    return {
        "images": len(entries),
        "counts": counts,
        "reused": sum(1 for e in entries if e.reused),
        "needs_review": sum(1 for e in entries if e.review),
        "total_s": total_s,
        "timed_images": len(times),
        "mean_s": total_s / len(times) if times else None,
        "wall_s": wall_s,
        "per_hour": 3600.0 * len(spans) / wall_s if wall_s else None,
        "first_finished": finished[0] if finished else None,
        "last_finished": finished[-1] if finished else None,
        "providers": _tally([e.raw.get("provider") for e in entries if e.status != "failed"]),
        "models": _tally([[e.raw.get("model_name"), e.raw.get("model_id")] for e in entries if e.status != "failed"]),
        "settings": _tally([e.raw.get("settings") for e in entries if e.raw.get("settings") is not None]),
        "tool_versions": _tally([e.raw.get("tool_version") for e in entries]),
        "input_roots": _tally([e.raw.get("input_root") for e in entries]),
        "kinds": kinds,
        "bad_lines": bad_lines,
        "manifest_lines": total_lines,
        "review_rule": REVIEW_RULE_TEXT,
    }
