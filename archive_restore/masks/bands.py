"""Hysteresis over a scan seen in horizontal bands, top to bottom, with the answer of the
whole-image rule (``masks.learned.hysteresis``: the 8-connected regions of a "grow" map that
hold a seed pixel) while only one band's labels exist at a time.

``BandRegions`` labels each band's own 8-connected components of its grow map, gives them
global ids, and links the components that touch across a band boundary (a pixel of one band's
last row and a pixel of the next band's first row at column offsets -1, 0 or +1) with a
union-find. A component is seeded when any of its band parts holds a seed pixel, now (``add``)
or later (``seed``, for seeds that need the next band's rows, as ``masks.learned``'s line rule
does). After the last band, ``mask`` gives each band's pixels of the seeded regions; it labels
the band's grow map again (the same map gives the same labels), so a caller keeps grow maps at
1 bit per pixel (``pack``) instead of labels at 4 bytes; labels still at hand (a scan that is one
band) can be passed instead.

Memory: the union-find holds two numbers per band component, whatever the scan's size.
"""

from __future__ import annotations

import cv2
import numpy as np


def pack(grow: np.ndarray) -> np.ndarray:
    """(h, W) uint8 or bool map -> its nonzero pixels as (h, ceil(W / 8)) uint8 bits (packbits
    takes any nonzero value as a 1: no bool copy of the map)."""
    return np.packbits(grow, axis=1)


def unpack(bits: np.ndarray, width: int) -> np.ndarray:
    """``pack``'s bits -> (h, width) uint8 in {0, 1}."""
    return np.unpackbits(bits, axis=1, count=width)


class BandRegions:
    """The regions of one grow map, fed band by band from the top (see the module docstring)."""

    def __init__(self) -> None:
        self._firsts: list[int] = []  # per band: global id of its local label 1
        self._counts: list[int] = []  # per band: its number of labels, background included
        self._seeded: list[np.ndarray] = []  # per band: (n,) bool by local label (0 stays False)
        self._pairs: list[np.ndarray] = []  # (k, 2) global ids that touch across a boundary
        self._last: np.ndarray | None = None  # previous band's last row, as global ids (0: none)
        self._next = 1  # next free global id
        self._keep: np.ndarray | None = None  # after resolve: global id -> its region is seeded

    def add(self, grow: np.ndarray, seeds: np.ndarray | None = None) -> tuple[int, int, np.ndarray]:
        """Feed the next band down. grow: (h, W) uint8, nonzero = in the grow map; seeds: (h, W)
        bool seed pixels (only those inside the grow map count), or None.

        Returns (band index, n, (h, W) int32 local labels, 0 = background, 1..n-1 components)."""
        if self._keep is not None:
            raise RuntimeError("BandRegions: a band was added after mask() was first called")
        n, lab = cv2.connectedComponents(np.ascontiguousarray(grow, np.uint8), connectivity=8)
        first = self._next
        self._next += n - 1
        seeded = np.zeros(n, bool)
        if seeds is not None:
            seeded[lab[seeds]] = True
            seeded[0] = False
        top = np.where(lab[0] > 0, lab[0] + (first - 1), 0)
        if self._last is not None and self._last.shape == top.shape:
            for a, b in ((self._last, top), (self._last[:-1], top[1:]), (self._last[1:], top[:-1])):
                both = (a > 0) & (b > 0)
                if both.any():
                    self._pairs.append(np.stack([a[both], b[both]], 1))
        elif self._last is not None:
            raise ValueError(f"band widths differ: {self._last.shape[0]} then {top.shape[0]}")
        self._last = np.where(lab[-1] > 0, lab[-1] + (first - 1), 0)
        self._firsts.append(first)
        self._counts.append(n)
        self._seeded.append(seeded)
        return len(self._firsts) - 1, n, lab

    def seed(self, band: int, labels: np.ndarray) -> None:
        """Mark band ``band``'s components with these local labels (int array, 0 ignored) seeded."""
        if self._keep is not None:
            raise RuntimeError("BandRegions: seeds were added after mask() was first called")
        s = self._seeded[band]
        s[labels] = True
        s[0] = False

    def _resolve(self) -> np.ndarray:
        """(next id,) bool: global id -> whether its merged region holds a seed (id 0: False)."""
        parent = np.arange(self._next, dtype=np.int64)

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = int(parent[i])
            return i

        if self._pairs:
            for a, b in np.unique(np.concatenate(self._pairs), axis=0):
                ra, rb = root(int(a)), root(int(b))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        while True:  # every id straight to its root
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        seeded = np.zeros(self._next, bool)
        for first, s in zip(self._firsts, self._seeded):
            seeded[first: first + len(s) - 1] = s[1:]
        hit = np.zeros(self._next, bool)
        hit[parent[seeded]] = True
        keep = hit[parent]
        keep[0] = False
        return keep

    def mask(self, band: int, grow: np.ndarray | None = None, labels: np.ndarray | None = None) -> np.ndarray:
        """grow: the (h, W) map given to ``add`` for band ``band``, or labels: the (h, W) local
        labels ``add`` returned for it (no second labelling) -> (h, W) bool: its pixels in
        regions that hold a seed anywhere in the scan. Call after the last ``add``."""
        if self._keep is None:
            self._keep = self._resolve()
        if labels is None:
            n, labels = cv2.connectedComponents(np.ascontiguousarray(grow, np.uint8), connectivity=8)
            if n != self._counts[band]:
                raise ValueError(f"band {band}: grow map differs from the one added ({n} vs {self._counts[band]} labels)")
        first, n = self._firsts[band], self._counts[band]
        lut = np.zeros(n, bool)
        lut[1:] = self._keep[first: first + n - 1]
        return lut[labels]
