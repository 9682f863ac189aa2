"""archive-restore: batch restoration of scanned photo archives.

The package owns no state and has no import-time side effects. Sub-packages:
``inpaint`` (torch: models, training, export), ``runtime`` (ONNX Runtime only),
``masks`` (OpenCV damage detectors), ``report`` (HTML review page), plus
``io``, ``damage``, ``prefill``, ``pipeline``, ``evaluate`` and the Typer ``cli``.
"""

__version__ = "0.1.0"
