"""Reading and writing scans (archive_restore.io): formats, bit depths, metadata, orientation."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from archive_restore import io as aio

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like (H, W, 3) uint8 image: smooth gradients plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 80 * np.sin(xx / 23 + k) * np.cos(yy / 31 - k) for k in range(3)], axis=2)
    base += rng.normal(0, 3, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def exif_bytes(orientation: int = 1, make: str = "ScanCo") -> bytes:
    ex = Image.Exif()
    ex[0x010F] = make
    ex[0x0112] = orientation
    return ex.tobytes()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


CASES = [  # (format, ext, mode kind, channels, dtype)
    ("PNG", ".png", "L", 1, np.uint8),
    ("PNG", ".png", "I;16", 1, np.uint16),
    ("PNG", ".png", "RGB", 3, np.uint8),
    ("PNG", ".png", "RGBA", 4, np.uint8),
    ("PNG", ".png", "RGB;16", 3, np.uint16),
    ("TIFF", ".tif", "L", 1, np.uint8),
    ("TIFF", ".tif", "I;16", 1, np.uint16),
    ("TIFF", ".tif", "RGB", 3, np.uint8),
    ("TIFF", ".tif", "RGBA", 4, np.uint8),
    ("TIFF", ".tif", "RGB;16", 3, np.uint16),
    ("WEBP", ".webp", "RGB", 3, np.uint8),
    ("BMP", ".bmp", "RGB", 3, np.uint8),
]


def make_image(path: Path, fmt: str, mode: str, seed: int = 0, meta: bool = True) -> np.ndarray:
    """Write a test image; returns its pixels as (H, W, C) in the scan's dtype."""
    rng = np.random.default_rng(seed)
    h, w = 23, 31
    if mode == "RGB;16":
        a = rng.integers(0, 65535, (h, w, 3), dtype=np.uint16, endpoint=True)
        cv2.imwrite(str(path), a[..., ::-1].copy())
        return a
    if mode == "I;16":
        a = rng.integers(0, 65535, (h, w), dtype=np.uint16, endpoint=True)
        im = Image.fromarray(a)
    elif mode == "L":
        a = rng.integers(0, 255, (h, w), dtype=np.uint8, endpoint=True)
        im = Image.fromarray(a)
    else:
        a = rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8, endpoint=True)
        im = Image.fromarray(a)
    kw = {}
    if meta and fmt != "BMP":
        kw = {"icc_profile": ICC, "exif": exif_bytes()}
        if fmt != "WEBP":
            kw["dpi"] = (300, 300)
    im.save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}), **kw)
    return a if a.ndim == 3 else a[..., None]


@pytest.mark.parametrize("fmt,ext,mode,channels,dtype", CASES)
def test_round_trip_lossless_keeps_pixels_mode_and_metadata(tmp_path, fmt, ext, mode, channels, dtype):
    src = tmp_path / f"in{ext}"
    pixels = make_image(src, fmt, mode)
    scan = aio.read_scan(src)
    assert scan.format == fmt and scan.mode == mode
    assert scan.pixels.dtype == dtype and scan.pixels.shape == (23, 31, channels)
    assert (scan.pixels == pixels).all()
    out = tmp_path / "out" / f"o{ext}"
    aio.write_image(out, scan.pixels, scan)
    back = aio.read_scan(out)
    assert back.format == fmt and back.mode == mode and back.bit_depth == scan.bit_depth
    assert (back.pixels == pixels).all()
    if mode != "RGB;16" and fmt != "BMP":
        assert back.icc_profile == ICC
        assert Image.open(out).getexif().get(0x010F) == "ScanCo"
    if fmt in ("PNG", "TIFF") and mode != "RGB;16":
        assert back.dpi is not None and abs(back.dpi[0] - 300) < 0.1
    assert not [p for p in os.listdir(out.parent) if aio.TEMP_MARK in p]


def test_16bit_colour_png_keeps_icc_exif_dpi(tmp_path):
    src = tmp_path / "c.png"
    pixels = make_image(src, "PNG", "RGB;16")
    scan = aio.read_scan(src)
    scan.icc_profile, scan.exif, scan.dpi = ICC, exif_bytes(), (600.0, 600.0)
    aio.write_image(tmp_path / "o.png", scan.pixels, scan)
    back = aio.read_scan(tmp_path / "o.png")
    assert back.mode == "RGB;16" and (back.pixels == pixels).all()
    assert back.icc_profile == ICC and abs(back.dpi[0] - 600) < 0.1
    assert Image.open(tmp_path / "o.png").getexif().get(0x010F) == "ScanCo"


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_tiff_keeps_icc_exif_dpi_and_orientation(tmp_path, channels):
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 65535, (9, 14, channels), dtype=np.uint16, endpoint=True)
    # a 16-bit colour TIFF with ICC, DPI, Make, orientation 6 and an EXIF sub-IFD
    scan0 = aio.Scan(pixels=stored, format="TIFF", mode="RGBA;16" if channels == 4 else "RGB;16", bit_depth=16, icc_profile=ICC, dpi=(1200.0, 1200.0))
    ex = Image.Exif()
    ex[0x010F] = "ScanCo"
    ex[0x0112] = 6
    ex[0x8769] = {0x9003: "1931:05:04 10:00:00"}
    scan0.exif = ex.tobytes()
    src = tmp_path / "s.tif"
    aio._write_tiff_16bit_colour(src, stored, scan0, scan0.exif)  # orientation 6 stays in the file
    scan = aio.read_scan(src)
    assert scan.mode == scan0.mode and scan.orientation == 6
    assert (scan.pixels == np.rot90(stored, k=-1)).all()  # made upright on read
    out = tmp_path / "o.tif"
    aio.write_image(out, scan.pixels, scan)
    back = aio.read_scan(out)
    assert back.mode == scan0.mode and back.orientation == 1 and (back.pixels == scan.pixels).all()
    assert back.icc_profile == ICC and back.dpi == (1200.0, 1200.0)
    with Image.open(out) as im:
        assert im.getexif()[0x010F] == "ScanCo"
        assert im.getexif().get_ifd(0x8769)[0x9003] == "1931:05:04 10:00:00"


@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif"), ("WEBP", ".webp")])
@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 7, 8])
def test_exif_orientation_applied_on_read_and_reset_on_write(tmp_path, fmt, ext, orientation):
    stored = smooth_rgb(20, 36, orientation)
    src = tmp_path / f"o{ext}"
    Image.fromarray(stored).save(src, format=fmt, exif=exif_bytes(orientation), **({"lossless": True} if fmt == "WEBP" else {}))
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)))
    scan = aio.read_scan(src)
    assert scan.orientation == orientation and scan.orientation_applied
    assert scan.pixels.shape == upright.shape
    if fmt != "JPEG":
        assert (scan.pixels == upright).all()
    else:
        assert psnr(scan.pixels, upright) > 40
    out = tmp_path / f"w{ext}"
    aio.write_image(out, scan.pixels, scan)
    with Image.open(out) as im:
        assert im.getexif().get(0x0112) == 1
        assert im.getexif().get(0x010F) == "ScanCo"
    assert aio.read_scan(out).pixels.shape == upright.shape


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_reencode_uses_source_tables_psnr_over_45(tmp_path, subsampling):
    src = tmp_path / "p.jpg"
    Image.fromarray(smooth_rgb(240, 320, 4)).save(src, quality=80, subsampling=subsampling, exif=exif_bytes(), icc_profile=ICC, dpi=(400, 400))
    scan = aio.read_scan(src)
    assert scan.qtables and scan.subsampling == subsampling
    out = tmp_path / "q.jpg"
    aio.write_image(out, scan.pixels, scan)
    back = aio.read_scan(out)
    assert back.qtables == scan.qtables and back.subsampling == subsampling
    assert psnr(back.pixels, scan.pixels) >= 45
    assert back.icc_profile == ICC and back.dpi == (400.0, 400.0)


def test_grayscale_jpeg(tmp_path):
    src = tmp_path / "g.jpg"
    Image.fromarray(smooth_rgb(64, 64)[..., 0]).save(src, quality=90)
    scan = aio.read_scan(src)
    assert scan.mode == "L" and scan.pixels.shape == (64, 64, 1)
    aio.write_image(tmp_path / "h.jpg", scan.pixels, scan)
    assert psnr(aio.read_scan(tmp_path / "h.jpg").pixels, scan.pixels) >= 45


@pytest.mark.parametrize("mode", ["CMYK", "P"])
def test_cmyk_and_palette_fail_clearly(tmp_path, mode):
    im = Image.fromarray(smooth_rgb(16, 16)).convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    im.save(path)
    with pytest.raises(aio.ImageError, match="CMYK" if mode == "CMYK" else "palette"):
        aio.read_scan(path)


def test_bad_files_give_one_line_errors(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("this is not an image\n")
    Image.fromarray(smooth_rgb(200, 200)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(smooth_rgb(200, 200)).save(tmp_path / "big.png")
    expected = {"zero.jpg": "empty file", "text.png": "not a readable image", "trunc.png": "truncated"}
    for name, text in expected.items():
        with pytest.raises(aio.ImageError, match=text) as info:
            aio.read_scan(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(aio.ImageError, match="decompression bomb"):
        aio.read_scan(tmp_path / "big.png", max_pixels=5000)
    with pytest.raises(aio.ImageError, match="decompression bomb"):
        aio.read_scan(tmp_path / "big.png", max_pixels=30000)  # above 2x: Pillow's own error path
    assert aio.read_scan(tmp_path / "big.png", max_pixels=40000).pixels.shape == (200, 200, 3)


def test_model_conversions_only_change_masked_pixels():
    rng = np.random.default_rng(0)
    mask = rng.random((8, 9)) < 0.3
    for pixels in (
        rng.integers(0, 255, (8, 9, 1), dtype=np.uint8),
        rng.integers(0, 65535, (8, 9, 3), dtype=np.uint16),
        rng.integers(0, 255, (8, 9, 4), dtype=np.uint8),
    ):
        x = aio.to_model_rgb(pixels)
        assert x.dtype == np.float32 and x.shape == (8, 9, 3) and 0 <= x.min() and x.max() <= 1
        assert np.allclose(aio.from_model_rgb(pixels, x, mask), pixels)  # round trip exact
        fill = np.zeros((8, 9, 3), np.float32)
        fill[..., 0] = 1.0  # pure red
        out = aio.from_model_rgb(pixels, fill, mask)
        assert (out[~mask] == pixels[~mask]).all()
        top = np.iinfo(pixels.dtype).max
        if pixels.shape[2] == 1:  # grey gets the channel mean, no colour cast
            assert (out[mask][:, 0] == round(top / 3)).all()
        else:
            assert (out[mask][:, 0] == top).all() and (out[mask][:, 1] == 0).all()
        if pixels.shape[2] == 4:
            assert (out[..., 3] == pixels[..., 3]).all()  # alpha kept


def test_user_mask_reading(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:4, 3:9] = 7
    Image.fromarray(m).save(tmp_path / "m.png")
    got = aio.read_mask(tmp_path / "m.png", (10, 12))
    assert got.dtype == bool and got.sum() == 12 and got[2, 3]
    with pytest.raises(aio.ImageError, match="12x10"):
        aio.read_mask(tmp_path / "m.png", (12, 10))


def test_user_masks_as_editors_save_them(tmp_path):
    """Strokes on a transparent layer fill where painted, whatever colour lies under the
    transparent pixels; a mask that would fill most of the image (inverted, grey background,
    alpha lost) is refused with a hint; empty and rotated masks say what is wrong."""
    strokes = np.zeros((40, 60), bool)
    strokes[10:14, 5:50] = True
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3] = 255  # white under the transparent pixels
    rgba[..., 3] = strokes * 255
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    la = np.stack([np.full((40, 60), 255, np.uint8), (strokes * 255).astype(np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    pal = Image.fromarray(np.where(strokes, 1, 0).astype(np.uint8), "P")
    pal.putpalette([255, 255, 255, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "pal.png", transparency=0)  # transparent index is white
    Image.fromarray(np.where(strokes, 255, 0).astype(np.uint8)).convert("CMYK").save(tmp_path / "cmyk.tif")
    for name in ("rgba.png", "la.png", "pal.png", "cmyk.tif"):  # CMYK: white strokes are C=M=Y=K=0
        assert np.array_equal(aio.read_mask(tmp_path / name, (40, 60)), strokes), name
    Image.fromarray(np.where(strokes, 0, 255).astype(np.uint8)).save(tmp_path / "inverted.png")
    Image.fromarray(np.where(strokes, 255, 2).astype(np.uint8)).save(tmp_path / "grey_bg.png")
    for name in ("inverted.png", "grey_bg.png"):
        with pytest.raises(aio.ImageError, match=r"would fill (9[0-9]|100)% of the image; refused"):
            aio.read_mask(tmp_path / name, (40, 60))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(aio.ImageError, match="empty.png is an empty file"):
        aio.read_mask(tmp_path / "empty.png", (40, 60))
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(aio.ImageError, match=r"junk.png: not a readable image \(") as e:
        aio.read_mask(tmp_path / "junk.png", (40, 60))
    assert "BufferedReader" not in str(e.value)
    with pytest.raises(aio.ImageError, match="rgba.png is 60x40 but the image is 40x60 .turned a quarter"):
        aio.read_mask(tmp_path / "rgba.png", (60, 40))


def test_16bit_colour_png_orientation_applied_once(tmp_path):
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 65535, (9, 14, 3), dtype=np.uint16, endpoint=True)
    scan0 = aio.Scan(pixels=stored, format="PNG", mode="RGB;16", bit_depth=16, exif=exif_bytes(8))
    src = tmp_path / "s.png"
    aio._write_16bit_colour(src, stored, scan0, scan0.exif)  # stored as-is, orientation 8 in EXIF
    scan = aio.read_scan(src)
    assert scan.orientation == 8 and (scan.pixels == np.rot90(stored, k=1)).all()
    aio.write_image(tmp_path / "o.png", scan.pixels, scan)
    back = aio.read_scan(tmp_path / "o.png")
    assert back.orientation == 1 and (back.pixels == scan.pixels).all()


def _tiff_modes(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"L": rng.integers(0, 256, (30, 50), dtype=np.uint8),
            "I;16": rng.integers(0, 65536, (30, 50), dtype=np.uint16),
            "RGB": rng.integers(0, 256, (30, 50, 3), dtype=np.uint8),
            "RGBA": rng.integers(0, 256, (30, 50, 4), dtype=np.uint8)}


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw"])
def test_tiff_orientation_every_mode(tmp_path, compression):
    """Every TIFF mode and orientation reads upright. (Pillow 13 scrambles uncompressed grey,
    16-bit grey and RGBA TIFFs with orientations 5-8 when it is given a file name.)"""
    for orientation in range(1, 9):
        for mode, stored in _tiff_modes(orientation).items():
            p = tmp_path / f"o{orientation}_{mode.replace(';', '')}.tif"
            Image.fromarray(stored).save(p, compression=compression, exif=exif_bytes(orientation))
            want = aio.apply_orientation(stored if stored.ndim == 3 else stored[..., None], orientation)
            got = aio.read_scan(p).pixels
            assert got.shape == want.shape and np.array_equal(got, want), (mode, orientation)


def test_tiff_user_mask_orientation_applied_once(tmp_path):
    stored = np.zeros((30, 50), np.uint8)
    stored[2:6, 3:20] = 255
    p = tmp_path / "m.tif"
    Image.fromarray(stored).save(p, exif=exif_bytes(3))  # 180 degrees: same shape, so only the pixels tell
    assert np.array_equal(aio.read_mask(p, (30, 50)), aio.apply_orientation(stored[..., None], 3)[..., 0] > 0)


def _with_sub_ifds(data: bytes) -> bytes:
    """A little-endian TIFF with an EXIF sub-IFD (DateTimeOriginal) and a GPS sub-IFD
    (GPSLatitudeRef) added by hand (independent of the code under test)."""
    import struct

    b = bytearray(data)
    first = struct.unpack_from("<I", b, 4)[0]
    n = struct.unpack_from("<H", b, first)[0]
    entries = [bytes(b[first + 2 + 12 * i: first + 14 + 12 * i]) for i in range(n)]
    b += b"\0" * (len(b) & 1)
    dto_at = len(b)
    b += b"1921:06:01 12:00:00\0"
    exif_at = len(b)
    b += struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, 20, dto_at) + struct.pack("<I", 0)
    gps_at = len(b)
    b += struct.pack("<H", 1) + struct.pack("<HHI4s", 1, 2, 2, b"N\0\0\0") + struct.pack("<I", 0)
    entries += [struct.pack("<HHII", 0x8769, 4, 1, exif_at), struct.pack("<HHII", 0x8825, 4, 1, gps_at)]
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    at = len(b)
    b += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    struct.pack_into("<I", b, 4, at)
    return bytes(b)


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"])
def test_tiff_keeps_exif_gps_and_descriptive_tags_in_any_compression(tmp_path, compression):
    """Scanner TIFFs are often compressed and carry an EXIF sub-IFD; libtiff (which Pillow
    uses for compressed TIFFs) cannot write one. Output: same compression, pixels, EXIF, GPS,
    XMP and document name."""
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    for mode, stored in _tiff_modes(1).items():
        ex = Image.Exif()
        ex[0x010D], ex[700], ex[0x0112] = "Box 3", xmp, 6
        src, dst = tmp_path / f"s_{mode.replace(';', '')}.tif", tmp_path / f"d_{mode.replace(';', '')}.tif"
        Image.fromarray(stored).save(src, compression=compression, exif=ex.tobytes(), dpi=(600, 600))
        src.write_bytes(_with_sub_ifds(src.read_bytes()))
        scan = aio.read_scan(src)
        aio.write_image(dst, scan.pixels, scan)
        with Image.open(dst) as im:
            e = im.getexif()
            assert im.info["compression"] == compression and im.info["dpi"] == (600, 600)
            assert e.get_ifd(0x8769)[0x9003] == "1921:06:01 12:00:00" and e.get_ifd(0x8825)[1] == "N"
            assert e[0x010D] == "Box 3" and e[700] == xmp and e[0x0112] == 1
        assert np.array_equal(aio.read_scan(dst).pixels, scan.pixels)
        assert cv2.imread(str(dst), cv2.IMREAD_UNCHANGED) is not None


def test_text_metadata_carried_jpeg_png_webp(tmp_path):
    """Archives keep captions in JPEG comments, XMP and IPTC (APP13), and PNG text chunks."""
    import struct

    from PIL.PngImagePlugin import PngInfo

    rgb = smooth_rgb(40, 60)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:title>Harbour 1921</dc:title></rdf:RDF></x:xmpmeta>'
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0f\x1c\x02\x78\x00\x0aA caption."
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=90, comment=b"Box 3, folder 2", xmp=xmp,
                              extra=b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc)
    info = PngInfo()
    info.add_text("Title", "Harbour")
    info.add_text("Description", "a long caption " * 40, zip=True)
    info.add_itxt("Author", "Zoë", "de", "Autor")
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    Image.fromarray(rgb).save(tmp_path / "a.png", pnginfo=info)
    cv2.imwrite(str(tmp_path / "b16.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    raw = (tmp_path / "b16.png").read_bytes()
    (tmp_path / "b16.png").write_bytes(raw[:33] + aio._png_chunk(b"tEXt", b"Title\x00Sixteen") + raw[33:])
    Image.fromarray(rgb).save(tmp_path / "a.webp", lossless=True, xmp=xmp)
    for name in ("a.jpg", "a.png", "b16.png", "a.webp"):
        scan = aio.read_scan(tmp_path / name)
        aio.write_image(tmp_path / f"out_{name}", scan.pixels, scan)
    with Image.open(tmp_path / "out_a.jpg") as im:
        assert im.info["comment"] == b"Box 3, folder 2" and im.info["xmp"] == xmp
        assert [d for m, d in im.applist if m == "APP13"] == [iptc]
    with Image.open(tmp_path / "out_a.png") as im:
        assert im.text == {"Title": "Harbour", "Description": "a long caption " * 40, "Author": "Zoë",
                           "XML:com.adobe.xmp": xmp.decode()}
    with Image.open(tmp_path / "out_b16.png") as im:
        assert im.text == {"Title": "Sixteen"}
    assert aio.read_scan(tmp_path / "out_b16.png").mode == "RGB;16"
    with Image.open(tmp_path / "out_a.webp") as im:
        assert im.info["xmp"] in (xmp, xmp.decode())


def _exif_with_thumbnail(thumb: bytes, trailing: bytes = b"") -> bytes:
    """Little-endian EXIF as cameras write it: IFD0 (Make), IFD1 pointing at a JPEG thumbnail
    (``trailing`` bytes after it, as some editors leave)."""
    import struct

    ifd0 = struct.pack("<H", 1) + struct.pack("<HHL4s", 0x010F, 2, 4, b"Cam\x00") + struct.pack("<L", 26)
    at = 26 + 2 + 3 * 12 + 4
    ifd1 = (struct.pack("<H", 3) + struct.pack("<HHLHH", 0x0103, 3, 1, 6, 0)
            + struct.pack("<HHLL", 0x0201, 4, 1, at) + struct.pack("<HHLL", 0x0202, 4, 1, len(thumb)) + struct.pack("<L", 0))
    return b"Exif\x00\x00II*\x00" + struct.pack("<L", 8) + ifd0 + ifd1 + thumb + trailing


def _thumbnail_of(path: Path) -> Image.Image:
    from PIL import ExifTags

    with Image.open(path) as im:
        raw = im.info["exif"][6:]
        ifd1 = im.getexif().get_ifd(ExifTags.IFD.IFD1)
    thumb = raw[ifd1[0x0201]: ifd1[0x0201] + ifd1[0x0202]]
    return Image.open(__import__("io").BytesIO(thumb))


@pytest.mark.parametrize("trailing", [b"", b"editor's trailing bytes"])
def test_exif_thumbnail_made_from_the_restored_pixels(tmp_path, trailing):
    """File browsers show EXIF's thumbnail: a restored file must not show the damaged scan there."""
    import io as _stdio

    buf = _stdio.BytesIO()
    Image.new("RGB", (160, 120), (0, 0, 0)).save(buf, format="JPEG")
    old_thumb = buf.getvalue()
    damaged = np.zeros((200, 320, 3), np.uint8)
    Image.fromarray(damaged).save(tmp_path / "a.jpg", quality=90, exif=_exif_with_thumbnail(old_thumb, trailing))
    scan = aio.read_scan(tmp_path / "a.jpg")
    restored = np.full_like(scan.pixels, 230)
    aio.write_image(tmp_path / "out.jpg", restored, scan)
    data = (tmp_path / "out.jpg").read_bytes()
    assert old_thumb not in data
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.getexif()[0x010F] == "Cam"
        if trailing:
            assert trailing in im.info["exif"]
    thumb = _thumbnail_of(tmp_path / "out.jpg")
    assert thumb.size == (160, 100)  # fitted into the old 160x120, the scan's shape kept
    assert abs(np.asarray(thumb.convert("RGB")).astype(float).mean() - 230) < 3


def test_exif_strip_thumbnail_is_unlinked(tmp_path):
    """An IFD1 without a JPEG thumbnail (strips, or broken pointers) is unlinked, not copied."""
    import struct

    from PIL import ExifTags

    exif = bytearray(_exif_with_thumbnail(b"\xff" * 64))
    for bad_offset in (10_000, 0, 30):  # past the end, over the header, over IFD1
        struct.pack_into("<L", exif, 6 + 26 + 2 + 12 + 8, bad_offset)
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a.jpg", exif=bytes(exif))
        scan = aio.read_scan(tmp_path / "a.jpg")
        aio.write_image(tmp_path / "out.jpg", scan.pixels, scan)
        with Image.open(tmp_path / "out.jpg") as im:
            assert im.getexif()[0x010F] == "Cam" and im.getexif().get_ifd(ExifTags.IFD.IFD1) == {}, bad_offset


def test_photoshop_thumbnails_left_out_iptc_kept(tmp_path):
    """Photoshop's APP13 carries IPTC captions (kept) and thumbnails of the scan (left out),
    also when its resources run over two segments."""
    import struct

    def block(rid: int, data: bytes) -> bytes:
        return b"8BIM" + struct.pack(">H", rid) + b"\x00\x00" + struct.pack(">L", len(data)) + data + b"\x00" * (len(data) & 1)

    iptc = block(0x0404, b"\x1c\x02\x78\x00\x0bA caption.!")
    big_thumb = block(0x040C, b"\x01" * 70_000)
    old_thumb = block(0x0409, b"\x02" * 300)
    body = iptc + old_thumb + big_thumb + block(0x03ED, b"\x00" * 16)
    head = aio._PHOTOSHOP_HEADER
    segs = [head + body[:60_000], head + body[60_000:]]
    extra = b"".join(b"\xff\xed" + struct.pack(">H", len(d) + 2) + d for d in segs)
    Image.fromarray(smooth_rgb(40, 60)).save(tmp_path / "a.jpg", quality=90, extra=extra)
    scan = aio.read_scan(tmp_path / "a.jpg")
    assert len(scan.app13) == 2
    aio.write_image(tmp_path / "out.jpg", scan.pixels, scan)
    with Image.open(tmp_path / "out.jpg") as im:
        out = [d for m, d in im.applist if m == "APP13"]
    assert out == [head + iptc + block(0x03ED, b"\x00" * 16)]
    assert aio._app13_for_output((b"not photoshop",)) == [b"not photoshop"]
    broken = head + b"8BIM\x04\x04\x00\x00\x00\x00\xff\xff"  # size past the end: kept as it is
    assert aio._app13_for_output((broken,)) == [broken]


def _mpo(path: Path, second_type: int) -> None:
    """A camera's multi-picture JPEG: the picture, then a smaller copy of MP type ``second_type``."""
    import struct

    big = Image.fromarray(smooth_rgb(60, 80))
    big.save(path, format="MPO", save_all=True, append_images=[big.resize((40, 30))], quality=90)
    with Image.open(path) as im:
        first_size = im.mpinfo[0xB002][0]["Size"]
    data = bytearray(path.read_bytes())
    table = data.index(struct.pack("<LL", 0x030000, first_size), data.index(b"MPF\x00"))  # the primary's entry
    struct.pack_into("<L", data, table + 16, second_type)  # the second entry's attribute
    path.write_bytes(bytes(data))


def test_camera_jpeg_with_a_preview_picture_is_restored_as_jpeg(tmp_path):
    """Cameras append a VGA/Full HD preview (MPO); it shows the damage and is not carried."""
    _mpo(tmp_path / "cam.jpg", 0x010001)  # Large Thumbnail (VGA Equivalent)
    with Image.open(tmp_path / "cam.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2
    scan = aio.read_scan(tmp_path / "cam.jpg")
    assert scan.format == "JPEG" and scan.pixels.shape == (60, 80, 3)
    aio.write_image(tmp_path / "out.jpg", scan.pixels, scan)
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.format == "JPEG" and getattr(im, "n_frames", 1) == 1
    assert psnr(aio.read_scan(tmp_path / "out.jpg").pixels, scan.pixels) > 40
    _mpo(tmp_path / "stereo.jpg", 0x020002)  # Multi-Frame Image (Disparity): the other eye
    with pytest.raises(aio.ImageError, match=r"multi-picture JPEG \(MPO\) with 2 pictures .*would be lost"):
        aio.read_scan(tmp_path / "stereo.jpg")


def test_bomb_message_names_our_limit(tmp_path):
    p = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 400), np.uint8)).save(p)
    with pytest.raises(aio.ImageError, match="120000 pixels exceeds the limit of 50000"):
        aio.read_scan(p, max_pixels=50_000)
    with pytest.raises(aio.ImageError, match="exceeds the limit of 100000$"):
        aio.read_scan(p, max_pixels=100_000)  # between our limit and Pillow's (twice it)


def test_tiff_iptc_stored_as_longs_is_carried_byte_for_byte(tmp_path):
    """Photoshop stores IPTC (tag 33723) as LONGs; Pillow's tag table cuts that to one number
    (which was then written as its digits). The stored bytes are carried."""
    import struct

    iptc = b"\x1c\x02\x78\x00\x0bA caption.\x00"  # 16 bytes: four LONGs
    src, dst = tmp_path / "s.tif", tmp_path / "d.tif"
    Image.fromarray(smooth_rgb(20, 30)).save(src, compression="tiff_lzw")
    data = bytearray(src.read_bytes())
    first = struct.unpack_from("<I", data, 4)[0]
    n = struct.unpack_from("<H", data, first)[0]
    entries = [bytes(data[first + 2 + 12 * i: first + 14 + 12 * i]) for i in range(n)]
    data += b"\0" * (len(data) & 1)
    at = len(data)
    data += iptc
    entries.append(struct.pack("<HHII", 33723, 4, 4, at))  # type LONG, count 4
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    ifd_at = len(data)
    data += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    struct.pack_into("<I", data, 4, ifd_at)
    src.write_bytes(bytes(data))
    scan = aio.read_scan(src)
    aio.write_image(dst, scan.pixels, scan)
    with Image.open(dst) as im:
        assert im.tag_v2._tagdata.get(33723) == iptc and im.info["compression"] == "tiff_lzw"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_orientation_held_in_xmp_is_not_applied_twice(tmp_path, fmt):
    """A file whose orientation is only in its XMP: read upright, written upright with the XMP
    saying 1, so reading the output (or any Pillow viewer) does not turn it again."""
    from PIL.PngImagePlugin import PngInfo

    stored = smooth_rgb(40, 60)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    ext = {"JPEG": "jpg", "WEBP": "webp", "PNG": "png"}[fmt]
    src, dst = tmp_path / f"s.{ext}", tmp_path / f"d.{ext}"
    if fmt == "PNG":
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=True)
        Image.fromarray(stored).save(src, pnginfo=info)
    else:
        Image.fromarray(stored).save(src, xmp=xmp, **({"lossless": True} if fmt == "WEBP" else {"quality": 95}))
    scan = aio.read_scan(src)
    assert scan.orientation == 6 and scan.pixels.shape == (60, 40, 3)
    aio.write_image(dst, scan.pixels, scan)
    again = aio.read_scan(dst)
    assert again.orientation == 1 and again.pixels.shape == (60, 40, 3)
    with Image.open(dst) as im:
        assert ImageOps.exif_transpose(im).size == (40, 60)


def test_temp_names_are_cut_at_a_character(tmp_path):
    name = "é" * 125 + ".jpg"  # 254 bytes
    tmp = aio.temp_path_for(tmp_path / name).name
    assert len(tmp.encode()) <= aio.NAME_MAX
    tmp.encode("utf-8")  # whole characters only: raises on a cut one


def test_to_rgb8_rounds_16_bit_exactly_band_by_band(monkeypatch):
    monkeypatch.setattr(aio, "TO_RGB8_ROWS", 7)  # bands that do not divide the height
    rng = np.random.default_rng(3)
    for c in (1, 3, 4):
        p = rng.integers(0, 65536, (50, 9, c), dtype=np.uint16)
        p[0, 0] = 65535
        p[0, 1] = 128  # 128 * 255 / 65535 = 0.498: rounds down; 129 rounds up
        p[0, 2] = 129
        want = ((p[..., :3].astype(np.uint64) * 255 + 32767) // 65535).astype(np.uint8)
        got = aio.to_rgb8(p)
        assert got.shape == (50, 9, 3) and np.array_equal(got, np.broadcast_to(want, got.shape))
        assert got[0, 0, 0] == 255 and got[0, 1, 0] == 0 and got[0, 2, 0] == 1


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_file(rgb: np.ndarray, rows: int | None = None, interlace: bool = False) -> bytes:
    """A plain 8-bit RGB PNG of ``rgb`` whose compressed data holds only its first ``rows``
    rows (all when None; then optionally Adam7-interlaced), closed and ended with IEND."""
    import struct
    import zlib

    h, w, _ = rgb.shape
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            sub = rgb[y0::dy, x0::dx]
            if sub.size:
                raw += b"".join(b"\x00" + r.tobytes() for r in sub)
    else:
        raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h if rows is None else rows))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, int(interlace)))
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def test_png_whose_pixel_data_ends_early_fails(tmp_path):
    """Pillow decodes a PNG whose closed compressed stream holds 100 of 400 rows without an
    error (the rest black); read_scan refuses it. Whole files, interlaced ones too, still read
    with their exact pixels."""
    rgb = smooth_rgb(400, 90, seed=3)
    (tmp_path / "short.png").write_bytes(_png_file(rgb, rows=100))
    Image.open(tmp_path / "short.png").load()  # the premise: Pillow alone does not notice
    with pytest.raises(aio.ImageError, match="ends before its last row"):
        aio.read_scan(tmp_path / "short.png")
    for name, interlace in (("whole.png", False), ("adam7.png", True)):
        odd = rgb[:397, :83]  # passes of uneven sizes
        (tmp_path / name).write_bytes(_png_file(np.ascontiguousarray(odd), interlace=interlace))
        assert np.array_equal(aio.read_scan(tmp_path / name).pixels, odd)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGB;16"])
def test_png_colour_key_and_colour_chunks_are_carried(tmp_path, mode):
    """A PNG's tRNS colour key and its gAMA/cHRM/sRGB chunks come through a restore: the
    transparent pixels outside the mask stay transparent, and a filled pixel that lands exactly
    on the key is moved one level off it instead of showing as a hole."""
    import struct

    from PIL.PngImagePlugin import PngInfo

    rgb = smooth_rgb(40, 60, seed=4)
    rgb[:, 30:] = 255
    if mode == "RGB;16":
        px = rgb.astype(np.uint16) * 257
        key = (65535, 65535, 65535)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(px, cv2.COLOR_RGB2BGR))
        data = buf.tobytes()
        extra = (_png_chunk(b"gAMA", struct.pack(">I", 45455)) + _png_chunk(b"sRGB", b"\x00")
                 + _png_chunk(b"tRNS", struct.pack(">3H", *key)))
        (tmp_path / "in.png").write_bytes(data[:33] + extra + data[33:])
    else:
        info = PngInfo()
        info.add(b"gAMA", struct.pack(">I", 45455))
        info.add(b"sRGB", b"\x00")
        arr, key = (rgb, (255, 255, 255)) if mode == "RGB" else (rgb[..., 0], 255)
        Image.fromarray(arr).save(tmp_path / "in.png", transparency=key, pnginfo=info)
    scan = aio.read_scan(tmp_path / "in.png")
    top = aio.max_value(scan.pixels.dtype)
    mask = np.zeros(scan.pixels.shape[:2], bool)
    mask[5:15, 20:50] = True  # across the keyed white half
    scan.pixels[mask] = top  # a fill that came out white, on the key
    moved = aio.keep_off_transparent_key(scan.pixels, mask, scan)
    assert moved == int((mask[:, 30:]).sum() + mask[:, :30].sum())
    assert not np.all(scan.pixels[mask] == top, axis=1).any()
    assert np.all(scan.pixels[~mask & (np.arange(60) >= 30)[None, :]] == top)  # left as they were
    aio.write_image(tmp_path / "out.png", scan.pixels, scan)
    out_kinds = []
    blob = (tmp_path / "out.png").read_bytes()
    i = 8
    while i < len(blob):
        n = int.from_bytes(blob[i:i + 4], "big")
        out_kinds.append(blob[i + 4:i + 8])
        i += 12 + n
    assert {b"gAMA", b"sRGB", b"tRNS"} <= set(out_kinds)
    assert out_kinds.index(b"tRNS") < out_kinds.index(b"IDAT") and out_kinds.index(b"gAMA") < out_kinds.index(b"IDAT")
    if mode != "RGB;16":
        im = Image.open(tmp_path / "out.png")
        assert im.info["transparency"] == key
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
        assert (alpha[~mask] == 0).sum() == (~mask & (np.arange(60) >= 30)[None, :]).sum()  # outside: as before
        assert (alpha[mask] == 255).all()  # no fill is a hole


def test_resolution_is_written_only_when_the_file_had_one(tmp_path):
    """Pillow says (1, 1) dpi for a TIFF without resolution tags and 72 dpi for a JPEG with EXIF
    but no resolution; neither is written back as if the scan had said it. Real ones are kept."""
    rgb = smooth_rgb(32, 48)
    ex = Image.Exif()
    ex[0x010F] = "ScanCo"
    Image.fromarray(rgb).save(tmp_path / "a.tif", compression="tiff_lzw")
    Image.fromarray(rgb).save(tmp_path / "b.jpg", exif=ex.tobytes())
    Image.fromarray(rgb).save(tmp_path / "c.tif", compression="tiff_lzw", dpi=(600, 600))
    Image.fromarray(rgb).save(tmp_path / "d.jpg", dpi=(300, 300))
    for name, dpi in (("a.tif", None), ("b.jpg", None), ("c.tif", (600.0, 600.0)), ("d.jpg", (300.0, 300.0))):
        scan = aio.read_scan(tmp_path / name)
        assert scan.dpi == dpi, name
        aio.write_image(tmp_path / f"out_{name}", scan.pixels, scan)
    assert 282 not in Image.open(tmp_path / "out_a.tif").tag_v2
    assert Image.open(tmp_path / "out_b.jpg").info.get("jfif_unit") == 0  # aspect ratio only, as before
    assert Image.open(tmp_path / "out_c.tif").info["dpi"] == pytest.approx((600, 600))
    assert Image.open(tmp_path / "out_d.jpg").info["dpi"] == pytest.approx((300, 300))


def test_jpeg_subsampling_pillow_cannot_write_becomes_444(tmp_path):
    """A 4:4:0 JPEG (what a lossless turn of a 4:2:2 one makes): Pillow cannot write 4:4:0, so
    the restored file is 4:4:4, never the coarser 4:2:0."""
    rgb = smooth_rgb(64, 64)
    ok = cv2.imwrite(str(tmp_path / "s440.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440])
    assert ok
    assert [layer[1:3] for layer in Image.open(tmp_path / "s440.jpg").layer][0] == (1, 2)
    scan = aio.read_scan(tmp_path / "s440.jpg")
    aio.write_image(tmp_path / "out.jpg", scan.pixels, scan)
    assert [layer[1:3] for layer in Image.open(tmp_path / "out.jpg").layer] == [(1, 1)] * 3
