"""``restore_folder``: the streaming loop that restores a whole scan archive, resumably.

Owns: walking INPUT_DIR, the per-image life cycle (hash -> resume check -> decode -> mask
-> windows -> inference -> encode -> manifest record), the threads and bounded queues that
overlap those stages, the manifest file (``docs/manifest.md``), resume and Ctrl-C handling.
It never imports torch; ONNX Runtime is reached only through the session object.

Stages and memory bound::

    files ─► decode workers (N threads: hash, resume check, read_scan, user/auto mask, plan)
          ─► infer queue (size 1) ─► inference thread (windows batched across images)
          ─► write queue (size 1) ─► writer thread (write_image, mask PNG, manifest line)

A semaphore admits at most ``workers + 2`` images between decode and manifest line, so peak
memory depends on the largest scans, never on the number of images. Whole images stay in
their own dtype; only windows are converted to float.

Policies:
- Files are visited in sorted order, recursively; extensions .jpg .jpeg .png .tif .tiff
  .bmp .webp, any case. A MASK_DIR inside INPUT_DIR is not walked (it holds masks). Directory symlinks are not followed; a file symlink whose target
  is outside INPUT_DIR fails ("symlink points outside the input folder").
- User masks: ``MASK_DIR/<relative path>.png`` (``box1/a.jpg.png``: the layout this module
  writes to ``OUT/masks/`` and ``restore masks`` writes, so either can be edited and fed
  back), else the older ``MASK_DIR/<relative path with its extension replaced by .png>``
  when no other scan maps to that name (``UserMasks``); black = keep, other colours fill,
  transparent keeps (``io.read_mask``); applied to the upright image. A MISSING user mask
  means "nothing to fill by hand" (an empty user mask), not an error; a mask of the wrong size
  fails that image. ``OUT/masks`` itself may be given back (edited in place); records hold the
  written mask's sha256, and a person's mask there is never overwritten (see ``mask_state``).
- Empty final mask: the input is copied byte for byte (status ``unchanged``, mask null).
- Resume: an image is ``skipped`` when the last manifest record for it succeeded with the
  same input sha256, settings and model id, and its output (and mask) still exist with the
  recorded hash. ``force=True`` redoes everything.
- Every write is atomic (temp name + fsync + rename); stale temp files from a killed run are
  removed at start. The manifest line is appended and fsynced after the files it names.
- SIGINT (Ctrl-C), SIGTERM, SIGHUP: no new image is started; images already decoded are
  finished, written and recorded; the summary says ``interrupted`` (``stopped_by``: the
  signal). A second signal ends the process at once with exit code 128 + its number.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import os
import queue
import re
import signal
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import numpy as np

from archive_restore import __version__
from archive_restore import io as aio
from archive_restore.config import MaskConfig, RuntimeConfig, to_dict
from archive_restore.runtime import windows as win
from archive_restore.runtime.grain import add_grain
from archive_restore.runtime.tone import ToneCurve

MANIFEST_NAME = "manifest.jsonl"
MASKS_DIRNAME = "masks"
JPEG_POLICY = "source quantization tables and subsampling; quality>=95 when the source has none"
OK_STATUSES = ("restored", "unchanged", "skipped")
_STOP = object()  # queue sentinel


class OutputError(RuntimeError):
    """The run cannot go on writing its output folder (the manifest, e.g. on a full disk)."""


class UsageError(ValueError):
    """The run cannot start as asked (bad folders or options); the message is one line."""


class Session(Protocol):
    """What the pipeline needs from an inference session (``runtime.session.InpaintSession``)."""

    provider: str
    model_id: str
    model_name: str

    def fill(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """images: (h,w,3) float32 in [0,1]; masks: (h,w) bool -> filled (h,w,3) float32."""
        ...


@dataclass
class Summary:
    """Outcome of a run. counts: images per status; failed: (input, error) pairs."""

    input_dir: Path
    out_dir: Path
    manifest: Path
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in ("restored", "unchanged", "skipped", "failed")})
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    provider: Optional[str] = None
    model_id: Optional[str] = None
    model_name: Optional[str] = None
    seconds: float = 0.0
    megapixels: float = 0.0
    # files in the --masks folder that no scan of the run looks for (misnamed or orphaned
    # masks: almost always a mistake worth telling), relative POSIX paths, sorted
    unused_masks: list[str] = field(default_factory=list)
    # masks in OUT/masks that differ from what the run wrote (edited in place) for images that
    # were skipped: the edits were not used; relative POSIX paths of the scans
    edited_masks: list[str] = field(default_factory=list)
    # what the walk passed over: "hidden" entries and other files by extension (io.walk_scans)
    ignored: dict[str, int] = field(default_factory=dict)
    stopped_by: Optional[int] = None  # the signal that interrupted the run (SIGINT, SIGTERM, SIGHUP)
    # folders of INPUT that could not be read ("box2/", error): their scans were not seen. Not
    # manifest records (the manifest is one record per image, and a folder fixed later would
    # keep its failure there for ever); the command says them and exits 1
    unreadable_folders: list[tuple[str, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Job:
    """One image travelling through the stages."""

    rel: str
    path: Path
    t0: float
    record: dict[str, Any]
    status: str = "failed"
    error: Optional[str] = None
    scan: Optional[aio.Scan] = None
    mask: Optional[np.ndarray] = None
    tone: Optional[ToneCurve] = None  # set for monotone RGB scans when the tone lock is on
    windows: list[win.Window] = field(default_factory=list)
    pending: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    keep_mask_file: bool = False  # the mask is the user's own file in OUT/masks, as it is


# ----------------------------------------------------------------------------- helpers


def fill_windows(session: Session,
                 items: Sequence[tuple[np.ndarray, np.ndarray, win.Window, Optional[ToneCurve]]]) -> None:
    """Fill windows in one session call and paste them back IN PLACE.

    items: (pixels (H, W, C) uint8/uint16 scan pixels, written into; mask (H, W) bool, True =
    fill; window; tone curve or None), windows of one or several images. Each window's crop
    is converted to the model's (h, w, 3) float32 RGB in [0, 1], filled (what earlier rounds
    pasted counts as known, ``windows.hole_mask``), held to the scan's tone when a curve is
    given, and only its core's mask pixels are written back. The items must not hold windows
    of one image from two rounds (``windows.plan_windows``). Raises RuntimeError when the
    session returns the wrong number, shape or non-finite values."""
    crops = [win.crop(p, w) for p, _, w, _ in items]
    mcrops = [win.hole_mask(win.crop(m, w), w) for _, m, w, _ in items]
    filled = session.fill([aio.to_model_rgb(c) for c in crops], mcrops)
    if len(filled) != len(items):
        raise RuntimeError(f"session returned {len(filled)} windows for {len(items)}")
    for (pixels, _, w, tone), c, mc, f in zip(items, crops, mcrops, filled):
        f = np.asarray(f, dtype=np.float32)
        if f.shape != c.shape[:2] + (3,) or not np.isfinite(f).all():
            raise RuntimeError(f"model output for a window is {f.shape} or not finite")
        if tone is not None:
            f = tone.apply(f, mc)
        win.paste(pixels, aio.from_model_rgb(c, f, mc), mc, w)


def plan_fill(pixels: np.ndarray, mask: np.ndarray, runtime: RuntimeConfig) -> tuple[list[win.Window], Optional[ToneCurve]]:
    """How one image will be filled: its windows (``runtime.window``, ``runtime.context``) and,
    with ``runtime.tone_lock``, the tone curve of a monotone scan (else None).
    pixels: (H, W, C) uint8/uint16 scan pixels; mask: (H, W) bool, True = fill."""
    windows = win.plan_windows(mask, runtime.window, runtime.context)
    return windows, (ToneCurve.fit(pixels, mask) if runtime.tone_lock else None)


def restore_pixels(session: Session, pixels: np.ndarray, mask: np.ndarray,
                   runtime: RuntimeConfig = RuntimeConfig()) -> np.ndarray:
    """What ``restore_folder`` does to one image's pixels once its mask is known, in one call
    (``restore evaluate`` and the scripts measure the product through it): the same windows
    (``runtime.window``, ``runtime.context``), tone lock (``runtime.tone_lock``), batches of
    ``runtime.batch`` windows round by round, and paste. Grain (``runtime.grain``) is not
    added here.
    pixels: (H, W, C) uint8/uint16, not modified; mask: (H, W) bool, True = fill.
    Returns a new array like ``pixels`` with only the mask's pixels changed."""
    out = pixels.copy()
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return out
    windows, tone = plan_fill(pixels, mask, runtime)
    step = max(1, int(runtime.batch))
    for r in sorted({w.round for w in windows}):
        todo = [w for w in windows if w.round == r]
        for i in range(0, len(todo), step):
            fill_windows(session, [(out, mask, w, tone) for w in todo[i : i + step]])
    return out


def check_folders(input_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Resolve both folders; raise ``UsageError`` if INPUT is not a folder, OUT is inside
    (or equal to) INPUT, or INPUT is inside OUT. Returns (input_dir, out_dir) resolved."""
    inp = Path(input_dir).resolve()
    out = Path(out_dir).resolve()
    if not inp.is_dir():
        raise UsageError(f"input folder not found: {input_dir}")
    if out == inp or out.is_relative_to(inp):
        raise UsageError(f"output folder {out} is inside the input folder {inp}; choose another --out (the input tree is never written)")
    if inp.is_relative_to(out):
        raise UsageError(f"input folder {inp} is inside the output folder {out}; outputs could land on inputs, choose another --out")
    # the same folders under other paths (bind mounts, a share mounted twice): by identity
    if any(_same_folder(a, inp) for a in (out, *out.parents)):
        raise UsageError(f"output folder {out} is the input folder {inp}, or inside it, under another path (a bind "
                         "mount or a share mounted twice); choose another --out (the input tree is never written)")
    if any(_same_folder(a, out) for a in (inp, *inp.parents)):
        raise UsageError(f"input folder {inp} is inside the output folder {out} under another path; choose another --out")
    return inp, out


def _same_folder(a: Path, b: Path) -> bool:
    """Whether two existing paths are the same folder (device and inode); False if either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_no_links(out: Path, rel: str) -> None:
    """Raise ``aio.ImageError`` if a folder on the way from OUT to ``rel`` is a symlink: the
    write would land wherever it points (into the input tree, even), not in OUT."""
    p = out
    for part in rel.split("/")[:-1]:
        p = p / part
        if p.is_symlink():
            raise aio.ImageError(f"{p.relative_to(out).as_posix()} in the output folder is a link; outputs are never "
                                 "written through links (remove it)")


def default_out_dir(input_dir: Path) -> Path:
    """``<INPUT_DIR>_restored`` beside the input as named (a symlinked INPUT_DIR gets its
    output beside the link, where the user looks, not beside the link's target)."""
    inp = Path(os.path.abspath(input_dir))
    return inp.with_name(inp.name + "_restored")


def describe_ignored(ignored: dict[str, int]) -> str:
    """``Summary.ignored`` in words, most common first: "12 .cr2, 3 .heic, 40 hidden"."""
    parts = [f"{n} {ext or '(no extension)'}" for ext, n in sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))
             if ext not in ("hidden", "folder link")]
    if ignored.get("folder link"):
        parts.append(f"{ignored['folder link']} folder link{'s' if ignored['folder link'] > 1 else ''} (not followed)")
    if ignored.get("hidden"):
        parts.append(f"{ignored['hidden']} hidden (names starting with '.', @eaDir and other NAS or recycle folders)")
    return ", ".join(parts)


def list_inputs(input_dir: Path, exclude: Sequence[Path] = (),
                ignored: Optional[collections.Counter] = None) -> list[tuple[str, Path, Optional[str]]]:
    """Image files under ``input_dir`` (sorted, recursive) as (relative POSIX path, path, error):
    ``io.walk_scans`` (hidden entries and NAS housekeeping folders not walked, unreadable
    folders and refused links as per-entry errors, ``ignored`` counting what was passed over)."""
    return aio.walk_scans(input_dir, exclude, ignored)


def mark_mask_collisions(tasks: list[tuple[str, Path, Optional[str]]],
                         earlier: Optional[dict[str, dict[str, Any]]] = None) -> list[tuple[str, Path, Optional[str]]]:
    """``list_inputs``' tasks with an error on every input whose output path is where another
    input's mask goes (``INPUT/masks/a.jpg.png`` beside ``INPUT/a.jpg``: typically a mask folder
    kept inside INPUT): writing both would let one overwrite the other. ``earlier``
    (``History.last_ok``: input -> its last successful record): an input whose mask would go
    where an earlier run wrote another input's restored file fails too, so that file is not
    replaced (INPUT/a.jpg added after INPUT/masks/a.jpg.png was restored)."""
    # casefolded: on case-insensitive file systems Masks/a.jpg.png is masks/a.jpg.png
    mask_paths = {f"{MASKS_DIRNAME}/{aio.mask_name(rel)}".casefold() for rel, _, _ in tasks}
    why = (f"its output would be written where another input's mask goes (OUT/{MASKS_DIRNAME}/...); "
           "move mask folders out of the input folder, or pass them with --masks")

    def collides(rel: str) -> bool:  # the path itself, or a folder on it, is a mask's path
        parts = rel.casefold().split("/")
        return any("/".join(parts[:i]) in mask_paths for i in range(2, len(parts) + 1))

    written = {str(rec["output"]).casefold(): src for src, rec in (earlier or {}).items() if rec.get("output")}

    def overwrites(rel: str) -> Optional[str]:
        src = written.get(f"{MASKS_DIRNAME}/{aio.mask_name(rel)}".casefold())
        if src is None or src == rel:
            return None
        return (f"its mask would replace OUT/{MASKS_DIRNAME}/{aio.mask_name(rel)}, which an earlier run restored from "
                f"the input {src}; move mask folders out of the input folder, or pass them with --masks")

    return [(rel, path, err or (why if collides(rel) else overwrites(rel))) for rel, path, err in tasks]


def ignores_case(folder: Path) -> tuple[bool, bool]:
    """Whether the file system holding ``folder`` (which exists) treats names that differ only
    (a) in case, (b) in Unicode normalisation ("é" composed or not) as one file: exFAT and NTFS
    drives do (a), macOS's APFS and HFS+ both. Asked of the file system with probe files, not
    guessed from the platform."""
    tag = f"{os.getpid()}-{threading.get_ident()}"
    found = []
    for name, other in ((f".case-Probe-{tag}", f".CASE-pROBE-{tag}"),
                        (unicodedata.normalize("NFC", f".norm-é-{tag}"), unicodedata.normalize("NFD", f".norm-é-{tag}"))):
        probe = folder / name
        try:
            probe.write_bytes(b"")
        except OSError:
            found.append(False)
            continue
        try:
            found.append(os.path.exists(folder / other))
        finally:
            probe.unlink(missing_ok=True)
    return found[0], found[1]


def mark_case_collisions(tasks: list[tuple[str, Path, Optional[str]]], out: Path) -> list[tuple[str, Path, Optional[str]]]:
    """``list_inputs``' tasks with an error on every input whose relative path equals another's
    but for case (``box/A.jpg`` and ``box/a.jpg``) or Unicode normalisation ("é" composed or
    not), as far as the file system of the output folder ``out`` folds them (``ignores_case``):
    there both would be written to one file, each run replacing the other's result. Both fail,
    with the other's name. Tasks are returned as they are where ``out`` tells names apart."""
    fold_case, fold_norm = ignores_case(out)
    if not (fold_case or fold_norm):
        return tasks

    def key(rel: str) -> str:
        rel = _nfc(rel) if fold_norm else rel
        return rel.casefold() if fold_case else rel

    groups: dict[str, list[str]] = collections.defaultdict(list)
    for rel, _, _ in tasks:
        groups[key(rel)].append(rel)
    out = []
    for rel, path, err in tasks:
        same = [o for o in groups[key(rel)] if o != rel]
        if same and err is None:
            err = (f"its name differs from {same[0]} only in case or accents, and the output folder's file system "
                   "does not tell them apart: both would be written to one file; rename one, or use an output "
                   "folder on a case-sensitive file system")
        out.append((rel, path, err))
    return out


@dataclass
class History:
    """What the runs recorded in a manifest (``manifest_history``), read once per run.

    - latest: input -> its last record (what a rerun may skip on).
    - written: input -> (mask path under OUT, its sha256, whether it is a person's file) of the
      mask last left in OUT/masks: a later ``restored`` or ``skipped`` record replaces it, an
      ``unchanged`` one (the mask was removed) drops it, a ``failed`` one leaves it (a failed
      image's files stay). A person's file: a run kept the user mask it read as it was (its
      ``user_mask_sha256`` is the mask's: OUT/masks given back in place, wherever OUT is now)
      and it differs from the last mask a run made for that input (an edit; given back
      unedited, it is the run's own). Records without ``mask_sha256`` (before session 25): none.
    - last_ok: input -> its last successful record (``restored``, ``unchanged`` or ``skipped``).
    - legacy: inputs for which a record from before session 25 named a mask (its file may still
      be there, unknown to the hashes).
    """

    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    written: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    last_ok: dict[str, dict[str, Any]] = field(default_factory=dict)
    legacy: set[str] = field(default_factory=set)


def manifest_history(path: Path) -> History:
    """Read manifest ``path`` (none: an empty history) through the one manifest reader,
    ``report.records``, every record in order; see ``History``."""
    from archive_restore.report.records import ManifestError  # noqa: PLC0415
    from archive_restore.report.records import read_manifest as read_records  # noqa: PLC0415

    h = History()
    if not path.is_file():
        return h
    try:
        records = read_records(path, every=True).records
    except ManifestError:
        return h
    made: dict[str, str] = {}  # input -> sha256 of the last mask a run made itself
    for rec in records:
        rel = rec["input"]
        h.latest[rel] = rec
        if rec.get("status") not in OK_STATUSES:
            continue
        h.last_ok[rel] = rec
        h.written.pop(rel, None)
        sha = rec.get("mask_sha256")
        # only the mask's own place in OUT/masks: a record naming another file is ignored
        if rec.get("mask") != f"{MASKS_DIRNAME}/{aio.mask_name(rel)}":
            continue
        if not isinstance(sha, str):
            h.legacy.add(rel)
            continue
        settings = rec.get("settings") if isinstance(rec.get("settings"), dict) else {}
        kept = settings.get("user_mask_sha256") == sha
        if not kept:
            made[rel] = sha
        h.written[rel] = (rec["mask"], sha, kept and made.get(rel) != sha)
    return h


_TEMP_RE = re.compile(r"\..+" + re.escape(aio.TEMP_MARK) + r"[0-9a-f]{8}", re.DOTALL)  # fullmatch: names may hold newlines


REPORT_NAME, REPORT_ASSETS = "report.html", "report_assets"  # report.page / report.assets own them


def remove_stale_temps(out_dir: Path) -> int:
    """Delete temp files left in OUT_DIR by a killed run (``.<name>.partial-<hex8>``); the
    report's files are left to the report (a report may be building while a new run starts:
    ``restore folder`` builds it after it has released OUT)."""
    n = 0
    if not out_dir.is_dir():
        return 0
    for dirpath, dirs, files in os.walk(out_dir):
        if Path(dirpath) == out_dir:  # the report's own files: a report being built (its temps are
            dirs[:] = [d for d in dirs if d != REPORT_ASSETS]  # live) cleans them itself
            files = [f for f in files if not f.startswith(f".{REPORT_NAME}")]
        for name in files:
            if _TEMP_RE.fullmatch(name):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    n += 1
                except OSError:
                    pass
    return n


def report_activity(activity: Optional[Callable[[str, str, float], None]], rel: str, stage: str, share: float) -> None:
    """``activity(rel, stage, share)`` when there is one (``restore_folder``'s, ``write_masks``'s);
    its errors are ignored: a display problem must never fail an image."""
    if activity is not None:
        try:
            activity(rel, stage, share)
        except Exception:
            pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, aio.ImageError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _put(q: "queue.Queue[Any]", item: Any, abort: threading.Event) -> bool:
    """Blocking put that gives up when ``abort`` is set (so a crashed stage cannot deadlock)."""
    while True:
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            if abort.is_set():
                return False


class UserMasks:
    """Where each scan's mask is in a ``--masks`` folder.

    ``MASK_DIR/<rel>.png`` (``io.mask_name``: the layout ``restore folder`` writes to
    ``OUT/masks/`` and ``restore masks`` writes, so either can be edited and fed back) is
    looked for first; then the older ``MASK_DIR/<rel with its extension replaced by .png>``
    (``io.legacy_mask_name``), but only when no other scan of the run maps to that name: a
    ``box1/a.png`` that could be the mask of ``box1/a.jpg`` or of ``box1/a.tif`` is refused
    for both with a per-file error, never given to one of them by guess. Names are matched
    as written first, then in Unicode NFC (macOS and some copy tools store "é" decomposed,
    so a mask named there would otherwise not be found: the two spellings look identical)."""

    def __init__(self, masks_dir: Path, rels: Sequence[str]) -> None:
        self.dir = Path(masks_dir)
        legacy = collections.Counter(aio.legacy_mask_name(r) for r in rels)
        exact = {aio.mask_name(r) for r in rels}
        self._shared = {n for n, c in legacy.items() if c > 1 or n in exact}
        self._claimed = {_nfc(n) for n in exact | set(legacy)}  # every name some scan looks for
        self._present: dict[str, str] = {}  # NFC name -> the name on disk, for files and links
        for dirpath, dirnames, files in os.walk(self.dir):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            # a link to a folder where a mask's name is (box/a.jpg.png -> somewhere/) fails as
            # "not a file"; a linked folder of masks (box1 -> elsewhere) is walked by find()
            for name in files + [d for d in dirnames if d.lower().endswith(".png") and Path(dirpath, d).is_symlink()]:
                rel = Path(dirpath, name).relative_to(self.dir).as_posix()
                self._present.setdefault(_nfc(rel), rel)

    def _lookup(self, name: str) -> Optional[Path]:
        """The path of mask ``name`` as it is on disk (any normalisation), or None. Raises
        ``aio.ImageError`` when something is there that is not a readable file."""
        p = self.dir / name
        if not os.path.lexists(p):
            on_disk = self._present.get(_nfc(name))
            if on_disk is None:
                return None
            p = self.dir / on_disk
        if not p.is_file():
            what = "a link to nothing" if p.is_symlink() and not p.exists() else "not a file"
            raise aio.ImageError(f"user mask {name} is {what}")
        return p

    def find(self, rel: str) -> Optional[Path]:
        """The mask file of scan ``rel``, or None when it has none. Raises ``aio.ImageError`` (a
        per-file failure: the batch goes on) for an ambiguous old-layout name, or when the mask's
        name holds something other than a file (a directory, a dangling link)."""
        exact = self._lookup(aio.mask_name(rel))
        if exact is not None:
            return exact
        name = aio.legacy_mask_name(rel)
        found = self._lookup(name)
        if found is not None and name in self._shared:
            raise aio.ImageError(f"user mask {name} could belong to more than one scan; name it {aio.mask_name(rel)}")
        return found

    def unused(self) -> list[str]:
        """Files under the mask folder (hidden ones and stale temp files aside) that are not
        the mask of any scan of the run in either layout: masks that name no scan. Sorted."""
        return sorted(disk for key, disk in self._present.items()
                      if key not in self._claimed and not any(part.startswith(".") for part in disk.split("/")))


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def render_report(out_dir: Path) -> Path:
    """Render OUT_DIR/report.html from the manifest (``archive_restore.report.render``)."""
    from archive_restore.report import render  # noqa: PLC0415

    return render(Path(out_dir))


# ----------------------------------------------------------------------------- the run


LOCK_NAME = ".restore.lock"


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold OUT for one run: a second run on the same OUT (which would remove this one's temp
    files as stale and race on outputs and masks) is refused with ``UsageError``. An advisory
    ``flock`` on ``OUT/.restore.lock``: the kernel drops it when the process ends, even when
    killed, so no stale lock ever blocks a rerun. Where ``fcntl`` is missing, no lock."""
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # Windows
        yield
        return
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield  # a file system without locks (some network mounts): run unlocked
                return
            raise UsageError(f"another run is writing to {out} (it holds {out / LOCK_NAME}); wait for it to end, "
                             "or choose another --out") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def restore_folder(*args: Any, **kwargs: Any) -> Summary:
    """Restore every image under ``input_dir`` into ``out_dir`` (``_restore_folder``'s
    arguments and contract), holding OUT for the run (``out_lock``)."""
    with contextlib.ExitStack() as hold:
        return _restore_folder(*args, _hold=hold, **kwargs)


def _restore_folder(
    input_dir: Path,
    out_dir: Optional[Path] = None,
    *,
    auto_mask: bool = False,
    masks_dir: Optional[Path] = None,
    mask_cfg: MaskConfig = MaskConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
    force: bool = False,
    session: Optional[Session] = None,
    model_path: Optional[Path] = None,
    progress: Optional[Callable[[dict[str, Any], Summary], None]] = None,
    on_start: Optional[Callable[[Summary], None]] = None,
    activity: Optional[Callable[[str, str, float], None]] = None,
    handle_sigint: bool = True,
    stop: Optional[threading.Event] = None,
    _hold: Optional[contextlib.ExitStack] = None,
) -> Summary:
    """Restore every image under ``input_dir`` into ``out_dir`` (see the module docstring).

    auto_mask / masks_dir: where masks come from (at least one; both are united).
    session: an object with the ``Session`` interface; default: ``InpaintSession(model_path,
        runtime.device)`` (raises ``RuntimeUnavailable`` when the device cannot be used).
    progress: called from the writer thread after each manifest record.
    activity: called as an image moves on, so that a long one can be shown: (rel, stage, share
        done in 0..1) with stage "reading", "detecting" (the share of the detector's work, per
        tile), "filling" (the share of the image's windows filled, per batch) or "writing";
        from the decode, inference and writer threads, so it must be thread-safe and quick.
        Its errors are ignored.
    on_start: called once with the summary (total, provider, model) before images start.
    handle_sigint: install a Ctrl-C handler for the run (main thread only).
    Returns a ``Summary``; per-image errors are in the manifest, never raised.
    """
    if not auto_mask and masks_dir is None:
        raise UsageError("give --auto-mask, --masks MASK_DIR, or both")
    if out_dir is None:
        out_dir = default_out_dir(input_dir)
    inp, out = check_folders(Path(input_dir), Path(out_dir))
    mdir = Path(masks_dir).resolve() if masks_dir is not None else None
    if mdir is not None and not mdir.is_dir():
        raise UsageError(f"masks folder not found: {masks_dir}")
    own_masks = mdir is not None and mdir == out / MASKS_DIRNAME  # a run's masks, edited in place
    if mdir is not None and not own_masks and (mdir == out or mdir.is_relative_to(out)):
        raise UsageError(f"masks folder {mdir} is inside the output folder {out}, which the run writes; copy the masks "
                         f"elsewhere (only the run's own {out / MASKS_DIRNAME} can be given back in place)")
    if own_masks and auto_mask:
        raise UsageError(f"--masks {mdir} (the run's own masks, given back in place) works without --auto-mask: "
                         "detection would be added to your edits and written over them, so false alarms you "
                         f"erased would come back; run without --auto-mask, or copy {mdir} elsewhere to unite the two")
    if mdir is not None and mdir == inp:
        raise UsageError(f"--masks is the input folder {inp}: its masks would be read as scans too; keep them in a "
                         f"folder of their own (e.g. {inp / 'masks'}, which is then not walked)")
    if session is None:
        from archive_restore.runtime.session import InpaintSession  # noqa: PLC0415

        session = InpaintSession(model_path, device=runtime.device, batch=runtime.batch, pyramid=runtime.pyramid)
    detect = None
    if auto_mask:
        from archive_restore import masks as masks_mod  # noqa: PLC0415

        detect = masks_mod.detect  # looked up at run time (tests replace it)
    detector_id = None
    if auto_mask and mask_cfg.detector == "learned":
        from archive_restore.masks.learned import detector_id as learned_id  # noqa: PLC0415

        try:
            detector_id = learned_id(mask_cfg.detector_graph)
        except FileNotFoundError as exc:
            raise UsageError(f"--detector learned: {exc}") from exc

    manifest_path = out / MANIFEST_NAME
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(manifest_path, "ab"):  # the run appends to it: fail now, in one line, if it cannot
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to the output folder {out}: {exc.strerror or _one_line(exc)}") from exc
    if _hold is not None:
        _hold.enter_context(out_lock(out))  # before the stale temps: a live run's are not stale
    remove_stale_temps(out)
    history = manifest_history(manifest_path)
    previous = {} if force else history.latest
    # also under --force: no edited mask is overwritten, no other folder's result replaced
    written, last_ok, legacy = history.written, history.last_ok, history.legacy
    ignored: collections.Counter = collections.Counter()
    tasks = mark_mask_collisions(list_inputs(inp, exclude=[mdir] if mdir is not None else [], ignored=ignored), last_ok)
    unreadable = [(rel, err or "") for rel, _, err in tasks if rel.endswith("/")]
    tasks = [t for t in tasks if not t[0].endswith("/")]
    tasks = mark_case_collisions(tasks, out)
    user_masks = UserMasks(mdir, [rel for rel, _, _ in tasks]) if mdir is not None else None
    summary = Summary(input_dir=inp, out_dir=out, manifest=manifest_path, total=len(tasks), ignored=dict(ignored),
                      unreadable_folders=unreadable)
    if user_masks is not None:
        summary.unused_masks = user_masks.unused()
    summary.provider, summary.model_id, summary.model_name = session.provider, session.model_id, session.model_name
    base_settings = {
        "auto_mask": bool(auto_mask),
        "mask_sensitivity": mask_cfg.sensitivity if auto_mask else None,
        "mask_config": to_dict(mask_cfg) if auto_mask else None,
        "detector_id": detector_id,
        "masks_dir": str(mdir) if mdir is not None else None,
        "model_id": session.model_id,
        "window": runtime.window,
        "context": runtime.context,
        # what the session really does (a caller's session may have no pyramid pre-fill)
        "pyramid": bool(getattr(session, "pyramid", False)),
        "grain": float(runtime.grain),
        "tone_lock": bool(runtime.tone_lock),
        "jpeg_policy": JPEG_POLICY,
    }
    base_settings = json.loads(json.dumps(base_settings))
    if on_start is not None:
        on_start(summary)

    stop = stop or threading.Event()
    abort = threading.Event()
    fatal: list[BaseException] = []
    workers = max(1, int(runtime.workers))
    admit = threading.BoundedSemaphore(workers + 2)
    task_q: "queue.Queue[Any]" = queue.Queue()
    infer_q: "queue.Queue[Any]" = queue.Queue(maxsize=1)
    write_q: "queue.Queue[Any]" = queue.Queue(maxsize=1)
    for t in tasks:
        task_q.put(t)
    for _ in range(workers):
        task_q.put(_STOP)
    alive = [workers]
    alive_lock = threading.Lock()
    t_start = time.perf_counter()

    def base_record(rel: str) -> dict[str, Any]:
        return {
            "input": rel,
            "input_root": str(inp),
            "output": None,
            "mask": None,
            "mask_sha256": None,
            "input_sha256": None,
            "output_sha256": None,
            "status": "failed",
            "error": None,
            "width": None,
            "height": None,
            "format": None,
            "mode": None,
            "masked_fraction": 0.0,
            "kind_pixels": {},
            "windows": 0,
            "tone_locked": False,
            "timings": {},
            "provider": session.provider,
            "model_id": session.model_id,
            "model_name": session.model_name,
            "settings": dict(base_settings),
            "finished_at": None,
            "tool_version": __version__,
        }

    def other_root(job: _Job) -> None:
        """Refuse (per image, ``--force`` too) to replace an output that a run of ANOTHER input
        folder wrote, when this input differs from the one it was made from: a second archive
        run into the same OUT would silently overwrite the first one's results. The same file
        under a moved or renamed input folder is fine (same hash)."""
        last = last_ok.get(job.rel)
        if not last or last.get("input_root") in (None, str(inp)):
            return
        if last.get("input_sha256") != job.record["input_sha256"] and (out / job.rel).exists():
            raise aio.ImageError(f"the output folder holds this path's result from another input folder "
                                 f"({last['input_root']}) and this scan differs from the one it was made from; not "
                                 f"replaced: use another --out for this folder, or delete {job.rel} from the output "
                                 "folder if it should be replaced")

    def mask_state(rel: str) -> Optional[str]:
        """Whose is the file at OUT/masks/<rel>.png: None (none there, or the mask a run wrote,
        as it wrote it), "edited" (it differs from what the run wrote: edited by hand), "users"
        (a person's file, given back in place and kept), "added" (a file where the last run left
        no mask: put there by hand). Records from before session 25 hold no mask hash: None."""
        p = out / MASKS_DIRNAME / aio.mask_name(rel)
        try:
            if not p.is_file():
                return None
            if rel not in written:  # no run of session 25 or later left a mask here
                last = last_ok.get(rel)
                fresh = last is not None and "mask_sha256" in last and not last.get("mask") and rel not in legacy
                return "added" if fresh else None
            _, sha, users = written[rel]
            if aio.sha256_file(p) != sha:
                return "edited"
            return "users" if users else None
        except OSError:
            return None

    def remove_old_mask(rel: str) -> None:
        """An image now left unchanged: the mask an earlier run wrote for it goes (it would
        come back in the next review round), unless it was edited since (then the image has
        failed before this) or it is the user's own empty mask given back in place."""
        if rel not in written or own_masks:
            return
        name, sha, users = written[rel]
        try:
            if not users and (out / name).is_file() and aio.sha256_file(out / name) == sha:
                (out / name).unlink()
        except OSError:
            pass

    def resumable(job: _Job) -> Optional[dict[str, Any]]:
        prev = previous.get(job.rel)
        rec = job.record
        if not prev or prev.get("status") not in OK_STATUSES:
            return None
        if prev.get("input_sha256") != rec["input_sha256"] or prev.get("settings") != rec["settings"]:
            return None
        if prev.get("model_id") != rec["model_id"] or not prev.get("output") or not prev.get("output_sha256"):
            return None
        outp = out / prev["output"]
        if not outp.is_file() or (prev.get("mask") and not (out / prev["mask"]).is_file()):
            return None
        if aio.sha256_file(outp) != prev["output_sha256"]:
            return None
        return prev

    def tell(rel: str, stage: str, share: float) -> None:
        report_activity(activity, rel, stage, share)

    def prepare(job: _Job) -> None:
        """Decode stage for one image: fills job (status, scan, mask, windows) or raises."""
        rec = job.record
        t = time.perf_counter()
        tell(job.rel, "reading", 0.0)
        try:
            rec["input_sha256"] = aio.sha256_file(job.path)
        except OSError as exc:
            raise aio.ImageError(f"unreadable: {exc.strerror or _one_line(exc)}") from exc
        umask_file = None
        if user_masks is not None:
            umask_file = user_masks.find(job.rel)
            rec["settings"]["user_mask_sha256"] = aio.sha256_file(umask_file) if umask_file is not None else None
        other_root(job)
        state = mask_state(job.rel)
        prev = resumable(job)
        if prev is not None:
            for key in ("output", "mask", "mask_sha256", "output_sha256", "width", "height", "format", "mode", "masked_fraction", "kind_pixels", "windows", "tone_locked"):
                rec[key] = prev.get(key)
            job.status = "skipped"
            job.timings["decode"] = time.perf_counter() - t
            if state == "edited":
                summary.edited_masks.append(job.rel)
            return
        if state is not None and not own_masks:
            what = {"edited": "was edited after the run wrote it", "users": "is your mask, given back in place",
                    "added": "was put there after the run"}[state]
            raise aio.ImageError(
                f"{MASKS_DIRNAME}/{aio.mask_name(job.rel)} in the output folder {what}; this run does not read it "
                f"and would overwrite it: use it with --masks {out / MASKS_DIRNAME}, or delete the file to redo "
                "the image without it")
        scan = aio.read_scan(job.path, runtime.max_pixels, runtime.jpeg_quality)
        aio.check_writable(scan)
        job.timings["decode"] = time.perf_counter() - t
        rec.update(width=scan.width, height=scan.height, format=scan.format, mode=scan.mode)
        t = time.perf_counter()
        shape = (scan.height, scan.width)
        mask = np.zeros(shape, bool)
        kinds: dict[str, int] = {}
        if detect is not None:
            tell(job.rel, "detecting", 0.0)
            result = detect(aio.to_rgb8(scan.pixels), mask_cfg, progress=lambda f: tell(job.rel, "detecting", f))
            m = np.asarray(result.mask, dtype=bool)
            if m.shape != shape:
                raise RuntimeError(f"auto-mask returned shape {m.shape}, expected {shape}")
            mask |= m
            kinds.update({k: int(v) for k, v in result.kind_pixels.items()})
        if user_masks is not None:
            if umask_file is not None:
                um = aio.read_mask(umask_file, shape, runtime.max_pixels)
                mask |= um
                kinds["user"] = int(np.count_nonzero(um))
                # given back in place and not added to: the user's file stays as it is
                job.keep_mask_file = own_masks and umask_file == out / MASKS_DIRNAME / aio.mask_name(job.rel) \
                    and np.array_equal(mask, um)
            else:
                kinds["user"] = 0
        n = int(np.count_nonzero(mask))
        rec["kind_pixels"] = kinds
        rec["masked_fraction"] = n / float(mask.size) if mask.size else 0.0
        if n == 0:
            job.status = "unchanged"
            job.timings["mask"] = time.perf_counter() - t
            return
        job.windows, job.tone = plan_fill(scan.pixels, mask, runtime)
        rec["tone_locked"] = job.tone is not None
        job.timings["mask"] = time.perf_counter() - t
        rec["windows"] = len(job.windows)
        job.scan, job.mask, job.pending = scan, mask, len(job.windows)
        job.status = "restored"
        job.timings["inpaint"] = 0.0

    def decode_worker() -> None:
        try:
            while not abort.is_set():
                task = task_q.get()
                if task is _STOP:
                    break
                if stop.is_set():
                    continue  # drain: images not started are left for the next run
                rel, path, pre_error = task
                admit.acquire()
                job = _Job(rel=rel, path=path, t0=time.perf_counter(), record=base_record(rel))
                if pre_error:
                    job.error = pre_error
                else:
                    try:
                        prepare(job)
                    except MemoryError:
                        job.error = "out of memory while decoding or masking"
                    except Exception as exc:  # per-file failure: recorded, batch goes on
                        job.error = _one_line(exc)
                if job.error is not None:
                    job.status, job.scan, job.mask = "failed", None, None
                target = infer_q if job.status == "restored" else write_q
                if not _put(target, job, abort):
                    break
        except BaseException as exc:  # a bug, not a bad file: stop everything loudly
            fatal.append(exc)
            abort.set()
        finally:
            with alive_lock:
                alive[0] -= 1
                last = alive[0] == 0
            if last:
                _put(infer_q, _STOP, abort)

    def infer_worker() -> None:
        active: list[_Job] = []  # jobs with windows not yet run, in arrival order
        cursor: dict[int, int] = {}
        upstream_done = False
        batch_size = max(1, int(runtime.batch))
        try:
            while not abort.is_set():
                if not active and upstream_done:
                    break
                # take new jobs: block only when there is nothing to run
                while not upstream_done:
                    try:
                        item = infer_q.get(timeout=0.2) if not active else infer_q.get_nowait()
                    except queue.Empty:
                        if active or abort.is_set():
                            break
                        continue
                    if item is _STOP:
                        upstream_done = True
                    else:
                        active.append(item)
                        cursor[id(item)] = 0
                    if sum(len(j.windows) - cursor[id(j)] for j in active) >= batch_size:
                        break
                if not active:
                    continue
                batch: list[tuple[_Job, win.Window]] = []
                for job in active:
                    # one chunk of a job per batch: the windows of one round, cut every
                    # batch_size windows from the round's start, as ``restore_pixels`` cuts them.
                    # The fill depends on where a round is cut into calls, so the cuts must not
                    # depend on other images in flight: then an image comes out byte for byte
                    # the same however busy the run (before session 25 the cuts followed what
                    # else was in the batch, and outputs varied by 1-2 levels in a few pixels)
                    windows, at = job.windows, cursor[id(job)]
                    start = next(i for i in range(at, -1, -1) if i == 0 or windows[i - 1].round != windows[at].round)
                    stop = at + batch_size - (at - start) % batch_size
                    chunk = [w for w in windows[at:stop] if w.round == windows[start].round]
                    if batch and len(batch) + len(chunk) > batch_size:
                        break  # a call holds at most batch_size windows; this chunk goes next
                    batch.extend((job, w) for w in chunk)
                    cursor[id(job)] = at + len(chunk)
                    if len(batch) >= batch_size:
                        break
                run_batch(batch)
                for job in {id(j): j for j, _ in batch}.values():  # (jobs are not hashable)
                    tell(job.rel, "filling", cursor[id(job)] / len(job.windows))
                for job in [j for j in active if cursor[id(j)] >= len(j.windows)]:
                    active.remove(job)
                    cursor.pop(id(job), None)
                    if not _put(write_q, job, abort):
                        return
        except BaseException as exc:
            fatal.append(exc)
            abort.set()
        finally:
            _put(write_q, _STOP, abort)

    def run_batch(batch: list[tuple[_Job, win.Window]]) -> None:
        todo = [(j, w) for j, w in batch if j.error is None]
        if not todo:
            return
        t = time.perf_counter()
        try:
            fill_windows(session, [(j.scan.pixels, j.mask, w, j.tone) for j, w in todo])  # type: ignore[union-attr]
        except MemoryError:
            for j, _ in todo:
                j.error = "out of memory during inference"
        except Exception as exc:
            msg = "inference failed: " + _one_line(exc)
            for j, _ in todo:
                j.error = msg
        dt = time.perf_counter() - t
        for j, _ in todo:
            j.timings["inpaint"] = j.timings.get("inpaint", 0.0) + dt / len(todo)

    manifest_lock = threading.Lock()
    manifest_file = open(manifest_path, "a+b")
    manifest_file.seek(0, os.SEEK_END)
    if manifest_file.tell() > 0:
        manifest_file.seek(-1, os.SEEK_END)
        if manifest_file.read(1) != b"\n":  # a killed run left half a line
            manifest_file.write(b"\n")

    def finish(job: _Job) -> None:
        """Writer stage for one image: output file, mask file, then the manifest line."""
        rec = job.record
        t = time.perf_counter()
        if job.error is None and job.status in ("restored", "unchanged"):
            tell(job.rel, "writing", 0.0)
            try:
                dest = out / job.rel
                check_no_links(out, job.rel)
                check_no_links(out, f"{MASKS_DIRNAME}/{aio.mask_name(job.rel)}")
                if job.status == "unchanged":
                    aio.copy_file_atomic(job.path, dest)
                    rec["output_sha256"] = aio.sha256_file(dest)
                    if rec["output_sha256"] != rec["input_sha256"]:
                        raise RuntimeError("input changed while it was being copied")
                    remove_old_mask(job.rel)
                else:
                    mrel = f"{MASKS_DIRNAME}/{aio.mask_name(job.rel)}"
                    aio.check_name_length(mrel)  # before anything is written
                    if runtime.grain > 0:  # seeded by the input's hash: a rerun writes the same file
                        seed = int((rec.get("input_sha256") or "0")[:16], 16)
                        job.scan.pixels = add_grain(job.scan.pixels, job.mask, seed=seed,  # type: ignore[union-attr]
                                                    strength=runtime.grain)
                    aio.keep_off_transparent_key(job.scan.pixels, job.mask, job.scan)  # type: ignore[union-attr,arg-type]
                    aio.write_image(dest, job.scan.pixels, job.scan, runtime.jpeg_quality)  # type: ignore[union-attr]
                    try:
                        if not job.keep_mask_file:
                            aio.write_mask(out / mrel, job.mask)  # type: ignore[arg-type]
                        rec["mask_sha256"] = aio.sha256_file(out / mrel)
                    except BaseException:
                        dest.unlink(missing_ok=True)  # no output without its mask (the record says failed)
                        raise
                    rec["mask"] = mrel
                    rec["output_sha256"] = aio.sha256_file(dest)
                rec["output"] = job.rel
            except MemoryError:
                job.error = "out of memory while writing"
            except Exception as exc:
                job.error = "write failed: " + _one_line(exc)
        job.timings["encode"] = time.perf_counter() - t
        if job.error is not None:
            job.status = "failed"
            rec.update(output=None, mask=None, mask_sha256=None, output_sha256=None, error=job.error)
        rec["status"] = job.status
        job.timings["total"] = time.perf_counter() - job.t0
        rec["timings"] = {k: round(v, 4) for k, v in job.timings.items()}
        rec["finished_at"] = _now()
        try:
            line = json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n"
        except UnicodeEncodeError:  # a file name that is not UTF-8: keep the line valid JSON/UTF-8
            line = json.dumps(rec, ensure_ascii=True).encode("ascii") + b"\n"
        with manifest_lock:
            manifest_file.write(line)
            manifest_file.flush()
            os.fsync(manifest_file.fileno())
        summary.counts[job.status] = summary.counts.get(job.status, 0) + 1
        if job.status == "failed":
            summary.failed.append((job.rel, job.error or ""))
        if job.status == "restored" and rec["width"]:
            summary.megapixels += rec["width"] * rec["height"] / 1e6
        job.scan = job.mask = None
        if progress is not None:
            try:
                progress(rec, summary)
            except Exception:
                pass  # a display problem must never lose a record

    def writer() -> None:
        try:
            while True:
                try:
                    job = write_q.get(timeout=0.2)
                except queue.Empty:
                    if abort.is_set():
                        return
                    continue
                if job is _STOP:
                    return
                try:
                    finish(job)
                finally:
                    admit.release()
        except BaseException as exc:
            fatal.append(exc)
            abort.set()

    # Ctrl-C, SIGTERM (timeout, systemd, docker stop), SIGHUP (a closed terminal): the first
    # stops starting new images; images in flight are finished and recorded. A second one ends
    # the process at once (os._exit: raising in the main thread while worker threads are inside
    # ONNX Runtime aborted the interpreter); the manifest is fsynced per record, and the next run
    # removes the temp files and redoes the images that were in flight.
    old_handlers: dict[int, Any] = {}
    if handle_sigint and threading.current_thread() is threading.main_thread():

        def on_signal(signum, frame):  # noqa: ARG001
            if stop.is_set():
                try:
                    os.write(2, b"\ninterrupted again: stopped at once; the images in flight were not recorded, "
                                b"rerun the same command to finish them\n")
                finally:
                    os._exit(128 + signum)
            summary.stopped_by = signum
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            # a signal the caller ignores stays ignored (``nohup`` ignores SIGHUP: the run must
            # go on when the terminal closes)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                old_handlers[sig] = signal.signal(sig, on_signal)
    threads = [threading.Thread(target=decode_worker, name=f"decode-{i}", daemon=True) for i in range(workers)]
    threads.append(threading.Thread(target=infer_worker, name="infer", daemon=True))
    wthread = threading.Thread(target=writer, name="writer", daemon=True)
    threads.append(wthread)
    try:
        for th in threads:
            th.start()
        while wthread.is_alive():
            wthread.join(timeout=0.2)
        for th in threads:
            th.join(timeout=5)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        try:
            manifest_file.close()
        except OSError as exc:  # a full disk: the records' own writes have said so already
            fatal.append(exc)
    summary.seconds = time.perf_counter() - t_start
    summary.edited_masks.sort()  # appended by the decode threads in any order
    summary.interrupted = stop.is_set() and summary.done < summary.total
    if fatal:
        if isinstance(fatal[0], OSError):  # the manifest itself could not be written (a full disk)
            raise OutputError(f"cannot write the manifest in {out}: {fatal[0].strerror or _one_line(fatal[0])}; "
                              "the images recorded so far are kept, rerun the same command when it can be written") from fatal[0]
        raise RuntimeError(f"internal error in the restore pipeline: {_one_line(fatal[0])}") from fatal[0]
    return summary
