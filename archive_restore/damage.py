"""Synthetic archive damage with exact ground-truth masks (numpy + OpenCV only).

This module owns what "damage" looks like for training and evaluation: long thin
scratches, craquelure crack networks, dust specks and hairs, overlaid text (seven-segment
camera date stamps, printed captions, handwriting) and blotches (emulsion loss, stains,
mould spots, torn corners). Every kind is drawn as one or more *layers*: a soft alpha map
``(H, W) float32 in [0, 1]`` and a colour, alpha-composited over the photo.

Ground-truth rule (documented contract): a pixel belongs to the mask of a kind when
compositing that kind's layers changed it by more than ``DIFF_THRESHOLD`` (= 2) grey
levels in any channel of the uint8 result. ``Damage.mask`` is the union of the kind
masks, so it is exactly the set of pixels the damage changed noticeably; anti-aliased
fringes count as long as they changed the pixel by more than 2/255.

``damage_mask`` gives only the shape of one kind (alpha > ``ALPHA_MIN``) without an image,
fast enough to be called per training sample. Everything is driven by the caller's
``numpy.random.Generator``: the same seed gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

KINDS = ("scratches", "cracks", "dust", "text", "blotches")
DIFF_THRESHOLD = 2  # uint8 levels: a change > 2 in any channel is "changed"
ALPHA_MIN = 0.05  # damage_mask: alpha above this is part of the shape
_SHIFT = 4  # sub-pixel bits for cv2 drawing (coordinates * 16)
_S = 1 << _SHIFT


@dataclass
class Damage:
    """damaged: (H, W, 3) uint8 RGB, the photo with damage painted in.
    mask: (H, W) bool, True where the damage changed a pixel by > 2 levels in some channel.
    kind_masks: kind -> (H, W) bool, the same rule per kind (their union is ``mask``).
    """

    damaged: np.ndarray
    mask: np.ndarray
    kind_masks: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Layer:
    """alpha: (H, W) float32 in [0, 1]. colour: (3,) float32 RGB in [0, 255] or (H, W, 3)."""

    alpha: np.ndarray
    colour: np.ndarray


# --------------------------------------------------------------------------- helpers


def _pts(xy: np.ndarray) -> np.ndarray:
    """(N, 2) float pixel coordinates -> int32 fixed-point points for cv2 with ``_SHIFT``."""
    return np.round(xy * _S).astype(np.int32).reshape(-1, 1, 2)


def _smooth_profile(rng: np.random.Generator, n: int, knots: int = 6) -> np.ndarray:
    """(n,) float in [0, 1]: a smooth random 1-D profile (for intensity along a stroke)."""
    k = rng.random(knots + 1)
    return np.interp(np.linspace(0, knots, n), np.arange(knots + 1), k)


def _bright_colour(rng: np.random.Generator) -> np.ndarray:
    """Paper/emulsion white with a slight warm or cold cast, (3,) float32."""
    base = rng.uniform(215, 255)
    cast = rng.normal(0, 6, 3)
    return np.clip(base + cast, 0, 255).astype(np.float32)


def _dark_colour(rng: np.random.Generator) -> np.ndarray:
    """Near-black with a slight cast, (3,) float32."""
    base = rng.uniform(5, 60)
    cast = rng.normal(0, 5, 3)
    return np.clip(base + cast, 0, 255).astype(np.float32)


def _scale(shape: tuple[int, int]) -> float:
    """Relative area of the image vs a 256x256 crop (counts of small things scale with it)."""
    return shape[0] * shape[1] / 65536.0


def _curve(rng: np.random.Generator, p0: np.ndarray, angle: float, length: float, bend: float, step: float = 2.0) -> np.ndarray:
    """(N, 2) float points of a slightly curved stroke: a bent line plus a small wiggle.

    bend: sagitta as a fraction of the length (0 = straight).
    """
    n = max(2, int(length / step))
    t = np.linspace(0.0, 1.0, n)
    d = np.array([np.cos(angle), np.sin(angle)])
    perp = np.array([-d[1], d[0]])
    sag = bend * length * 4.0 * t * (1.0 - t)
    wig_amp = rng.uniform(0.0, 0.8)
    wiggle = wig_amp * np.sin(2 * np.pi * (rng.uniform(1, 4) * t + rng.random()))
    return p0[None, :] + (t * length)[:, None] * d[None, :] + (sag + wiggle)[:, None] * perp[None, :]


def _draw_stroke(canvas: np.ndarray, pts: np.ndarray, intensity: np.ndarray, thickness: int) -> None:
    """Draw a polyline on a uint8 alpha canvas with per-vertex intensity in [0, 1] (AA).

    Consecutive short chunks get their own intensity; chunks at 0 leave gaps.
    """
    n = len(pts)
    chunk = 4
    for i in range(0, n - 1, chunk):
        j = min(n, i + chunk + 1)
        a = float(intensity[i:j].mean())
        if a < 0.02:
            continue
        seg = _pts(pts[i:j])
        cv2.polylines(canvas, [seg], False, int(round(255 * a)), thickness, cv2.LINE_AA, _SHIFT)


def _to_alpha(canvas: np.ndarray, blur: float = 0.0) -> np.ndarray:
    """uint8 canvas -> (H, W) float32 alpha in [0, 1], optionally softened by a Gaussian."""
    a = canvas.astype(np.float32) * (1.0 / 255.0)
    if blur > 0:
        a = cv2.GaussianBlur(a, (0, 0), blur)
    return a


# --------------------------------------------------------------------------- kinds


def _scratches(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """Long thin scratches, 1-4 px, bright or dark, faint to strong, slightly curved; on
    ``HAIRLINE_FIELD_SHARE`` of draws also a field of fine hairlines (``_hairline_field``).

    Returns [(alpha (H,W) float32, 'bright'|'dark' or a (3,) float32 colour)].
    """
    h, w = shape
    diag = float(np.hypot(h, w))
    out = []
    for tone in ("bright", "dark"):
        canvas = np.zeros(shape, np.uint8)
        drawn = False
        mean_n = severity * (3.0 if tone == "bright" else 1.8) * max(0.6, np.sqrt(_scale(shape)))
        n_groups = rng.poisson(mean_n)
        for _ in range(n_groups):
            drawn = True
            r = rng.random()
            if r < 0.55:  # near-vertical or near-horizontal (film transport, print handling)
                angle = (np.pi / 2 if rng.random() < 0.65 else 0.0) + rng.normal(0, 0.06)
            else:
                angle = rng.uniform(0, np.pi)
            long_kind = rng.random() < 0.6
            length = diag * (rng.uniform(0.3, 1.1) if long_kind else rng.uniform(0.06, 0.3))
            # start so that the stroke crosses the image
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            d = np.array([np.cos(angle), np.sin(angle)])
            p0 = c - d * length * rng.uniform(0.2, 0.8)
            bend = rng.normal(0, 0.02)
            parallel = rng.integers(2, 5) if rng.random() < 0.2 else 1
            spacing = rng.uniform(3, 14)
            thickness = int(rng.choice([1, 1, 1, 2, 2, 3]))
            base = rng.uniform(0.3, 1.0)
            for k in range(parallel):
                perp = np.array([-d[1], d[0]])
                pts = _curve(rng, p0 + perp * spacing * k + d * rng.normal(0, length * 0.05), angle, length * rng.uniform(0.7, 1.0), bend)
                prof = _smooth_profile(rng, len(pts), knots=int(rng.integers(3, 10)))
                inten = base * np.clip(0.35 + 0.9 * prof, 0, 1)
                if rng.random() < 0.4:  # intermittent scratch: a few gaps
                    inten = inten * (_smooth_profile(rng, len(pts), 8) > 0.25)
                _draw_stroke(canvas, pts, inten, thickness)
        if tone == "bright" and rng.random() < 0.5 * min(1.0, severity):
            # a cluster of short fine scuffs sharing one direction (prints rubbed in a pile)
            drawn = True
            angle = rng.uniform(0, np.pi)
            for _ in range(int(rng.integers(4, 16) * max(1.0, np.sqrt(_scale(shape))))):
                a = angle + rng.normal(0, 0.15)
                p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
                pts = _curve(rng, p0, a, diag * rng.uniform(0.03, 0.15), rng.normal(0, 0.03))
                inten = rng.uniform(0.3, 0.9) * np.clip(0.3 + _smooth_profile(rng, len(pts), 3), 0, 1)
                _draw_stroke(canvas, pts, inten, 1)
        if drawn:
            out.append((_to_alpha(canvas, blur=float(rng.uniform(0.0, 0.6))), tone))
    field = _hairline_field(shape, rng.spawn(1)[0], severity)
    return out + field


HAIRLINE_FIELD_SHARE = 0.35  # of scratch draws (at severity >= 1) that also carry a hairline field


def _hairline_field(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """A field of fine straight hairlines, or nothing: [(alpha (H,W) float32, colour (3,) float32)].

    What most real scratched prints show (``old_photos/scratched``: bd_b, bd_c, bd_d, bd_f,
    bd_g, bd_h): tens of 1-px, near-white, straight lines a tenth to half of the photo long,
    crossing each other and the scene at any angle, some sharing a direction (prints rubbed in
    a pile), faint to clear, fading in and out along their length. The strokes above are few
    and often near-vertical; the learned detectors trained on them found few of these
    (docs/quality.md, sessions 17 and 28). Drawn from its own generator (``rng.spawn``), with
    its colour fixed here, so a scratch draw without a field paints the very same pixels as
    before this field existed (``restore evaluate``'s cases stay comparable).
    """
    if rng.random() >= HAIRLINE_FIELD_SHARE * min(1.0, severity):
        return []
    h, w = shape
    diag = float(np.hypot(h, w))
    n = max(5, int(rng.integers(5, 21) * max(0.6, np.sqrt(_scale(shape)))))
    main = rng.uniform(0, np.pi)
    canvas = np.zeros(shape, np.uint8)
    for _ in range(n):
        a = main + rng.normal(0, 0.2) if rng.random() < 0.4 else rng.uniform(0, np.pi)
        length = diag * rng.uniform(0.08, 0.6)
        c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        d = np.array([np.cos(a), np.sin(a)])
        pts = _curve(rng, c - d * length * rng.uniform(0.2, 0.8), a, length, rng.normal(0, 0.008))
        inten = rng.uniform(0.2, 0.75) * np.clip(0.2 + 0.9 * _smooth_profile(rng, len(pts), int(rng.integers(3, 8))), 0, 1)
        if rng.random() < 0.5:  # broken into dashes
            inten = inten * (_smooth_profile(rng, len(pts), 12) > 0.3)
        _draw_stroke(canvas, pts, inten, 1)
    return [(_to_alpha(canvas, blur=float(rng.uniform(0.2, 0.6))), _bright_colour(rng))]


def _cracks(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, str]]:
    """Craquelure: branching crack networks where the emulsion broke. 1-2 px wide."""
    h, w = shape
    m = min(h, w)
    canvas = np.zeros(shape, np.uint8)
    n_nets = max(1, rng.poisson(1.2 * severity))
    thickness = int(rng.choice([1, 1, 1, 2]))
    base = rng.uniform(0.45, 1.0)
    for _ in range(n_nets):
        # a network: several seed cracks around a centre, each random-walking and branching
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        extent = m * rng.uniform(0.25, 0.7)
        stack = []
        for _ in range(int(rng.integers(2, 6))):
            p = centre + rng.normal(0, extent * 0.2, 2)
            stack.append((p, rng.uniform(0, 2 * np.pi), extent * rng.uniform(0.4, 1.0), 0))
        segments = 0
        while stack and segments < 400:
            p, theta, remaining, depth = stack.pop()
            step = rng.uniform(2.5, 5.0)
            n = max(2, int(remaining / step))
            pts = [p]
            for _ in range(n):
                # mostly straight runs with occasional kinks: the angular look of craquelure
                theta += rng.normal(0, 0.08) + (rng.normal(0, 0.6) if rng.random() < 0.08 else 0.0)
                p = p + step * np.array([np.cos(theta), np.sin(theta)])
                pts.append(p)
                if depth < 3 and rng.random() < 0.08:
                    side = 1 if rng.random() < 0.5 else -1
                    stack.append((p.copy(), theta + side * rng.uniform(0.5, 1.3), remaining * rng.uniform(0.25, 0.6), depth + 1))
            arr = np.array(pts)
            prof = _smooth_profile(rng, len(arr), 4)
            inten = base * np.clip(0.55 + 0.6 * prof, 0, 1) * (0.85 ** depth)
            _draw_stroke(canvas, arr, inten, thickness)
            segments += 1
    tone = "dark" if rng.random() < 0.65 else "bright"
    return [(_to_alpha(canvas, blur=float(rng.uniform(0.0, 0.5))), tone)]


def _dust(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, str]]:
    """Dust specks (small soft dots, 1-6 px) and hairs (short curly fibres)."""
    h, w = shape
    out = []
    for tone in ("bright", "dark"):
        canvas = np.zeros(shape, np.uint8)
        frac = 0.65 if tone == "bright" else 0.35
        n_specks = rng.poisson(severity * frac * 30 * _scale(shape))
        for _ in range(n_specks):
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            r = float(np.clip(rng.lognormal(0.1, 0.5), 0.6, 4.0))
            ax = (int(round(r * _S)), int(round(r * rng.uniform(0.6, 1.0) * _S)))
            inten = rng.uniform(0.45, 1.0)
            cv2.ellipse(canvas, tuple(int(v) for v in np.round(c * _S)), ax, float(rng.uniform(0, 180)), 0, 360,
                        int(255 * inten), -1, cv2.LINE_AA, _SHIFT)
        n_hairs = rng.poisson(severity * frac * 2.0 * _scale(shape))
        for _ in range(n_hairs):
            p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            theta = rng.uniform(0, 2 * np.pi)
            curl = rng.normal(0, 0.25)
            length = rng.uniform(10, 45) * max(1.0, min(h, w) / 512)
            n = max(3, int(length / 1.5))
            pts = [p]
            for _ in range(n):
                curl += rng.normal(0, 0.08)
                theta += curl
                p = p + 1.5 * np.array([np.cos(theta), np.sin(theta)])
                pts.append(p)
            inten = rng.uniform(0.4, 0.95) * np.clip(0.6 + 0.5 * _smooth_profile(rng, len(pts), 3), 0, 1)
            _draw_stroke(canvas, np.array(pts), inten, 1)
        if n_specks or n_hairs:
            out.append((_to_alpha(canvas, blur=float(rng.uniform(0.2, 0.6))), tone))
    return out


# seven-segment layout: segment -> ((x0,y0),(x1,y1)) in a unit cell 1 wide, 2 high
_SEG = {
    "a": ((0, 0), (1, 0)), "b": ((1, 0), (1, 1)), "c": ((1, 1), (1, 2)), "d": ((0, 2), (1, 2)),
    "e": ((0, 1), (0, 2)), "f": ((0, 0), (0, 1)), "g": ((0, 1), (1, 1)),
}
_DIGITS = {
    "0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd",
    "6": "afgedc", "7": "abc", "8": "abcdefg", "9": "abcdfg", "-": "g", "'": "b", " ": "", ".": "",
}
_WORDS = ("Summer", "holiday", "Mum", "Dad", "Grandma", "Paris", "beach", "1962", "1974", "wedding",
          "Christmas", "Anna", "Tom", "garden", "with", "and", "our", "house", "at", "the", "lake",
          "Birthday", "No.", "12", "Sept", "June", "picnic", "school", "class", "of", "1958")
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
          cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL)


def _date_stamp(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """An orange/red seven-segment camera date stamp ('98 7 14) near a corner, with glow."""
    h, w = shape
    m = min(h, w)
    yy, mo, dd = rng.integers(70, 100), rng.integers(1, 13), rng.integers(1, 29)
    style = rng.integers(0, 3)
    text = [f"'{yy} {mo} {dd}", f"{yy}.{mo:02d}.{dd:02d}", f"{mo:2d} {dd:2d} '{yy}"][style]
    dh = float(np.clip(m * rng.uniform(0.035, 0.07), 9, 200))  # digit height
    cw = dh * 0.5
    slant = rng.uniform(0.05, 0.2)
    thick = max(1, int(round(dh * rng.uniform(0.09, 0.14))))
    total_w = len(text) * cw * 1.45
    corner = rng.random()
    margin = m * rng.uniform(0.03, 0.08)
    x0 = w - margin - total_w if corner < 0.8 else margin
    y0 = h - margin - dh if rng.random() < 0.85 else margin
    canvas = np.zeros(shape, np.uint8)
    x = x0
    for ch in text:
        segs = _DIGITS.get(ch, "")
        if ch == "'":
            segs = "f"
        for s in segs:
            (ax, ay), (bx, by) = _SEG[s]
            p = np.array([[x + ax * cw, y0 + ay * dh / 2], [x + bx * cw, y0 + by * dh / 2]], np.float64)
            p[:, 0] += slant * (y0 + dh - p[:, 1])  # italic shear
            # shorten so segments don't touch (the look of LCD stamps)
            v = p[1] - p[0]
            p = np.array([p[0] + 0.12 * v, p[1] - 0.12 * v])
            cv2.polylines(canvas, [_pts(p)], False, 255, thick, cv2.LINE_AA, _SHIFT)
        if ch == ".":
            cv2.circle(canvas, (int((x + cw * 0.2) * _S), int((y0 + dh) * _S)), int(thick * _S * 0.6), 255, -1, cv2.LINE_AA, _SHIFT)
        x += cw * (0.6 if ch in ".'" else 1.45)
    core = _to_alpha(canvas, blur=0.5) * rng.uniform(0.75, 1.0)
    glow = cv2.GaussianBlur(core, (0, 0), max(0.8, thick * 0.6)) * rng.uniform(0.25, 0.5)
    hue = rng.random()
    colour = np.array([255, 150 - 90 * hue, 40 + 20 * hue], np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    glow_colour = np.array([255, 90, 30], np.float32)
    return [(glow, np.clip(glow_colour, 0, 255)), (core, np.clip(colour, 0, 255))]


def _caption(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """A white or black printed/typed caption drawn with cv2.putText in a random Hershey font."""
    h, w = shape
    words = [str(rng.choice(_WORDS)) for _ in range(int(rng.integers(1, 5)))]
    text = " ".join(words)
    font = int(rng.choice(_FONTS)) | (cv2.FONT_ITALIC if rng.random() < 0.25 else 0)
    target_h = float(np.clip(min(h, w) * rng.uniform(0.04, 0.1), 8, 300))
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = target_h / max(th, 1)
    tw_s = tw * scale
    if tw_s > 0.9 * w:
        scale *= 0.9 * w / tw_s
        tw_s = tw * scale
    thickness = max(1, int(round(scale * rng.uniform(0.8, 2.2))))
    x = rng.uniform(0.02 * w, max(0.02 * w + 1, w - tw_s - 0.02 * w))
    y = rng.uniform(target_h + 2, h - 0.03 * h) if rng.random() < 0.5 else rng.uniform(0.8 * h, h - 0.03 * h)
    canvas = np.zeros(shape, np.uint8)
    org = (int(x * _S), int(max(y, target_h + 2) * _S))
    outlined = rng.random() < 0.3
    cv2.putText(canvas, text, (org[0] // _S, org[1] // _S), font, scale, 255, thickness, cv2.LINE_AA)
    # vary the face: horizontal squeeze/stretch and slant around the text origin
    sx, sh = rng.uniform(0.75, 1.3), (rng.uniform(-0.3, 0.05) if rng.random() < 0.5 else 0.0)
    ox, oy = org[0] / _S, org[1] / _S
    M = np.array([[sx, sh, ox - sx * ox - sh * oy], [0, 1, 0]], np.float32)
    canvas = cv2.warpAffine(canvas, M, (w, h), flags=cv2.INTER_LINEAR)
    alpha = _to_alpha(canvas) * rng.uniform(0.7, 1.0)
    white = rng.random() < 0.55
    colour = _bright_colour(rng) if white else _dark_colour(rng)
    layers: list[tuple[np.ndarray, np.ndarray | str]] = []
    if outlined:
        ring = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        layers.append((_to_alpha(ring, blur=0.5) * 0.9, _dark_colour(rng) if white else _bright_colour(rng)))
    layers.append((alpha, colour))
    return layers


def _handwriting(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """Handwriting-like cursive strokes (loops along a drifting baseline) in ink colours."""
    h, w = shape
    m = min(h, w)
    xh = float(np.clip(m * rng.uniform(0.025, 0.06), 5, 150))  # x-height
    canvas = np.zeros(shape, np.uint8)
    x = rng.uniform(0.03, 0.4) * w
    y = rng.uniform(0.1, 0.95) * h
    n_words = int(rng.integers(1, 5))
    thickness = max(1, int(round(xh * rng.uniform(0.08, 0.18))))
    for _ in range(n_words):
        letters = int(rng.integers(2, 8))
        n = letters * 14
        t = np.linspace(0, letters * 2 * np.pi, n)
        amp_y = xh * (0.5 + 0.5 * _smooth_profile(rng, n, letters))
        tall = (_smooth_profile(rng, n, letters) > 0.75) * xh * 0.9  # ascenders
        px = x + t / (2 * np.pi) * xh * rng.uniform(0.6, 0.9) + xh * 0.35 * np.cos(t)
        py = y - (amp_y + tall) * (0.5 - 0.5 * np.cos(t)) + np.cumsum(rng.normal(0, 0.04, n)) * xh * 0.2
        pts = np.stack([px, py], 1)
        _draw_stroke(canvas, pts, np.clip(0.7 + 0.4 * _smooth_profile(rng, n, 4), 0, 1), thickness)
        x = px.max() + xh * rng.uniform(0.6, 1.2)
        if x > w * 0.95:
            break
    ink = rng.choice(3)
    colour = [np.array([25, 30, 90], np.float32), np.array([20, 20, 25], np.float32), np.array([90, 55, 30], np.float32)][ink]
    return [(_to_alpha(canvas, blur=0.4) * rng.uniform(0.7, 1.0), colour + rng.normal(0, 5, 3).astype(np.float32))]


def _text(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """One or two text overlays: date stamp (most common), caption or handwriting."""
    layers: list[tuple[np.ndarray, np.ndarray | str]] = []
    n = 1 + int(rng.random() < 0.3 * severity)
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            layers += _date_stamp(shape, rng)
        elif r < 0.82:
            layers += _caption(shape, rng)
        else:
            layers += _handwriting(shape, rng)
    return layers


def _blob(rng: np.random.Generator, bh: int, bw: int, irregular: float) -> np.ndarray:
    """(bh, bw) float32 in [0, 1]: an irregular soft blob filling roughly an ellipse in the box."""
    g = int(rng.integers(4, 9))
    noise = rng.random((g, g)).astype(np.float32)
    noise = cv2.resize(noise, (bw, bh), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    r2 = ((yy - bh / 2) / (bh / 2)) ** 2 + ((xx - bw / 2) / (bw / 2)) ** 2
    field_ = (1.0 - r2) + irregular * (noise - 0.5)
    return field_


def _blotches(shape: tuple[int, int], rng: np.random.Generator, severity: float) -> list[tuple[np.ndarray, np.ndarray | str]]:
    """Blotches: emulsion loss (paper white), brown stains with a darker rim, dark mould spots, torn corners."""
    h, w = shape
    m = min(h, w)
    layers: list[tuple[np.ndarray, np.ndarray | str]] = []
    n = max(1, rng.poisson(2.0 * severity))
    for _ in range(n):
        typ = rng.choice(["emulsion", "stain", "spot", "tear"], p=[0.4, 0.3, 0.15, 0.15])
        size = m * (rng.uniform(0.06, 0.25) if typ != "spot" else rng.uniform(0.025, 0.07))
        bh = max(6, int(size * rng.uniform(0.6, 1.6)))
        bw = max(6, int(size * rng.uniform(0.6, 1.6)))
        if typ == "tear":  # centred on an image edge so it bites into the border
            if rng.random() < 0.5:
                cy, cx = rng.uniform(0, h), (0 if rng.random() < 0.5 else w)
            else:
                cy, cx = (0 if rng.random() < 0.5 else h), rng.uniform(0, w)
            bh, bw = bh * 2, bw * 2
        else:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, x0 = int(cy - bh / 2), int(cx - bw / 2)
        f = _blob(rng, bh, bw, irregular=rng.uniform(0.6, 1.4) if typ != "tear" else 1.8)
        thr = rng.uniform(0.05, 0.3)
        soft = rng.uniform(0.04, 0.12)
        a = np.clip((f - thr) / soft, 0, 1).astype(np.float32)
        if typ == "stain":
            rim = np.clip(1 - np.abs(f - thr - 0.08) / 0.08, 0, 1)
            a = a * rng.uniform(0.2, 0.45) + rim * rng.uniform(0.15, 0.35)
            colour = np.array([rng.uniform(110, 170), rng.uniform(75, 115), rng.uniform(30, 70)], np.float32)
        elif typ == "spot":
            a = a * rng.uniform(0.5, 0.9)
            colour = _dark_colour(rng)
        else:
            a = a * rng.uniform(0.85, 1.0)
            colour = _bright_colour(rng)
        alpha = np.zeros(shape, np.float32)
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(h, y0 + bh), min(w, x0 + bw)
        if ye <= ys or xe <= xs:
            continue
        alpha[ys:ye, xs:xe] = np.clip(a[ys - y0:ye - y0, xs - x0:xe - x0], 0, 1)
        layers.append((alpha, colour))
    return layers


_MAKERS = {"scratches": _scratches, "cracks": _cracks, "dust": _dust, "text": _text, "blotches": _blotches}


def _layers(shape: tuple[int, int], rng: np.random.Generator, kind: str, severity: float) -> list[tuple[np.ndarray, np.ndarray | str]]:
    maker = _MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"unknown damage kind {kind!r}; choose from {KINDS}")
    return maker(shape, rng, severity)


# --------------------------------------------------------------------------- public API


def damage_mask(shape: tuple[int, int], rng: np.random.Generator, kind: str) -> np.ndarray:
    """(H, W) bool mask of one damage kind (alpha > ``ALPHA_MIN``), no image needed.

    shape: (H, W). Fast (a few ms at 256x256); training uses it for hole shapes.
    """
    mask = np.zeros(shape, bool)
    for alpha, _ in _layers((int(shape[0]), int(shape[1])), rng, kind, 1.0):
        mask |= alpha > ALPHA_MIN
    return mask


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 pair -> (H,W) bool: the pixels ``after`` differs from ``before`` by more than
    ``DIFF_THRESHOLD`` levels in some channel (the ground-truth rule of every damage mask)."""
    return np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=2) > DIFF_THRESHOLD


def paint(cur: np.ndarray, layers, rng: np.random.Generator, grey: bool) -> np.ndarray:
    """Alpha-composite ``layers`` [(alpha (H,W) float32 in [0,1], colour)] over ``cur`` ((H,W,3)
    float32 RGB in [0,255]) in order and return the result. colour: (3,) or (H,W,3) RGB, or
    "bright" / "dark" (drawn from ``rng`` here); on a ``grey`` image colours become their luma."""
    for alpha, colour in layers:
        if isinstance(colour, str):
            colour = _bright_colour(rng) if colour == "bright" else _dark_colour(rng)
        colour = np.asarray(colour, np.float32)
        if grey:
            colour = np.full(3, colour @ np.array([0.299, 0.587, 0.114], np.float32), np.float32)
        a = alpha[..., None]
        cur = cur * (1.0 - a) + colour * a
    return cur


def is_grey(image: np.ndarray) -> bool:
    """True when the (H,W,3) image has three equal channels (a grayscale scan)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def synthesize(image: np.ndarray, rng: np.random.Generator, kinds: Sequence[str] | None = None, severity: float = 1.0) -> Damage:
    """Paint synthetic archive damage onto ``image`` and return it with exact masks.

    image: (H, W, 3) uint8 RGB (grayscale scans as three equal channels: damage colours are
        then made grey too). kinds: subset of ``KINDS``; None picks 1-3 kinds at random.
    severity: > 0, scales how many scratches/specks/blotches appear (1.0 = typical).
    Kinds are painted in ``KINDS`` order; each kind's mask holds the pixels that kind changed
    by > ``DIFF_THRESHOLD`` levels in some channel; ``mask`` is their union.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"synthesize expects (H,W,3) uint8, got {image.shape} {image.dtype}")
    if kinds is None:
        k = int(rng.integers(1, 4))
        kinds = [KINDS[i] for i in sorted(rng.choice(len(KINDS), size=k, replace=False))]
    shape = image.shape[:2]
    grey = is_grey(image)
    cur = image.astype(np.float32)
    out_u8 = image
    kind_masks: dict[str, np.ndarray] = {}
    for kind in kinds:
        before = out_u8
        cur = paint(cur, _layers(shape, rng, kind, severity), rng, grey)
        out_u8 = np.clip(np.round(cur), 0, 255).astype(np.uint8)
        kind_masks[kind] = changed(before, out_u8)
    mask = np.zeros(shape, bool)
    for km in kind_masks.values():
        mask |= km
    return Damage(damaged=out_u8, mask=mask, kind_masks=kind_masks)
