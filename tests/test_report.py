"""Report rendering from synthetic manifests: data blob, last-record-wins, previews and
their cache, placeholders for missing/corrupt files, escaping, CSP, 5,000-entry page
weight, the needs-review rule and the `restore report` command."""

from __future__ import annotations

import base64
import hashlib
import html as html_mod
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import _report_helpers as H  # noqa: E402

from archive_restore.cli import app  # noqa: E402
from archive_restore.report import ManifestError, render  # noqa: E402
from archive_restore.report.assets import GRID_SIDE, VIEW_SIDE  # noqa: E402
from archive_restore.report.records import normalise, review_reasons  # noqa: E402

PKG = Path(__file__).resolve().parents[1] / "archive_restore" / "report"


def _render(out_dir: Path) -> tuple[str, dict]:
    path = render(out_dir)
    assert path == out_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    return html, H.page_data(html)


def test_small_report_previews_links_and_last_record_wins(tmp_path):
    names = ["box1/scan 001.jpg", "box1/wide.png", "box2/failed.jpg"]
    input_root, out_dir, recs = H.make_run(tmp_path, names, failed={"box2/failed.jpg": "cannot decode: truncated file"})
    # a wide input bigger than the viewer preview, to check the size caps
    Image.fromarray(H.sepia_scene(2000, 300, 9)).save(input_root / "box1/wide.png")
    # a rerun appended a newer record for scan 001; plus one truncated line
    newer = dict(recs[0], status="unchanged", masked_fraction=0.0)
    H.write_manifest(out_dir, recs + [newer], extra_lines=['{"input": "box1/trunc'])

    html, data = _render(out_dir)
    items = H.items_by_name(data)
    assert sorted(items) == sorted(names)
    assert items["box1/scan 001.jpg"]["s"] == "unchanged"  # the LAST record per input wins
    assert data["summary"]["counts"] == {"restored": 1, "unchanged": 1, "failed": 1} and data["summary"]["reused"] == 0
    assert data["summary"]["bad_lines"] == 1
    assert items["box2/failed.jpg"]["e"] == "cannot decode: truncated file"
    assert "failed" in items["box2/failed.jpg"]["r"]

    wide = items["box1/wide.png"]
    assert wide["af"] == "bam"
    assets = out_dir / "report_assets"
    with Image.open(assets / f"{wide['a']}.b1600.jpg") as im:
        assert max(im.size) == VIEW_SIDE and im.format == "JPEG"
    with Image.open(assets / f"{wide['a']}.b512.jpg") as im:
        assert max(im.size) <= GRID_SIDE
    with Image.open(assets / f"{wide['a']}.m1600.png") as im:
        assert im.mode == "RGBA"
        alpha = np.asarray(im)[..., 3]
        assert 0 < (alpha > 0).mean() < 0.5  # the mask shows, translucent, only where filled
    # a failed image still gets its input as a "before" preview, and no after/mask
    assert items["box2/failed.jpg"]["af"] == "b"

    # links: input relative from out_dir to input_root, escaped; output and mask under out_dir
    link_in, link_out, link_mask = items["box1/scan 001.jpg"]["links"]
    assert link_in == "../scans/box1/scan%20001.jpg"
    assert (out_dir / link_in.replace("%20", " ")).resolve() == (input_root / "box1/scan 001.jpg").resolve()
    assert link_out == "box1/scan%20001.jpg" and link_mask == "masks/box1/scan%20001.jpg.png"

    assert data["roots"] == ["../scans/"]
    # the exact raw record is recoverable from the factored-out blob
    rebuilt = items["box1/scan 001.jpg"]["raw"]
    assert rebuilt == newer and list(rebuilt) == list(newer)
    # the page never points at a full-size file as an image source
    assert not re.search(r"<img[^>]+src=", html)


def test_rebuild_reuses_assets_and_refreshes_changed_ones(tmp_path):
    _, out_dir, recs = H.make_run(tmp_path, ["a.jpg", "b.jpg"])
    _, data = _render(out_dir)
    assets = out_dir / "report_assets"
    before = {p.name: p.stat().st_mtime_ns for p in assets.iterdir()}
    time.sleep(0.01)
    _, data2 = _render(out_dir)
    assert {p.name: p.stat().st_mtime_ns for p in assets.iterdir()} == before  # nothing regenerated

    # a rerun rewrites b.jpg: its previews change key, the stale ones are removed
    Image.fromarray(H.sepia_scene(96, 72, 42)).save(out_dir / "b.jpg")
    recs[1]["output_sha256"] = hashlib.sha256((out_dir / "b.jpg").read_bytes()).hexdigest()
    H.write_manifest(out_dir, recs)
    _, data3 = _render(out_dir)
    old_key = {n: it["a"] for n, it in H.items_by_name(data).items()}
    new_key = {n: it["a"] for n, it in H.items_by_name(data3).items()}
    assert old_key["a.jpg"] == new_key["a.jpg"] and old_key["b.jpg"] != new_key["b.jpg"]
    names = {p.name for p in assets.iterdir()}
    assert not any(n.startswith(old_key["b.jpg"]) for n in names)
    assert f"{new_key['b.jpg']}.a512.jpg" in names


def test_missing_and_corrupt_files_become_placeholders(tmp_path):
    input_root, out_dir, _ = H.make_run(tmp_path, ["gone.jpg", "corrupt.jpg", "nomask.jpg"])
    (input_root / "gone.jpg").unlink()
    (out_dir / "gone.jpg").unlink()
    (out_dir / "corrupt.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (out_dir / "masks" / "nomask.jpg.png").unlink()
    _, data = _render(out_dir)
    items = H.items_by_name(data)
    assert "a" not in items["gone.jpg"] and items["gone.jpg"]["ae"]["before"] == "file not found"
    assert "output file missing" in items["gone.jpg"]["r"]
    assert items["corrupt.jpg"]["af"] == "bm" and "after" in items["corrupt.jpg"]["ae"]
    assert items["corrupt.jpg"]["ae"]["after"] == "OSError: not a readable image (unknown format or corrupt header)"
    assert "output file unreadable" in items["corrupt.jpg"]["r"]
    assert items["nomask.jpg"]["af"] == "ba" and items["nomask.jpg"]["ae"]["mask"] == "file not found"


def test_16bit_and_exif_rotated_inputs_get_previews(tmp_path):
    input_root, out_dir, _ = H.make_run(tmp_path, ["gray16.png", "rotated.jpg"], size=(80, 40))
    ramp = np.tile(np.linspace(0, 65535, 80), (40, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(input_root / "gray16.png")
    img = Image.fromarray(H.sepia_scene(80, 40, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    img.save(input_root / "rotated.jpg", exif=exif)
    _, data = _render(out_dir)
    items = H.items_by_name(data)
    assets = out_dir / "report_assets"
    with Image.open(assets / f"{items['gray16.png']['a']}.b512.jpg") as im:
        arr = np.asarray(im.convert("L"))
        assert arr[:, :5].mean() < 40 and arr[:, -5:].mean() > 200  # scaled, not clipped to white
    with Image.open(assets / f"{items['rotated.jpg']['a']}.b512.jpg") as im:
        assert im.size == (40, 80)


def test_hostile_names_and_texts_are_escaped(tmp_path):
    hostile_dir = "<b>x</b>&amp;"
    names = [H.HOSTILE, f"{hostile_dir}/ok.jpg", "fails.jpg"]
    err = "</script><script>alert(2)</script><!-- \u2028"
    input_root, out_dir, recs = H.make_run(tmp_path, names, failed={"fails.jpg": err})
    recs[0]["settings"]["masks_dir"] = "</SCRIPT ><img src=y onerror=alert(3)>"
    recs[0]["model_name"] = "<svg onload=alert(4)>"
    H.write_manifest(out_dir, recs)
    html, data = _render(out_dir)
    for raw in (H.HOSTILE, "<img src=x", "onerror=alert(1)>", "<b>x</b>", "<svg", "alert(2)</script>", "<!--", "</SCRIPT"):
        assert raw not in html, raw
    assert html.lower().count("</script") == 2 and html.lower().count("<script") == 2
    assert "\u2028" not in html
    items = H.items_by_name(data)  # ... and the data round-trips exactly
    assert set(items) == set(names) and items["fails.jpg"]["e"] == err
    assert items[H.HOSTILE]["links"][1] == "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.jpg"


def test_page_uses_no_html_sinks_and_a_strict_csp(tmp_path):
    js = (PKG / "report.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"style"):
        assert sink not in js, sink
    _, out_dir, _ = H.make_run(tmp_path, ["a.jpg"])
    html, _ = _render(out_dir)
    csp = html_mod.unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "http" not in csp
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    for text, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no remote or protocol-relative loads


def test_5000_entry_report_is_light(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    recs = H.many_records(tmp_path / "scans", 5000, seed=0, fail_every=97, error="decode error {i}")
    H.write_manifest(out_dir, recs)
    t0 = time.perf_counter()
    html, data = _render(out_dir)
    seconds = time.perf_counter() - t0
    size = len(html.encode("utf-8"))
    print(f"\n5000-entry report: render {seconds:.2f} s, html {size / 1e6:.2f} MB")
    assert len(data["items"]) == 5000
    assert data["summary"]["counts"]["failed"] == len(range(0, 5000, 97))
    assert size < 6_000_000, size  # page weight: the whole report, data included
    # render time is measured by benchmarks/bench_report.py, not asserted here
    assert all("a" not in it for it in data["items"])  # no files: placeholders, no previews
    assert os.listdir(out_dir / "report_assets") == []  # and no cache files for nothing
    assert ".tif" not in re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"masked_fraction": 0.049}, []),
        ({"masked_fraction": 0.051}, ["masked 5.1%"]),
        ({"kind_pixels": {"blotches": 40}, "width": 64, "height": 48}, ["large blotches fill 1.3%"]),
        ({"kind_pixels": {"text": 30, "scratches": 3000}, "width": 64, "height": 48}, []),
        ({"status": "failed", "error": "x"}, ["failed"]),
        ({"status": "exploded"}, ["malformed record"]),
    ],
)
def test_needs_review_rule(over, expected):
    entry = normalise(H.record("a.jpg", Path("/in"), **{"masked_fraction": 0.01, "kind_pixels": {}, **over}))
    assert review_reasons(entry, output_exists=True) == expected


def test_cli_report(tmp_path):
    _, out_dir, _ = H.make_run(tmp_path, ["a.jpg"])
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(out_dir)])
    assert res.exit_code == 0, res.output
    assert (out_dir / "report.html").is_file() and "report.html" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["report", str(empty)])
    assert res.exit_code == 1
    assert "no manifest.jsonl" in res.output and len(res.output.strip().splitlines()) == 1
    with pytest.raises(ManifestError):
        render(empty)


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_rotated_tiff_previews_are_upright_once(tmp_path, mode):
    """Pillow applies a TIFF's orientation itself: the preview must not turn it again (and an
    uncompressed grey or RGBA TIFF must not come out scrambled)."""
    from archive_restore.report.assets import _open_preview

    stored = np.zeros((40, 80), np.uint8)
    stored[:, :20] = 255  # bright left quarter as stored
    arr = stored if mode == "L" else np.dstack([stored] * 3 + [np.full_like(stored, 255)])
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the bright band on top
    Image.fromarray(arr).save(tmp_path / "r.tif", exif=exif.tobytes())
    im = np.asarray(_open_preview(tmp_path / "r.tif", 512).convert("L")).astype(int)
    assert im.shape == (80, 40)
    assert im[:18].mean() > 240 and im[22:].mean() < 15


def test_previews_keep_the_decompression_bomb_limit(tmp_path):
    """A scan over the pixel limit (a bomb the run refused) is not decoded for its preview,
    neither by Pillow nor by the OpenCV fallback; JPEGs count at their reduced decode scale."""
    from archive_restore.report.assets import _open_preview

    Image.fromarray(np.zeros((300, 400), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(OSError, match="over the 50000-pixel limit"):
        _open_preview(tmp_path / "big.png", 512, max_pixels=50_000)
    assert _open_preview(tmp_path / "big.png", 512, max_pixels=120_000).size == (400, 300)
    Image.fromarray(np.zeros((400, 400, 3), np.uint8)).save(tmp_path / "big.jpg")
    assert _open_preview(tmp_path / "big.jpg", 100, max_pixels=100_000).size == (100, 100)  # decoded at 1/4
    with pytest.raises(OSError, match="over the 50000-pixel limit"):
        _open_preview(tmp_path / "big.jpg", 512, max_pixels=50_000)


@pytest.mark.skipif(not __import__("shutil").which("node"), reason="needs node to run the page's script")
def test_links_of_names_that_are_not_utf8_encode_their_raw_bytes(tmp_path):
    """A name that is not UTF-8 reaches the page with Python's surrogate escapes; the page's link
    must percent-encode the raw bytes (what the file system holds), not throw URIError."""
    import json
    import subprocess
    import urllib.parse

    js = (Path(__file__).resolve().parents[1] / "archive_restore" / "report" / "report.js").read_text()
    start = js.index("  function encPart(s)")
    body = js[start: js.index("\n  }\n", start) + 4]
    names = ["bad\udcff\udcfe.png", "café <x>&#?.jpg", "emoji\U0001f600.jpg"]
    script = body + "\nconsole.log(JSON.stringify(" + json.dumps(names) + ".map(encPart)));\n"
    (tmp_path / "t.js").write_text(script, encoding="utf-8", errors="surrogatepass")
    got = json.loads(subprocess.run(["node", str(tmp_path / "t.js")], capture_output=True, text=True, check=True).stdout)
    assert got == [urllib.parse.quote(os.fsencode(n), safe="") for n in names]


def test_throughput_is_per_wall_clock_hour_not_summed_image_time():
    """restore folder works on several images at once, so their times overlap: three images of
    4 s each that all finished within 6 s of the first start ran at 1,800 an hour, not 900."""
    from archive_restore.report.records import summarise

    recs = [{"input": f"{n}.png", "status": "restored", "timings": {"total": 4.0}, "finished_at": f"2026-12-03T10:00:0{t}Z"}
            for n, t in (("a", 4), ("b", 5), ("c", 6))]
    s = summarise([normalise(r) for r in recs], 0, 3)
    assert s["wall_s"] == pytest.approx(6.0) and s["total_s"] == pytest.approx(12.0)
    assert s["per_hour"] == pytest.approx(1800.0)
    assert summarise([normalise({"input": "x.png", "status": "failed"})], 0, 1)["per_hour"] is None
    # a rerun that skipped everything did no work: no rate, rather than millions an hour
    skipped = [dict(r, status="skipped", timings={"total": 0.01}) for r in recs]
    assert summarise([normalise(r) for r in skipped], 0, 3)["per_hour"] is None


def test_preview_cache_kept_whatever_the_spelling_of_out_and_killed_build_temps_removed(tmp_path, monkeypatch):
    _, out_dir, _ = H.make_run(tmp_path, ["a.jpg", "b.png"])
    render(out_dir)  # absolute, as `restore folder` renders it
    assets = out_dir / "report_assets"
    before = {p.name: p.stat().st_mtime_ns for p in assets.iterdir()}
    (assets / ".x.a512.jpg.partial-0badc0de").write_bytes(b"cut by a kill")
    (out_dir / ".report.html.partial-0badc0de").write_bytes(b"cut by a kill")
    monkeypatch.chdir(tmp_path)
    time.sleep(0.01)
    render(Path("out"))  # `restore report out`
    assert {p.name: p.stat().st_mtime_ns for p in assets.iterdir()} == before
    assert not (out_dir / ".report.html.partial-0badc0de").exists()


def test_backslash_names_are_names_and_refused_links_get_no_preview(tmp_path):
    """On POSIX "\\scan.jpg" is an ordinary name; a link the run refused (it leaves the input
    folder) must not get a preview of its target in the report either."""
    input_root, out_dir, recs = H.make_run(tmp_path, ["\\scan.jpg"])
    outside = tmp_path / "private.jpg"
    Image.fromarray(H.sepia_scene(96, 72, 5)).save(outside)
    os.symlink(outside, input_root / "link.jpg")
    recs.append(H.record("link.jpg", input_root, status="failed", error="symlink points outside the input folder (refused)",
                         output=None, mask=None, output_sha256=None, masked_fraction=0.0, kind_pixels={}))
    H.write_manifest(out_dir, recs)
    entry = normalise(recs[0])
    assert entry.output == "\\scan.jpg" and not entry.malformed
    _, data = _render(out_dir)
    items = H.items_by_name(data)
    assert "b" in items["\\scan.jpg"]["af"] and "malformed record" not in items["\\scan.jpg"]["r"]
    assert "b" not in items["link.jpg"].get("af", "") and "i" not in items["link.jpg"].get("l", "")


def test_a_resumed_run_shows_what_was_done_and_flags_inputs_gone(tmp_path):
    """A rerun records finished images as "skipped"; the report shows what the earlier run did
    (restored or unchanged, marked "earlier run"), so the status filter finds every restored
    image. An image whose input was deleted since is flagged for review."""
    input_root, out_dir, recs = H.make_run(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    unchanged = dict(recs[2], status="unchanged", mask=None, masked_fraction=0.0, kind_pixels={})
    rerun = [dict(recs[0], status="skipped"), dict(unchanged, status="skipped")]
    H.write_manifest(out_dir, [recs[0], recs[1], unchanged] + rerun)
    (input_root / "b.jpg").unlink()
    _, data = _render(out_dir)
    items = H.items_by_name(data)
    assert data["statuses"] == ["restored", "unchanged", "failed"]
    assert data["summary"]["counts"] == {"restored": 2, "unchanged": 1, "failed": 0} and data["summary"]["reused"] == 2
    assert items["a.jpg"]["s"] == "restored" and items["a.jpg"]["u"] == 1
    assert items["c.jpg"]["s"] == "unchanged" and items["c.jpg"]["u"] == 1
    assert "u" not in items["b.jpg"] and "input gone" in items["b.jpg"]["r"]
    assert "input gone" not in items["a.jpg"]["r"]
