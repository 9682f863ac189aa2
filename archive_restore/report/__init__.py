"""The before/after review report: ``render(out_dir)`` turns ``OUT_DIR/manifest.jsonl`` into a
self-contained ``OUT_DIR/report.html`` plus previews in ``OUT_DIR/report_assets/``.

Modules: ``records`` (manifest reading, the needs-review rule, the summary), ``assets``
(preview cache), ``page`` (data blob, escaping, CSP, atomic write). The page's template,
script and style are package files (``template.html``, ``report.js``, ``report.css``),
inlined into the HTML so the folder works from file:// with no network.
"""

from __future__ import annotations


from archive_restore.report.page import render
from archive_restore.report.records import ManifestError

__all__ = ["render", "ManifestError"]
