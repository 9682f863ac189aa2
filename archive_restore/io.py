"""The one place files become arrays and back: formats, bit depth, EXIF/ICC/DPI, atomic writes.

Owns:
- ``read_scan(path, max_pixels) -> Scan``: pixels as a viewer shows them (EXIF orientation
  applied), ``uint8`` or ``uint16`` ``(H, W, C)`` with C in {1, 3, 4}, plus everything needed
  to write the file back the way it was (format, mode, bit depth, EXIF, ICC, DPI, JPEG
  quantization tables and subsampling, TIFF compression).
- ``write_image(path, pixels, like)``: same format, mode and bit depth as ``like``, metadata
  carried over, written atomically (temp file in the same folder, fsync, ``os.replace``).
- conversions between a scan's pixels and the model's ``(h, w, 3) float32`` RGB in [0, 1],
  done per window so a 100 MP scan is never held as float.

Policies (documented contract):
- Supported modes: ``L``, ``I;16`` (16-bit grey), ``RGB``, ``RGBA`` in 8 bits, and 16-bit
  ``RGB``/``RGBA`` PNG and TIFF (decoded with OpenCV because Pillow reads them as 8-bit).
  CMYK, palette (``P``/``PA``), 1-bit, ``LA``, float and 32-bit integer images FAIL with a
  clear per-file error rather than being converted: converting would change the archive's
  file mode, which the tool promises never to do. Multi-frame files (multi-page TIFF,
  animated WebP, stereo MPO) fail too: only their first frame could be written back. A
  camera's MPO whose extra pictures are previews is read as its JPEG (``_mpo_as_jpeg``).
- EXIF orientation: the pixels are transposed upright on read; the written file holds the
  upright pixels and its EXIF says orientation 1, so every viewer shows the same picture.
  Files are opened through file objects (``open_image``); Pillow turns TIFFs upright itself.
- Metadata carried: EXIF with its EXIF and GPS sub-IFDs, ICC, DPI (only a resolution the file
  states: Pillow's stand-ins, 1 dpi for a TIFF without resolution tags and 72 for a JPEG with
  EXIF but none, are not written); PNG gAMA/cHRM/sRGB and the tRNS colour key (a fill that
  lands exactly on the key is moved one level off it, ``keep_off_transparent_key``); JPEG COM, XMP and APP13
  (IPTC). Thumbnails are never copied: EXIF's is made again from the restored pixels and
  Photoshop's are left out, so no file browser shows the damaged scan. PNG tEXt/zTXt/iTXt
  chunks (copied raw); WebP XMP; TIFF descriptive tags (XMP and IPTC among them). Compressed TIFFs keep their compression and their sub-IFDs
  (``_tiff_add_sub_ifds``: libtiff cannot write sub-IFDs).
- JPEG: re-encoded with the source's own quantization tables and chroma subsampling (and
  progressive flag); a subsampling Pillow cannot write (4:4:0, 4:1:1) becomes 4:4:4, never a
  coarser one; a JPEG without readable tables is written at ``jpeg_quality`` (>= 95).
- Truncated data: a PNG whose compressed pixels end before its last row fails (Pillow decodes
  it without a word, the rest black). A JPEG cut short and closed with an end marker is NOT
  caught: libjpeg fills the rest with one flat colour and Pillow does not pass its warning on.
- WebP is always written lossless (pixels outside the mask stay exactly as decoded).
- 16-bit colour: PNG is encoded by OpenCV with its ICC/EXIF chunks (pHYs added for DPI);
  TIFF is written by a small baseline writer here (one uncompressed strip, ICC, DPI,
  descriptive tags and EXIF/GPS sub-IFDs kept), since Pillow cannot hold 16-bit colour. The
  restored TIFF may therefore be larger than an LZW/deflate-compressed source.
- Decompression bombs: images above ``max_pixels`` fail before their pixels are decoded.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import io as _io  # the standard library's (this module is archive_restore.io)
import os
import re
import secrets
import shutil
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from archive_restore.config import DEFAULT_MAX_PIXELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
TEMP_MARK = ".partial-"  # temp files are ".<name>.partial-<random>" beside the target
ORIENTATION_TAG = 0x0112
EXIF_IFD_TAG = 0x8769
GPS_IFD_TAG = 0x8825
_SUB_IFD_TAGS = (EXIF_IFD_TAG, GPS_IFD_TAG)
IPTC_TAG = 33723
# TIFF tags that describe the picture rather than its storage: carried to the output.
# DocumentName, ImageDescription, Make, Model, PageName, Software, DateTime, Artist,
# HostComputer, XMP, Copyright, IPTC, Windows' XPTitle/XPComment/XPAuthor/XPKeywords/XPSubject.
_TIFF_DESCRIPTIVE_TAGS = (0x010D, 0x010E, 0x010F, 0x0110, 0x011D, 0x0131, 0x0132, 0x013B, 0x013C, 700,
                          0x8298, IPTC_TAG, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F, ORIENTATION_TAG)
_LOSSLESS_TIFF_COMPRESSION = ("raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits")
_WRITABLE_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")


class ImageError(Exception):
    """A file cannot be read or written as an image; the message is one clear line."""


@dataclass
class Scan:
    """A decoded scan and what is needed to write it back the same way.

    pixels: (H, W, C) uint8 or uint16, C in {1, 3, 4} (grey, RGB, RGBA), upright (EXIF
        orientation applied), H and W as a viewer shows them.
    format: Pillow format name ("JPEG", "PNG", "TIFF", "BMP", "WEBP").
    mode: the file's mode: Pillow's ("L", "I;16", "RGB", "RGBA") or "RGB;16"/"RGBA;16" for
        16-bit colour.
    bit_depth: 8 or 16 bits per sample.
    exif: raw EXIF bytes as found in the file (orientation as stored), or None.
    orientation: EXIF orientation of the file (1..8; 1 when absent).
    xmp: the XMP packet of a JPEG or WebP (a PNG's travels in ``png_text``, a TIFF's in ``exif``).
    comment: a JPEG's COM text.
    app13: a JPEG's APP13 segments (Photoshop/IPTC: captions, credits, keywords), payloads as stored.
    png_text: a PNG's tEXt/zTXt/iTXt chunks (XMP included) as (type, data), copied without decoding.
    png_colour: a PNG's gAMA, cHRM and sRGB chunks as (type, data), copied as they are (how a
    colour-managed viewer reads the pixels, like an ICC profile).
    transparency: a PNG's tRNS colour key as Pillow reads it (int for grey, (r, g, b) for
    RGB; pixels of exactly that value show transparent), or None; 16-bit colour PNGs keep the
    raw chunk in ``png_colour`` instead.
    """

    pixels: np.ndarray
    format: str
    mode: str
    bit_depth: int
    exif: Optional[bytes] = None
    icc_profile: Optional[bytes] = None
    dpi: Optional[tuple[float, float]] = None
    qtables: Optional[dict[int, Any]] = None
    subsampling: Optional[int] = None
    progressive: bool = False
    tiff_compression: Optional[str] = None
    orientation: int = 1
    xmp: Optional[bytes] = None
    comment: Optional[bytes] = None
    app13: tuple[bytes, ...] = ()
    png_text: tuple[tuple[bytes, bytes], ...] = ()
    png_colour: tuple[tuple[bytes, bytes], ...] = ()
    transparency: Any = None

    @property
    def orientation_applied(self) -> bool:
        """True when the stored pixels were transposed to be upright."""
        return self.orientation != 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


# ----------------------------------------------------------------------------- reading


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Transpose (H, W, C) pixels stored with EXIF ``orientation`` (1..8) to upright (a view
    when possible). Matches ``PIL.ImageOps.exif_transpose``."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(a, k=-1)
    if orientation == 7:
        return a.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(a, k=1)
    return a


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_16bit_colour(im: Image.Image) -> bool:
    if im.mode not in ("RGB", "RGBA") or not im.tile:
        return False
    args = im.tile[0].args
    raw = args[0] if isinstance(args, tuple) and args else args
    return isinstance(raw, str) and ";16" in raw


def _tiff_exif(im: Image.Image) -> Optional[bytes]:
    """Descriptive TIFF tags plus the EXIF and GPS sub-IFDs, as EXIF bytes (storage tags dropped)."""
    src = im.getexif()
    out = Image.Exif()
    for tag in _TIFF_DESCRIPTIVE_TAGS:
        if tag == IPTC_TAG:
            # Photoshop stores IPTC as LONGs, which Pillow's tag table cuts to one number: take
            # the entry's stored bytes (a byte stream, so no byte-order question), or leave it out
            raw = getattr(getattr(im, "tag_v2", None), "_tagdata", {}).get(IPTC_TAG)
            value = raw if isinstance(raw, bytes) else src.get(IPTC_TAG)
            if isinstance(value, bytes):
                out[IPTC_TAG] = value
        elif tag in src:
            out[tag] = src[tag]
    for sub_tag, sub in _sub_ifds(src).items():
        out[sub_tag] = sub
    return out.tobytes() if len(out) else None


INTEROP_IFD_TAG = 0xA005


def _sub_ifds(ex: Image.Exif) -> dict[int, dict]:
    """The EXIF and GPS sub-IFDs of ``ex`` as {tag: its tags}, empty ones left out. The EXIF
    IFD's Interop pointer (0xA005) is dropped: it is an offset into the *source* file, which
    copied as a number would point at garbage in ours (its directory holds only the
    interoperability index, e.g. "R98")."""
    subs = {}
    for tag in _SUB_IFD_TAGS:
        sub = dict(ex.get_ifd(tag)) if tag in ex else {}
        sub.pop(INTEROP_IFD_TAG, None)
        if sub:
            subs[tag] = sub
    return subs


def read_scan(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS, jpeg_quality: int = 95) -> Scan:
    """Decode ``path`` into a ``Scan`` (see the module docstring for the policies).

    max_pixels: images with more pixels fail with ``ImageError`` before decoding.
    Raises ``ImageError`` with a one-line message for every unreadable or unsupported file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"unreadable: {_one_line(exc)}") from exc
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        fp = open(path, "rb")  # a file object, not a name: see ``open_image``
    except OSError as exc:
        raise ImageError(f"unreadable: {_one_line(exc)}") from exc
    with fp:
        try:
            im = open_image(fp, max_pixels)  # the exact size check is _decode's
        except Image.DecompressionBombError as exc:
            raise ImageError(f"decompression bomb guard: {_bomb_line(exc, max_pixels)}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError("not a readable image (unknown format or corrupt header)") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"corrupt or truncated image: {_one_line(exc)}") from exc
        return _decode_open(im, path, max_pixels, jpeg_quality)


def _bomb_line(exc: BaseException, max_pixels: int) -> str:
    """Pillow's bomb message names its own limit (twice ours); say ours."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    return (f"{int(m.group(1))} pixels exceeds the limit of {max_pixels}" if m else _one_line(exc))


def open_image(fp, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """``Image.open`` for every reader in the package, given an open binary file object rather
    than a name. Given a name, Pillow 13 memory-maps uncompressed TIFFs at their *upright*
    size before it transposes them by their orientation tag, which scrambles grey, 16-bit grey
    and RGBA TIFFs stored with orientations 5 to 8; from a file object it decodes them at the
    stored size, then transposes them correctly.

    Pillow's bomb guard is set to ``max_pixels``: it raises ``DecompressionBombError`` above
    twice that, and its warning between once and twice is silenced, because every caller checks
    the header's size against ``max_pixels`` exactly and refuses with its own error.
    (``warnings.catch_warnings`` is not thread-safe: decode threads left an "error" filter
    behind, which then raised in other readers.)"""
    Image.MAX_IMAGE_PIXELS = int(max_pixels)  # process-global: every reader sets its own limit
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    # a scan's broken EXIF is carried as it is, not a reason to fill the terminal
    warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)
    return Image.open(fp)


def pillow_made_upright(im: Image.Image) -> bool:
    """True when Pillow itself applies the orientation tag on load (TIFF; OpenCV's TIFF decoder
    does too), so the caller must not transpose again; JPEG, PNG and WebP come as stored."""
    return (im.format or "") == "TIFF"


def _decode_open(im: Image.Image, path: Path, max_pixels: int, jpeg_quality: int) -> Scan:
    with im:
        try:
            return _decode(im, path, max_pixels, jpeg_quality)
        except (ImageError, MemoryError):
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"decompression bomb guard: {_bomb_line(exc, max_pixels)}") from exc
        except Exception as exc:  # Pillow plugins raise many types on corrupt data
            raise ImageError(f"corrupt or truncated image data: {_one_line(exc)}") from exc


_MPO_PREVIEWS = ("Large Thumbnail (VGA Equivalent)", "Large Thumbnail (Full HD Equivalent)")


def _mpo_as_jpeg(im: Image.Image) -> str:
    """A multi-picture JPEG (CIPA DC-007, "MPO") -> "JPEG" when its pictures after the first
    are only previews: many cameras (so copy-stand captures) append a VGA or Full HD copy of
    the picture, which shows its damage. The primary picture is restored and written as a
    plain JPEG without them (as EXIF's thumbnail, they are not copied). Raises ``ImageError``
    for stereo or multi-view files: their other pictures are pictures, and would be lost."""
    entries = (getattr(im, "mpinfo", None) or {}).get(0xB002) or []
    kinds = [str(e.get("Attribute", {}).get("MPType", "Unknown")) for e in entries[1:]]
    if kinds and all(k in _MPO_PREVIEWS for k in kinds):
        im.seek(0)
        return "JPEG"
    shown = ", ".join(sorted(set(kinds))) or "unknown"
    raise ImageError(f"multi-picture JPEG (MPO) with {getattr(im, 'n_frames', len(entries))} pictures ({shown}): "
                     "only one whose extra pictures are previews can be restored; the others would be lost")


def _decode(im: Image.Image, path: Path, max_pixels: int, jpeg_quality: int) -> Scan:
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(f"decompression bomb guard: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}")
    fmt = im.format or ""
    if fmt == "MPO":
        fmt = _mpo_as_jpeg(im)
    elif getattr(im, "n_frames", 1) > 1:
        raise ImageError(f"multi-frame {fmt} ({im.n_frames} frames) is not supported; only single images")
    if fmt not in _WRITABLE_FORMATS:
        raise ImageError(f"unsupported image format {fmt or 'unknown'}")
    mode = im.mode
    if mode in ("CMYK", "P", "PA", "1", "LA", "La", "F", "I", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        hint = {"CMYK": "CMYK", "P": "palette", "PA": "palette"}.get(mode, mode)
        raise ImageError(f"unsupported image mode {hint}: convert it to RGB or greyscale first (not done automatically, to keep the archive's mode)")
    is16 = _is_16bit_colour(im)  # before getexif(): PNG's getexif loads and clears .tile
    exif_obj = im.getexif()
    orientation = int(exif_obj.get(ORIENTATION_TAG, 1) or 1)
    if orientation not in range(1, 9):
        orientation = 1
    info = im.info
    exif = _tiff_exif(im) if fmt == "TIFF" else info.get("exif")
    if not exif and fmt == "PNG" and len(exif_obj):
        # EXIF from ImageMagick's "Raw profile type exif" text chunk (Pillow reads it): kept as
        # EXIF, so the output's eXIf chunk can say orientation 1 when the pixels were turned
        exif = exif_obj.tobytes()
    dpi = info.get("dpi") if _has_own_resolution(im, fmt) else None
    if dpi is not None:
        try:
            dpi = (float(dpi[0]), float(dpi[1]))
        except (TypeError, ValueError, IndexError):
            dpi = None
    scan_kwargs: dict[str, Any] = dict(
        format=fmt,
        exif=exif or None,
        icc_profile=info.get("icc_profile") or None,
        dpi=dpi,
        orientation=orientation,
    )
    if fmt == "JPEG":
        q = getattr(im, "quantization", None)
        scan_kwargs["qtables"] = dict(q) if q else None
        try:
            scan_kwargs["subsampling"] = JpegImagePlugin.get_sampling(im)
        except Exception:
            scan_kwargs["subsampling"] = None
        scan_kwargs["progressive"] = bool(info.get("progressive") or info.get("progression"))
        scan_kwargs["comment"] = info.get("comment") or None
        scan_kwargs["app13"] = tuple(data for marker, data in getattr(im, "applist", []) if marker == "APP13")
    if fmt in ("JPEG", "WEBP"):
        xmp = info.get("xmp")
        scan_kwargs["xmp"] = (xmp.encode("utf-8") if isinstance(xmp, str) else xmp) or None
    if fmt == "PNG":
        text, colour, complete = _png_chunks(path)
        if not complete:
            raise ImageError("corrupt or truncated image data: the PNG's compressed pixel data ends before its last row")
        scan_kwargs["png_text"], scan_kwargs["png_colour"] = text, colour
        if "transparency" in info and not is16 and (mode in ("L", "RGB") or mode.startswith("I;16")):
            scan_kwargs["transparency"] = info.get("transparency")
    if fmt == "TIFF":
        scan_kwargs["tiff_compression"] = info.get("compression")
    # Both Pillow's and OpenCV's TIFF decoders apply the orientation tag themselves
    # (OpenCV even with IMREAD_UNCHANGED); PNG/JPEG/WebP pixels come as stored.
    upright = pillow_made_upright(im)
    try:
        if is16:
            if fmt not in ("PNG", "TIFF"):
                raise ImageError(f"16-bit colour {fmt} is not supported")
            pixels = _decode_16bit_colour(path, mode)
            mode = mode + ";16"
            depth = 16
        else:
            im.load()
            if mode == "L":
                pixels, depth = np.asarray(im, dtype=np.uint8)[..., None], 8
            elif mode.startswith("I;16"):
                pixels, depth = np.asarray(im).astype(np.uint16)[..., None], 16
                mode = "I;16"
            elif mode in ("RGB", "RGBA"):
                pixels, depth = np.asarray(im, dtype=np.uint8), 8
            else:  # pragma: no cover - filtered above
                raise ImageError(f"unsupported image mode {mode}")
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"corrupt or truncated image data: {_one_line(exc)}") from exc
    if not upright:
        pixels = apply_orientation(pixels, orientation)
    pixels = np.ascontiguousarray(pixels)
    if not pixels.flags.writeable:  # Pillow hands out read-only buffers; the scan is ours to fill
        pixels = pixels.copy()
    return Scan(pixels=pixels, mode=mode, bit_depth=depth, **scan_kwargs)


_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_PNG_TEXT_LIMIT = 16 << 20  # bytes of text chunks carried over at most (they are copied, never inflated)


_PNG_COLOUR = (b"gAMA", b"cHRM", b"sRGB")
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # x0, y0, dx, dy


def _png_raw_size(ihdr: bytes) -> int:
    """Bytes of filtered scanlines (a filter byte per row) a PNG with this IHDR decompresses to."""
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    bits = depth * _PNG_CHANNELS.get(ctype, 1)
    passes = _ADAM7 if interlace == 1 else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if pw > 0 and ph > 0:
            total += ph * (1 + (pw * bits + 7) // 8)
    return total


def _png_chunks(path: Path) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...], bool]:
    """A PNG file's (tEXt/zTXt/iTXt chunks, gAMA/cHRM/sRGB/tRNS chunks, data complete), the
    chunks as (type, data) in file order, read from the chunk headers (compressed text is not
    inflated). "Data complete": the IDAT stream, inflated here a piece at a time and counted,
    holds every row IHDR promises. Pillow decodes a PNG whose compressed data ends early (its
    stream closed, IEND after it) without an error, the missing rows black; such a file is a
    damaged one, not a scan to restore. tRNS is collected for the 16-bit colour writer."""
    found: list[tuple[bytes, bytes]] = []
    colour: list[tuple[bytes, bytes]] = []
    total = 0
    want = got = -1
    inflater = zlib.decompressobj()
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return (), (), True
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            n, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind == b"IHDR":
                ihdr = f.read(n)
                want, got = _png_raw_size(ihdr), 0
                f.seek(4, os.SEEK_CUR)
            elif kind == b"IDAT" and want >= 0:
                left = n
                while left > 0:
                    piece = f.read(min(left, 1 << 20))
                    if not piece:
                        break
                    left -= len(piece)
                    try:
                        while piece and not inflater.eof:
                            got += len(inflater.decompress(piece, 1 << 22))
                            piece = inflater.unconsumed_tail
                    except zlib.error:
                        return tuple(found), tuple(colour), False
                f.seek(4, os.SEEK_CUR)
            elif (kind in _PNG_TEXT and total + n <= _PNG_TEXT_LIMIT) or kind in _PNG_COLOUR or kind == b"tRNS":
                data = f.read(n)
                if len(data) < n:
                    break
                if kind in _PNG_TEXT:
                    found.append((kind, data))
                    total += n
                else:
                    colour.append((kind, data))
                f.seek(4, os.SEEK_CUR)
            else:
                f.seek(n + 4, os.SEEK_CUR)
    if want >= 0 and not inflater.eof:
        try:
            while got < want:
                more = inflater.decompress(inflater.unconsumed_tail, 1 << 22) if inflater.unconsumed_tail else b""
                if not more:
                    break
                got += len(more)
        except zlib.error:
            return tuple(found), tuple(colour), False
    return tuple(found), tuple(colour), want < 0 or got >= want


def _has_own_resolution(im: Image.Image, fmt: str) -> bool:
    """True when the file itself states a resolution. Pillow fills in ``info["dpi"]`` where a
    file has none: (1, 1) for a TIFF without resolution tags, 72 for a JPEG with EXIF but no
    resolution in it (its JFIF header may say "aspect ratio only"); writing those back would
    tell a print-size reader something the scan never said."""
    if fmt == "TIFF":
        return 282 in getattr(im, "tag_v2", {})
    if fmt == "JPEG":
        if im.info.get("jfif_unit") in (1, 2):
            return True
        ex = im.getexif()
        return 0x011A in ex or 0x011A in ex.get_ifd(0x8769)
    return True


def _decode_16bit_colour(path: Path, mode: str) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    del data  # the file's bytes: as large as the pixels for an uncompressed TIFF
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageError("corrupt or unsupported 16-bit colour image")
    want = 4 if mode == "RGBA" else 3
    if want == 3 and arr.shape[2] == 4:  # an RGB file with a tRNS colour key: OpenCV makes it alpha
        arr = np.ascontiguousarray(arr[..., :3])
    if arr.shape[2] != want:
        raise ImageError(f"16-bit colour image decoded with {arr.shape[2]} channels, expected {want}")
    code = cv2.COLOR_BGRA2RGBA if want == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(arr, code, dst=arr)  # in place: no second full-size copy


# ----------------------------------------------------------------------------- writing


def _exif_for_output(like: Scan) -> Optional[bytes]:
    """The EXIF to write: the source's, with orientation 1 when the pixels were made upright."""
    if not like.exif:
        return None
    if not like.orientation_applied:
        return like.exif
    ex = Image.Exif()
    ex.load(like.exif)
    ex[ORIENTATION_TAG] = 1
    if isinstance(ex.get(700), bytes):  # a TIFF's XMP says it too
        ex[700] = xmp_upright(ex[700])
    return ex.tobytes()


THUMB_OFFSET_TAG, THUMB_LENGTH_TAG = 0x0201, 0x0202  # IFD1: JPEGInterchangeFormat(Length)
_APP1_LIMIT = 65533  # bytes an APP1 segment can carry, "Exif\0\0" included


def _exif_thumbnail_refreshed(exif: Optional[bytes], pixels: np.ndarray) -> Optional[bytes]:
    """EXIF bytes whose thumbnail shows the restored picture, not the damaged scan.

    Cameras (copy-stand captures are common in archives) and editors store a small JPEG in
    EXIF's second directory (IFD1), and file browsers show it in place of the picture. Copied
    as it was, a restored file would show its damage there. The thumbnail is made again from
    ``pixels`` ((H, W, C) uint8/uint16, upright, as written), fitted into the old one's size,
    and stored where the old one was when that ended the EXIF (where cameras put it), else
    appended after wiping the old bytes; every other byte of the EXIF is kept as it was, so
    maker notes and their offsets stay valid. A directory that cannot be followed, or an
    uncompressed (strip) thumbnail, is unlinked instead (IFD0's next pointer set to 0, the
    JPEG's bytes wiped). ``exif`` with or without the "Exif\\0\\0" prefix; None passes through.
    """
    if not exif:
        return exif
    prefix = b"Exif\x00\x00" if exif.startswith(b"Exif\x00\x00") else b""
    t = bytearray(exif[len(prefix):])
    if t[:4] == b"II*\x00":
        end = "<"
    elif t[:4] == b"MM\x00*":
        end = ">"
    else:
        return exif
    try:
        ifd0 = struct.unpack_from(end + "L", t, 4)[0]
        next_at = ifd0 + 2 + 12 * struct.unpack_from(end + "H", t, ifd0)[0]
        ifd1 = struct.unpack_from(end + "L", t, next_at)[0]
    except struct.error:
        return exif
    if ifd1 == 0:
        return exif
    entries: dict[int, int] = {}  # tag -> position of its value field
    try:
        for i in range(struct.unpack_from(end + "H", t, ifd1)[0]):
            at = ifd1 + 2 + 12 * i
            tag, typ, count = struct.unpack_from(end + "HHL", t, at)
            if tag in (THUMB_OFFSET_TAG, THUMB_LENGTH_TAG) and typ == 4 and count == 1:
                entries[tag] = at + 8
        off = struct.unpack_from(end + "L", t, entries[THUMB_OFFSET_TAG])[0]
        length = struct.unpack_from(end + "L", t, entries[THUMB_LENGTH_TAG])[0]
        ifd1_end = ifd1 + 2 + 12 * struct.unpack_from(end + "H", t, ifd1)[0] + 4
        if off + length > len(t) or length == 0 or off < 8:
            raise ValueError("thumbnail past the end")
        if (off < ifd1_end and off + length > ifd1) or (off < next_at + 4 and off + length > ifd0):
            raise ValueError("thumbnail over a directory")  # wiping it would wipe the EXIF
    except (struct.error, KeyError, ValueError):
        t[next_at:next_at + 4] = b"\x00" * 4  # a directory we cannot follow: unlinked
        return prefix + bytes(t)
    try:  # only bytes that are a JPEG are a thumbnail to wipe: a corrupt offset may point at values
        if t[off:off + 2] != b"\xff\xd8":
            raise ValueError("not a JPEG")
        with Image.open(_io.BytesIO(bytes(t[off:off + length]))) as old:
            box = old.size
    except Exception:
        t[next_at:next_at + 4] = b"\x00" * 4
        return prefix + bytes(t)
    h, w = pixels.shape[:2]
    scale = min(box[0] / w, box[1] / h, 1.0)
    step = max(1, int(1 / scale) // 2)  # every step-th pixel, still twice the thumbnail's size
    rgb = to_rgb8(pixels[::step, ::step])
    small = Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    t[off:off + length] = b"\x00" * length  # the damaged thumbnail never stays in the file
    base = off if off + length == len(t) else len(t)
    for quality in (90, 75, 60, 40):
        buf = _io.BytesIO()
        small.save(buf, format="JPEG", quality=quality)
        thumb = buf.getvalue()
        if len(prefix) + base + len(thumb) <= _APP1_LIMIT:
            out = t[:base] + thumb
            struct.pack_into(end + "L", out, entries[THUMB_OFFSET_TAG], base)
            struct.pack_into(end + "L", out, entries[THUMB_LENGTH_TAG], len(thumb))
            return prefix + bytes(out)
    t[next_at:next_at + 4] = b"\x00" * 4
    return prefix + bytes(t)


_PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
_PHOTOSHOP_THUMBNAILS = (0x0409, 0x040C)  # Photoshop 4 and 5+ thumbnail resources
_RESOURCE_SIGNATURES = (b"8BIM", b"MeSa", b"PHUT", b"AgHg", b"DCSR")


def _app13_for_output(segments: tuple[bytes, ...]) -> list[bytes]:
    """A JPEG's APP13 payloads to write: Photoshop's image resources (IPTC captions, credits,
    keywords and the rest) kept as they are, less its thumbnail resources, which show the
    damaged scan. The resources may run over several segments (each starting with
    "Photoshop 3.0\\0"): they are joined, filtered and split again at the same limit. Payloads
    that do not parse as resources are kept unchanged; none over 65,533 bytes is written."""
    kept = [d for d in segments if len(d) <= _APP1_LIMIT]
    ps = [d for d in kept if d.startswith(_PHOTOSHOP_HEADER)]
    if not ps:
        return kept
    data = b"".join(d[len(_PHOTOSHOP_HEADER):] for d in ps)
    blocks, pos = [], 0
    try:
        while pos < len(data):
            if data[pos:pos + 4] not in _RESOURCE_SIGNATURES:
                if not data[pos:].strip(b"\x00"):
                    break  # padding at the end
                raise ValueError("not a resource block")
            rid = struct.unpack_from(">H", data, pos + 4)[0]
            name_len = data[pos + 6]
            size_at = pos + 6 + name_len + 1 + ((name_len + 1) & 1)
            size = struct.unpack_from(">L", data, size_at)[0]
            stop = size_at + 4 + size + (size & 1)
            if size_at + 4 + size > len(data):
                raise ValueError("resource past the end")
            if rid not in _PHOTOSHOP_THUMBNAILS:
                blocks.append(data[pos:stop])
            pos = stop
    except (struct.error, IndexError, ValueError):
        return kept
    body = b"".join(blocks)
    room = _APP1_LIMIT - len(_PHOTOSHOP_HEADER)
    pieces = [_PHOTOSHOP_HEADER + body[i:i + room] for i in range(0, len(body), room)]
    out: list[bytes] = []
    for d in kept:  # the resources go where their first segment was
        if not d.startswith(_PHOTOSHOP_HEADER):
            out.append(d)
        elif d is ps[0]:
            out.extend(pieces)
    return out


_XMP_ORIENTATION = re.compile(rb"(tiff:Orientation=[\"'])[0-9]([\"'])|(<tiff:Orientation>)[0-9](</tiff:Orientation>)")


def xmp_upright(xmp: bytes) -> bytes:
    """XMP bytes with ``tiff:Orientation`` set to 1 (attribute or element form, as Pillow reads
    it): written with pixels already turned upright, so no reader turns them again."""
    return _XMP_ORIENTATION.sub(lambda m: (m.group(1) or m.group(3)) + b"1" + (m.group(2) or m.group(4)), xmp)


_PNG_RAW_EXIF = (b"raw profile type exif", b"raw profile type app1")


def _png_text_upright(chunks: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """A PNG's text chunks for pixels turned upright: XMP says orientation 1 (inflated and
    deflated again where compressed), and ImageMagick's "Raw profile type exif" chunks are
    dropped (their EXIF is written as an eXIf chunk with orientation 1: ``read_scan`` kept it)."""
    out = []
    for kind, data in chunks:
        key, _, rest = data.partition(b"\0")
        if key.lower() in _PNG_RAW_EXIF:
            continue
        try:
            if kind == b"tEXt":
                data = key + b"\0" + xmp_upright(rest)
            elif kind == b"zTXt" and rest[:1] == b"\0":
                data = key + b"\0\0" + zlib.compress(xmp_upright(_inflate(rest[1:])))
            elif kind == b"iTXt" and len(rest) >= 2:
                flag, method, tail = rest[0], rest[1:2], rest[2:]
                lang, _, tail = tail.partition(b"\0")
                tkey, _, text = tail.partition(b"\0")
                text = zlib.compress(xmp_upright(_inflate(text))) if flag else xmp_upright(text)
                data = key + b"\0" + bytes([flag]) + method + lang + b"\0" + tkey + b"\0" + text
        except (zlib.error, ValueError):
            pass  # a chunk that cannot be read is carried as it was
        out.append((kind, data))
    return out


def _xmp_for_output(like: Scan) -> Optional[bytes]:
    """The XMP to write: the source's, saying orientation 1 when the pixels were made upright."""
    return xmp_upright(like.xmp) if like.xmp and like.orientation_applied else like.xmp


def _png_text_for_output(like: Scan) -> list[tuple[bytes, bytes]]:
    return _png_text_upright(like.png_text) if like.orientation_applied else list(like.png_text)


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    text = d.decompress(data, _PNG_TEXT_LIMIT)
    if d.unconsumed_tail:
        raise ValueError("text chunk inflates past the limit")
    return text


NAME_MAX = 255  # bytes in one file name on the file systems archives live on (ext4, XFS, APFS, NTFS)


# Folders and files an archive's tree holds that are not scans: hidden entries (".DS_Store",
# macOS "._a.jpg" AppleDouble files, ".Trashes", ".thumbnails", ".git") and NAS or Windows
# housekeeping folders (Synology "@eaDir" thumbnails of every photo, recycle bins, snapshots).
NOT_SCAN_FOLDERS = frozenset({"@eaDir", "#recycle", "#snapshot", "@Recycle", "@Recently-Snapshot",
                              "$RECYCLE.BIN", "System Volume Information"})


def walk_scans(root: Path | str, exclude: Sequence[Path | str] = (),
               ignored: Optional[collections.Counter] = None,
               links_out_ok: bool = False) -> list[tuple[str, Path, Optional[str]]]:
    """Image files under ``root`` (recursive, sorted; by extension, ``IMAGE_EXTENSIONS`` in any
    case) as (relative POSIX path, path, error). The one walk every command uses.

    error is set for entries that must fail without being read: a file symlink leaving
    ``root`` or looping, a non-regular file, and a folder that cannot be read (listed as
    ``"<folder>/"``, so its scans are not silently missing). Hidden names and
    ``NOT_SCAN_FOLDERS`` are not walked; folder symlinks are not followed.
    exclude: folders not walked (a MASK_DIR kept inside INPUT_DIR holds masks, not scans).
    links_out_ok: file links leaving ``root`` are fine (training and evaluation sets built
        from links into a photo library); ``restore folder`` and ``restore masks`` refuse them.
    ignored: when given, counts what was passed over: ``"hidden"`` entries, ``"folder link"``
        (symlinked folders, not followed) and other files by lower-case extension (``".heic"``,
        ``".cr2"``, ``""``), so a caller can say so.
    """
    root = Path(root).resolve()
    skip = {Path(e).resolve() for e in exclude}
    found: list[tuple[str, Path, Optional[str]]] = []

    def unreadable(exc: OSError) -> None:
        folder = Path(exc.filename or root)
        try:
            rel = folder.relative_to(root).as_posix()
        except ValueError:
            rel = str(folder)
        found.append((("" if rel == "." else rel) + "/", folder, f"folder could not be read: {exc.strerror or _one_line(exc)}"))

    def hidden(name: str) -> bool:
        if name.startswith(".") or name in NOT_SCAN_FOLDERS:
            if ignored is not None:
                ignored["hidden"] += 1
            return True
        return False

    def linked(d: str, dirpath: str) -> bool:  # listed by os.walk, never entered: say so
        if os.path.islink(os.path.join(dirpath, d)):
            if ignored is not None:
                ignored["folder link"] += 1
            return True
        return False

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not hidden(d) and not linked(d, dirpath) and (Path(dirpath) / d) not in skip)
        for name in sorted(filenames):
            if hidden(name):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext not in IMAGE_EXTENSIONS:
                if ignored is not None:
                    ignored[ext] += 1
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            error = None
            try:
                if path.is_symlink():
                    if not links_out_ok and not path.resolve(strict=False).is_relative_to(root):
                        error = "symlink points outside the input folder (refused)"
                    elif not path.exists():
                        error = "symlink to nothing (its target is missing)"
                if error is None and path.exists() and not path.is_file():
                    error = "not a regular file"
            except RuntimeError:  # Python 3.11's resolve() on a loop
                error = "symlink loop (refused)"
            except OSError as exc:
                error = "symlink loop (refused)" if exc.errno == errno.ELOOP else f"unreadable: {exc.strerror or _one_line(exc)}"
            found.append((rel, path, error))
    return sorted(found, key=lambda t: t[0])


def temp_path_for(path: Path) -> Path:
    """A fresh temp name beside ``path`` (same folder, so ``os.replace`` is atomic):
    ``.<name>.partial-<hex8>``, with ``<name>`` cut (at a character boundary) where the whole
    would pass ``NAME_MAX`` bytes, so a long file name still gets a temp file."""
    tail = f"{TEMP_MARK}{secrets.token_hex(4)}"
    room = NAME_MAX - 1 - len(tail)
    name = path.name
    while len(os.fsencode(name)) > room:  # whole characters (or undecodable bytes) off the end
        name = name[:-1]
    return path.with_name(f".{name}{tail}")


def check_name_length(rel: str, extra: str = "") -> None:
    """Raise ``ImageError`` when the last part of ``rel`` plus ``extra`` (e.g. a mask's
    ``.png``) is longer than ``NAME_MAX`` bytes, so an output or mask could not be created."""
    name = rel.rsplit("/", 1)[-1] + extra
    if len(os.fsencode(name)) > NAME_MAX:
        raise ImageError(f"file name too long: {name!r} would be {len(os.fsencode(name))} bytes, file systems allow {NAME_MAX}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """Context manager: a binary file object on a temp name, fsynced and renamed over ``path`` on
    success, removed on failure. The one atomic-write mechanism of the package."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = temp_path_for(self.path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.tmp, "xb")
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.f.flush()
                os.fsync(self.f.fileno())
            self.f.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
                _fsync_dir(self.path.parent)
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with AtomicFile(path) as f:
        f.write(data)


def copy_file_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` byte for byte, atomically (the source is only read)."""
    with open(src, "rb") as fin, AtomicFile(dst) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def write_image(path: Path | str, pixels: np.ndarray, like: Scan, jpeg_quality: int = 95) -> None:
    """Write ``pixels`` to ``path`` in ``like``'s format, mode and bit depth, atomically.

    pixels: (H, W, C) with ``like.pixels``' dtype and channel count, upright.
    EXIF (orientation set to 1 when the read applied it, its thumbnail made from ``pixels``),
    ICC profile and DPI are carried.
    Raises ``ImageError`` when the combination cannot be written faithfully.
    """
    path = Path(path)
    if pixels.dtype != like.pixels.dtype or pixels.ndim != 3 or pixels.shape[2] != like.pixels.shape[2]:
        raise ImageError(f"write_image: pixels {pixels.shape} {pixels.dtype} do not match the scan's {like.pixels.shape} {like.pixels.dtype}")
    exif = _exif_thumbnail_refreshed(_exif_for_output(like), pixels)
    if like.mode in ("RGB;16", "RGBA;16"):
        _write_16bit_colour(path, pixels, like, exif)
        return
    if like.mode == "L":
        im = Image.fromarray(np.ascontiguousarray(pixels[..., 0]))
    elif like.mode == "I;16":
        im = Image.fromarray(np.ascontiguousarray(pixels[..., 0]).astype(np.uint16))
    else:
        im = Image.fromarray(np.ascontiguousarray(pixels))
    params: dict[str, Any] = {}
    if like.icc_profile:
        params["icc_profile"] = like.icc_profile
    if like.dpi and like.format in ("JPEG", "PNG", "TIFF", "BMP"):
        params["dpi"] = like.dpi
    if exif and like.format in ("JPEG", "PNG", "TIFF", "WEBP"):
        params["exif"] = exif
    fmt = like.format
    if fmt == "JPEG":
        if like.qtables:
            params["qtables"] = like.qtables
            if like.subsampling is not None and like.subsampling >= 0:
                params["subsampling"] = like.subsampling
            else:  # 4:4:0, 4:1:1 and others Pillow cannot write: 4:4:4 keeps all the colour, 4:2:0 would not
                params["subsampling"] = 0
        else:
            params["quality"] = max(95, int(jpeg_quality))
        if like.progressive:
            params["progressive"] = True
        if like.comment:
            params["comment"] = like.comment
        if like.xmp:
            params["xmp"] = _xmp_for_output(like)
        if like.app13:
            params["extra"] = b"".join(b"\xff\xed" + struct.pack(">H", len(d) + 2) + d for d in _app13_for_output(like.app13))
    elif fmt == "TIFF":
        comp = like.tiff_compression
        params["compression"] = comp if comp in _LOSSLESS_TIFF_COMPRESSION else "tiff_adobe_deflate"
        if params["compression"] != "raw" and exif:
            # libtiff, which Pillow hands compressed TIFFs to, cannot write sub-IFDs: write the
            # file without them, then give it a directory that has them (_tiff_add_sub_ifds)
            params["exif"], subs = _split_sub_ifds(exif)
            if subs:
                buf = _io.BytesIO()
                try:
                    im.save(buf, format=fmt, **params)
                    data = _tiff_add_sub_ifds(buf.getvalue(), subs)
                except (OSError, ValueError, KeyError, TypeError, RuntimeError, struct.error) as exc:
                    raise ImageError(f"cannot write {fmt}: {_one_line(exc)}") from exc
                write_bytes_atomic(path, data)
                return
    elif fmt == "WEBP":
        params["lossless"] = True
        params["exact"] = True
        if like.xmp:
            params["xmp"] = _xmp_for_output(like)
    elif fmt == "PNG":
        params["compress_level"] = 6
        if like.transparency is not None:
            params["transparency"] = like.transparency
        colour = [(k, d) for k, d in like.png_colour if k != b"tRNS"]  # Pillow writes tRNS from ``transparency``
        if like.png_text or colour:
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            for kind, data in colour + _png_text_for_output(like):  # Pillow puts gAMA/cHRM/sRGB before the pixels
                info.add(kind, data)
            params["pnginfo"] = info
    try:
        with AtomicFile(path) as f:
            im.save(f, format=fmt, **params)
    except ImageError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ImageError(f"cannot write {fmt}: {_one_line(exc)}") from exc


def _split_sub_ifds(exif: bytes) -> tuple[Optional[bytes], dict[int, dict]]:
    """EXIF bytes -> (the same without the EXIF/GPS sub-IFDs or None if nothing is left,
    {sub-IFD tag: its tags})."""
    ex = Image.Exif()
    ex.load(exif)
    subs = _sub_ifds(ex)
    for tag in _SUB_IFD_TAGS:
        if tag in ex:
            del ex[tag]
    return (ex.tobytes() if len(ex) else None), subs


def _tiff_add_sub_ifds(data: bytes, subs: dict[int, dict]) -> bytes:
    """A single-image classic TIFF file's bytes -> the same file with ``subs`` (EXIF/GPS sub-IFD
    tag -> its tags) added. The sub-IFDs and a new first directory (the old one's 12-byte
    entries as they are, whose data offsets stay valid, plus one pointer per sub-IFD) are
    appended and the header points to the new directory; strips and everything else stay
    where they are, the old directory is left as unused bytes."""
    from PIL import TiffImagePlugin

    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("not a classic TIFF")
    end = "<" if data[:2] == b"II" else ">"
    first = struct.unpack_from(end + "L", data, 4)[0]
    n = struct.unpack_from(end + "H", data, first)[0]
    entries = [data[first + 2 + 12 * i: first + 14 + 12 * i] for i in range(n)]
    if struct.unpack_from(end + "L", data, first + 2 + 12 * n)[0]:
        raise ValueError("multi-image TIFF")
    entries = [e for e in entries if struct.unpack_from(end + "H", e)[0] not in subs]
    out = bytearray(data)
    for tag, tags in subs.items():
        out += b"\x00" * (len(out) & 1)  # directories start on a word boundary
        sub = TiffImagePlugin.ImageFileDirectory_v2(ifh=data[:8], group=tag)
        for key, value in tags.items():
            sub[key] = value
        entries.append(struct.pack(end + "HHLL", tag, 4, 1, len(out)))  # LONG: the sub-IFD's offset
        out += sub.tobytes(len(out))
    out += b"\x00" * (len(out) & 1)
    start = len(out)
    entries.sort(key=lambda e: struct.unpack_from(end + "H", e)[0])
    out += struct.pack(end + "H", len(entries)) + b"".join(entries) + struct.pack(end + "L", 0)
    out[4:8] = struct.pack(end + "L", start)
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_16bit_colour(path: Path, pixels: np.ndarray, like: Scan, exif: Optional[bytes]) -> None:
    import cv2

    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if like.format == "PNG":
        kinds, blobs = [], []
        if like.icc_profile:
            kinds.append(cv2.IMAGE_METADATA_ICCP)
            blobs.append(np.frombuffer(like.icc_profile, np.uint8))
        if exif:
            kinds.append(cv2.IMAGE_METADATA_EXIF)
            blobs.append(np.frombuffer(exif[6:] if exif.startswith(b"Exif\x00\x00") else exif, np.uint8))
        if kinds:
            ok, buf = cv2.imencodeWithMetadata(".png", bgr, kinds, blobs)
        else:
            ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ImageError("cannot encode 16-bit colour PNG")
        data = buf.tobytes()
        chunks = b"".join(_png_chunk(kind, text) for kind, text in list(like.png_colour) + _png_text_for_output(like))
        if like.dpi:
            ppm = [max(1, int(round(d / 0.0254))) for d in like.dpi]
            chunks = _png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)) + chunks
        data = data[:33] + chunks + data[33:]  # right after the 8-byte signature + IHDR chunk
        write_bytes_atomic(path, data)
        return
    _write_tiff_16bit_colour(path, pixels, like, exif)


def _write_tiff_16bit_colour(path: Path, pixels: np.ndarray, like: Scan, exif: Optional[bytes]) -> None:
    """Baseline little-endian TIFF, one uncompressed strip of 16-bit RGB(A), with the ICC
    profile, DPI, the descriptive tags and the EXIF/GPS sub-IFDs carried over. (Pillow cannot
    hold 16-bit colour and OpenCV cannot write TIFF ICC/EXIF, so the IFD is built here with
    Pillow's own TIFF directory writer.)"""
    from PIL import TiffImagePlugin

    h, w, c = pixels.shape
    data = np.ascontiguousarray(pixels, dtype="<u2")
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        src = Image.Exif()
        src.load(exif)
        for tag in _TIFF_DESCRIPTIVE_TAGS:
            if tag in src:
                ifd[tag] = src[tag]
        for sub_tag, sub in _sub_ifds(src).items():  # EXIF and GPS sub-directories
            ifd[sub_tag] = sub
    ifd[256], ifd[257] = w, h
    ifd[258] = (16,) * c
    ifd[259] = 1  # uncompressed
    ifd[262] = 2  # RGB
    ifd[273] = 0  # strip offset: Pillow adds the directory's end when saving
    ifd[277] = c
    ifd[278] = h
    ifd[279] = data.nbytes
    ifd[284] = 1
    if c == 4:
        ifd[338] = 2  # unassociated alpha
    if like.dpi:
        ifd[282], ifd[283], ifd[296] = float(like.dpi[0]), float(like.dpi[1]), 2
    if like.icc_profile:
        ifd[34675] = like.icc_profile
    head = _io.BytesIO()
    head.write(b"II*\x00" + (8).to_bytes(4, "little"))
    ifd.save(head)
    try:
        with AtomicFile(path) as f:
            f.write(head.getvalue())
            f.write(memoryview(data).cast("B"))
    except (OSError, ValueError, TypeError) as exc:
        raise ImageError(f"cannot write 16-bit colour TIFF: {_one_line(exc)}") from exc


def check_writable(like: Scan) -> None:
    """Raise ``ImageError`` now if ``write_image`` could not write ``like`` faithfully.
    (Every mode ``read_scan`` accepts is writable today; kept as the single place to say so.)"""
    if like.format not in _WRITABLE_FORMATS:
        raise ImageError(f"cannot write format {like.format}")


# ----------------------------------------------------------------------------- pixels <-> model


def max_value(dtype: np.dtype) -> float:
    """255 for uint8, 65535 for uint16."""
    return float(np.iinfo(dtype).max)


def to_model_rgb(pixels: np.ndarray) -> np.ndarray:
    """Scan pixels (h, w, C) uint8/uint16 -> (h, w, 3) float32 RGB in [0, 1].

    Grey is repeated on 3 channels; RGBA gives its RGB part (alpha is never inpainted).
    """
    x = pixels.astype(np.float32) / max_value(pixels.dtype)
    if x.shape[2] == 1:
        return np.repeat(x, 3, axis=2)
    return np.ascontiguousarray(x[..., :3])


def from_model_rgb(pixels: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Merge a model result back into scan pixels; only ``mask`` pixels change.

    pixels: (h, w, C) uint8/uint16 (not modified); filled: (h, w, 3) float32 in [0, 1];
    mask: (h, w) bool. Grey images take the mean of the RGB output (no colour cast);
    alpha is kept. Values are rounded and clipped to the dtype. Returns a new array.
    """
    out = pixels.copy()
    m = mask.astype(bool)
    if not m.any():
        return out
    vals = filled[m].astype(np.float32)  # (N, 3)
    if pixels.shape[2] == 1:
        vals = vals.mean(axis=1, keepdims=True)
    top = max_value(pixels.dtype)
    q = np.clip(np.rint(vals * top), 0, top).astype(pixels.dtype)
    if pixels.shape[2] == 4:
        out[m, :3] = q
    else:
        out[m] = q
    return out


def transparent_key(like: Scan) -> Optional[np.ndarray]:
    """The PNG colour key of ``like`` (tRNS: pixels of exactly this value show transparent) as a
    (C,) array of the scan's dtype, or None when the file has none."""
    if like.transparency is not None:
        key = like.transparency
        return np.array(key if isinstance(key, (tuple, list)) else [key], dtype=like.pixels.dtype)
    raw = dict(like.png_colour).get(b"tRNS")
    if raw is not None and like.mode == "RGB;16" and len(raw) == 6:
        return np.array(struct.unpack(">3H", raw), dtype=np.uint16)
    return None


def keep_off_transparent_key(pixels: np.ndarray, mask: np.ndarray, like: Scan) -> int:
    """Move filled pixels that came out exactly on ``like``'s PNG colour key one level off it
    (the first channel, towards the middle), IN PLACE, so no fill shows as a transparent hole;
    a grey scan keyed at white would otherwise lose every fill that reaches 255.
    pixels: (H, W, C) uint8/uint16; mask: (H, W) bool, True = filled. Returns the count moved."""
    key = transparent_key(like)
    if key is None or key.shape[0] != pixels.shape[2]:
        return 0
    hit = np.asarray(mask, bool) & np.all(pixels == key, axis=2)
    n = int(hit.sum())
    if n:
        step = -1 if int(key[0]) > max_value(pixels.dtype) / 2 else 1
        pixels[hit, 0] = pixels[hit, 0].astype(np.int64) + step
    return n


TO_RGB8_ROWS = 256  # rows converted at a time: 16-bit scans are scaled band by band


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Scan pixels (H, W, C) uint8/uint16 -> (H, W, 3) uint8 RGB for detection and previews.
    16-bit values v become round(v * 255 / 65535). Works ``TO_RGB8_ROWS`` rows at a time, so
    it holds the result and one band: a 199 MP 16-bit RGB scan took 5.8 GB over the whole image
    in 32-bit integers."""
    h, w, c = pixels.shape
    if pixels.dtype != np.uint16:
        if c == 1:
            return np.repeat(pixels, 3, axis=2)
        return np.ascontiguousarray(pixels[..., :3])
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, TO_RGB8_ROWS):
        band = pixels[y:y + TO_RGB8_ROWS, :, :3].astype(np.uint32)
        band *= 255
        band += 32767
        band //= 65535
        out[y:y + TO_RGB8_ROWS] = band  # a grey band broadcasts to the three channels
    return out


MAX_USER_MASK_FRACTION = 0.5  # a user mask covering more is refused (an inverted mask, most likely)


def read_mask(path: Path | str, shape: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A user mask file (any readable format, EXIF orientation applied) -> (H, W) bool.

    Fill where any colour channel is nonzero (white, or any mark, on black), except where the
    mask is transparent: an editor's layer of strokes exported with alpha fills only where it
    is painted (alpha nonzero), whatever colour lies under the transparent pixels. CMYK masks
    are read as their RGB (CMYK 0 is white). Raises ``ImageError`` (one line naming the file)
    when it is unreadable, not of ``shape`` (H, W), or covers more than half the image (a mask
    inverted, saved on a grey or white background, or read without its alpha).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"user mask {path.name} is an empty file (0 bytes)")
        with open(path, "rb") as fp, open_image(fp, max_pixels) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(f"user mask {path.name} ({w}x{h}) exceeds the pixel limit")
            exif = im.getexif()
            orientation = 1 if pillow_made_upright(im) else int(exif.get(ORIENTATION_TAG, 1) or 1)
            if im.mode in ("P", "PA"):
                im2 = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode == "1":
                im2 = im.convert("L")
            elif im.mode == "CMYK":
                im2 = im.convert("RGB")
            elif im.mode == "RGBa":
                im2 = im.convert("RGBA")
            elif im.mode == "La":
                im2 = im.convert("LA")
            else:
                im2 = im
            a = np.asarray(im2)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"unreadable user mask {path.name}: not a readable image (unknown format or corrupt header)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"unreadable user mask {path.name}: {_one_line(exc)}") from exc
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] in (2, 4):  # grey+alpha or RGBA: painted (alpha > 0) and not black
        m = a[..., :-1].any(axis=2) & (a[..., -1] > 0)
    else:
        m = a.any(axis=2)
    m = np.ascontiguousarray(apply_orientation(m[..., None], orientation if orientation in range(1, 9) else 1)[..., 0])
    if m.shape != tuple(shape):
        hint = ""
        if m.shape == tuple(shape)[::-1]:
            hint = " (turned a quarter: was it saved in the scan's stored orientation, before its EXIF rotation?)"
        raise ImageError(f"user mask {path.name} is {m.shape[1]}x{m.shape[0]} but the image is {shape[1]}x{shape[0]}{hint}")
    frac = float(np.count_nonzero(m)) / m.size if m.size else 0.0
    if frac > MAX_USER_MASK_FRACTION:
        raise ImageError(
            f"user mask {path.name} would fill {frac:.0%} of the image; refused (black = keep, any other "
            "colour = fill: is it inverted, on a grey or white background, or painted on a transparent "
            "layer whose alpha was lost?)")
    return m


def mask_name(rel: str) -> str:
    """Where the mask of input ``rel`` (a POSIX path under the input folder) lives in a mask
    folder: ``<rel>.png`` (``box1/a.jpg`` -> ``box1/a.jpg.png``; ``a.jpg`` and ``a.tif`` get
    two masks). ``restore folder`` writes ``OUT/masks/`` so, ``restore masks`` writes its
    folder so, and ``restore folder --masks`` reads it so (``pipeline.UserMasks``)."""
    return f"{rel}.png"


def legacy_mask_name(rel: str) -> str:
    """The layout ``restore masks`` wrote before session 21: ``<rel with its extension replaced
    by .png>`` (``box1/a.jpg`` -> ``box1/a.png``), still read by ``--masks`` when unambiguous."""
    return Path(rel).with_suffix(".png").as_posix()


def write_mask(path: Path | str, mask: np.ndarray) -> None:
    """Write a (H, W) bool mask as an 8-bit greyscale PNG (255 = filled), atomically."""
    im = Image.fromarray(np.where(mask, np.uint8(255), np.uint8(0)))
    with AtomicFile(Path(path)) as f:
        im.save(f, format="PNG", compress_level=3)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
