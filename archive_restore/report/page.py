"""Assembling ``report.html``: per-image items, the JSON data blob (escaped for a
``<script type="application/json">`` element), the Content-Security-Policy (hashes of the
inlined script and style) and the atomic write.

Owns what the page receives. The page renders everything client-side with textContent
(``report.js``), so nothing from the manifest is ever parsed as HTML.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import os
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archive_restore.io import TEMP_MARK, write_bytes_atomic
from archive_restore.report import assets as _assets
from archive_restore.report.records import (
    DAMAGE_KINDS,
    REVIEW_RULE_TEXT,
    SHOWN_STATUSES,
    Entry,
    ManifestError,
    normalise,
    read_manifest,
    review_reasons,
    safe_relpath,
    summarise,
)

REPORT_NAME = "report.html"
MANIFEST_NAME = "manifest.jsonl"


def _package_text(name: str) -> str:
    return resources.files("archive_restore.report").joinpath(name).read_text(encoding="utf-8")


def script_json(obj: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``: ASCII only, and
    ``<``, ``>``, ``&`` written as unicode escapes so no ``</script>`` or ``<!--`` can
    appear. ``JSON.parse`` returns the original strings."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _href(rel: str) -> str:
    """A relative POSIX path -> URL-escaped relative href (no scheme can sneak in)."""
    return quote(rel, safe="/")


def _input_path(entry: Entry) -> Path | None:
    root = entry.raw.get("input_root")
    rel = safe_relpath(entry.input)
    if not isinstance(root, str) or not root or "\x00" in root or rel is None:
        return None
    root_path = Path(root)
    if not root_path.is_absolute():
        return None
    path = root_path / rel
    try:  # a link leaving the input folder was refused by the run: no preview of its target either
        if path.is_symlink() and not path.resolve().is_relative_to(root_path.resolve()):
            return None
    except (OSError, RuntimeError):  # a loop, an unreadable folder
        return None
    return path


def _rel_link(target: Path, out_dir: Path) -> str | None:
    """URL-escaped relative href from out_dir to target, ending in "/" (a folder prefix)."""
    try:
        return _href(Path(os.path.relpath(target, out_dir)).as_posix()).rstrip("/") + "/"
    except ValueError:  # e.g. another drive on Windows: no relative path exists
        return None


def _share_raw(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[str]], list[tuple[dict, dict, int]]]:
    """Factor repeated bulky values (settings, input_root, model id ...) out of the raw
    records so 5,000 copies cost one. Returns (shared values, key orders, per record
    (own values, {key: shared index}, order index)); report.js rebuilds the exact record."""
    dumped = [{k: json.dumps(v, sort_keys=True) for k, v in r.items()} for r in records]
    counts: Counter[str] = Counter(d for rec in dumped for d in rec.values() if len(d) > 12)
    shared: list[Any] = []
    shared_idx: dict[str, int] = {}
    orders: list[list[str]] = []
    order_idx: dict[tuple[str, ...], int] = {}
    out = []
    for rec, dm in zip(records, dumped):
        own: dict[str, Any] = {}
        refs: dict[str, int] = {}
        for k, v in rec.items():
            d = dm[k]
            if len(d) > 12 and counts[d] > 1:
                if d not in shared_idx:
                    shared_idx[d] = len(shared)
                    shared.append(v)
                refs[k] = shared_idx[d]
            else:
                own[k] = v
        order = tuple(rec.keys())
        if order not in order_idx:
            order_idx[order] = len(orders)
            orders.append(list(order))
        out.append((own, refs, order_idx[order]))
    return shared, orders, out


def build_data(out_dir: Path, workers: int | None = None) -> dict[str, Any]:
    """Read the manifest, build/refresh preview assets, and return the page's data blob."""
    out_dir = Path(out_dir)
    read = read_manifest(out_dir / MANIFEST_NAME)
    entries = [normalise(r) for r in read.records]
    out_abs = Path(os.path.abspath(out_dir))  # lexical, like the browser resolves "../" in a URL
    jobs = []
    links: list[tuple[str, int | None]] = []
    roots: list[str] = []
    root_idx: dict[str, int] = {}
    out_exists: list[bool | None] = []
    in_exists: list[bool | None] = []
    for e in entries:
        inp = _input_path(e)
        # absolute: the preview cache key holds these paths, and `restore report out` must
        # find the previews that `restore folder ... --out /abs/out` made
        outp = out_abs / e.output if e.output else None
        maskp = out_abs / e.mask if e.mask else None
        src = _assets.Sources(
            before=inp, after=outp, mask=maskp,
            before_sha=e.raw.get("input_sha256") if isinstance(e.raw.get("input_sha256"), str) else None,
            after_sha=e.raw.get("output_sha256") if isinstance(e.raw.get("output_sha256"), str) else None,
        )
        jobs.append((_assets.asset_key(src), src))
        # Links are rebuilt in report.js from the raw paths; here we decide which are safe to
        # offer, and the href prefix from out_dir to each input root (stored once per root).
        flags = ""
        if inp is not None:
            prefix = _rel_link(Path(e.raw["input_root"]), out_abs)
            if prefix is not None:
                if prefix not in root_idx:
                    root_idx[prefix] = len(roots)
                    roots.append(prefix)
                flags += "i"
        flags += ("o" if e.output else "") + ("m" if e.mask else "")
        links.append((flags, root_idx.get(prefix) if "i" in flags else None))
        out_exists.append(outp.is_file() if outp else None)
        in_exists.append(os.path.lexists(inp) if inp is not None else None)
    metas = _assets.build_all(out_dir, jobs, workers=workers)
    for e, exists, there, meta in zip(entries, out_exists, in_exists, metas):
        unreadable = bool(exists) and "after" in meta.get("errors", {})
        e.review = review_reasons(e, exists, unreadable, there)
    shared, orders, raws = _share_raw([e.raw for e in entries])
    items = []
    for e, (key, _), meta, link, (own, refs, oi) in zip(entries, jobs, metas, links, raws):
        flags = "".join(f for f in "bam" if meta.get(f))
        item: dict[str, Any] = {
            "s": e.status, "f": None if e.masked_fraction is None else round(e.masked_fraction, 6),
            "k": e.kind_pixels, "t": e.total_s, "w": e.width, "h": e.height, "r": e.review,
            "x": own, "xs": refs, "xo": oi,
        }
        if link[0]:
            item["l"] = link[0]
        if link[1] is not None:
            item["ri"] = link[1]
        if e.error:
            item["e"] = e.error
        if e.reused:
            item["u"] = 1
        if flags:
            item["a"], item["af"], item["pw"], item["ph"] = key, flags, meta.get("w"), meta.get("h")
        if meta.get("errors"):
            item["ae"] = meta["errors"]
        items.append(item)
    summary = summarise(entries, read.bad_lines, read.total_lines)
    summary["generated_at"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    summary["out_dir"] = out_dir.name or str(out_dir)
    return {
        "version": 1, "summary": summary, "statuses": list(SHOWN_STATUSES), "known_kinds": list(DAMAGE_KINDS),
        "review_rule": REVIEW_RULE_TEXT, "asset_dir": _assets.ASSET_DIR,
        "grid_side": _assets.GRID_SIDE, "view_side": _assets.VIEW_SIDE,
        "roots": roots, "shared": shared, "orders": orders, "items": items,
    }


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def build_html(data: dict[str, Any]) -> str:
    """Fill the template: inlined style and script, escaped data, CSP with their hashes."""
    style = _package_text("report.css")
    script = _package_text("report.js")
    csp = "; ".join([
        "default-src 'none'",
        # 'self' covers a static server; file: because some browsers give file:// pages an
        # opaque origin that 'self' does not match. Neither allows a network load.
        "img-src 'self' file: data:",
        f"style-src {_csp_hash(style)}",
        f"script-src {_csp_hash(script)}",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    values = {
        "CSP": html.escape(csp, quote=True),
        "TITLE": html.escape(f"Restoration report: {data['summary'].get('out_dir', '')}"),
        "STYLE": style,
        "SCRIPT": script,
        "DATA": script_json(data),
    }
    template = _package_text("template.html")
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], template)


def _atomic_write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def render(out_dir: Path, workers: int | None = None) -> Path:
    """Build ``out_dir/report.html`` (and ``out_dir/report_assets/``) from
    ``out_dir/manifest.jsonl``; returns the html path. Raises ManifestError if there is no
    readable manifest. Missing or corrupt image files become placeholders, never errors."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST_NAME).is_file():
        raise ManifestError(f"no {MANIFEST_NAME} in {out_dir}")
    data = build_data(out_dir, workers=workers)
    path = out_dir / REPORT_NAME
    _atomic_write_text(path, build_html(data))
    for stale in out_dir.glob(f".{REPORT_NAME}{TEMP_MARK}*"):  # a killed build's temp file
        stale.unlink(missing_ok=True)
    return path
