"""Thumbnails with overlays, made once and cached on disk.

A thumbnail is the sample's image scaled to :data:`THUMB_SIZE` pixels on its longer side
(down with bilinear filtering, up -- for small images, at most 8x -- with nearest), with the
painter's overlay (:mod:`remotesam.bench.reports.html.painters`), stored as JPEG
(quality 82) under ``<results>/report_cache/thumbs/<key>.jpg`` beside ``<key>.json`` (the
caption lines). The key is the sha256 of the image file's bytes, the thumbnail size, the painter
kind and version, and the target and prediction drawn, so a changed image, prediction or painter
never reuses a stale picture, and an unchanged one is never drawn twice. A results directory
that cannot be written is not an error: thumbnails are then drawn without caching.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from remotesam.bench.reports.export import SampleRecord
from remotesam.bench.reports.html.painters import PAINTER_VERSION, painter_for

__all__ = ["THUMB_SIZE", "Thumbnail", "ThumbnailCache"]

#: Longer side of a thumbnail, in pixels.
THUMB_SIZE = 256
_QUALITY = 82


@dataclass
class Thumbnail:
    """A drawn thumbnail: JPEG bytes (None when the image could not be read) and text lines."""

    jpeg: bytes | None
    lines: list[str]
    kind: str

    def data_uri(self) -> str:
        if self.jpeg is None:
            return ""
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ThumbnailCache:
    """Draws and caches thumbnails under ``cache_dir`` (None: no cache).

    Attributes:
        hits, drawn: counters (cache hits, thumbnails drawn), for tests and reports.
    """

    def __init__(self, cache_dir: str | Path | None, size: int = THUMB_SIZE) -> None:
        self.dir = Path(cache_dir) if cache_dir is not None else None
        self.size = size
        self.hits = 0
        self.drawn = 0
        if self.dir is not None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.dir = None

    def _key(self, image_sha: str, kind: str, record: SampleRecord) -> str:
        spec = json.dumps({"image": image_sha, "size": self.size, "kind": kind,
                           "painter": PAINTER_VERSION, "target": record.sample.target,
                           "prediction": record.prediction}, sort_keys=True, default=str)
        return hashlib.sha256(spec.encode()).hexdigest()

    def get(self, record: SampleRecord, ctx: Mapping[str, Any]) -> Thumbnail:
        """The thumbnail of ``record`` (ground truth and prediction drawn over the image)."""
        pred = record.prediction or {}
        kind, painter = painter_for(record.prediction)
        path = Path(record.sample.image)
        try:
            image_sha = _file_sha256(path)
        except OSError as e:
            return Thumbnail(None, [f"image unreadable: {path} ({e.strerror})"], kind)
        key = self._key(image_sha, kind, record)
        if self.dir is not None:
            jpg, meta = self.dir / f"{key}.jpg", self.dir / f"{key}.json"
            if jpg.is_file() and meta.is_file():
                try:
                    self.hits += 1
                    return Thumbnail(jpg.read_bytes(), json.loads(meta.read_text()), kind)
                except (OSError, ValueError):
                    self.hits -= 1
        try:
            with Image.open(path) as opened:
                im: Image.Image = opened.convert("RGB")
                # Large images are downscaled; small ones are enlarged (nearest, at most 8x)
                # so that overlays and labels stay legible.
                scale = min(self.size / max(im.size), 8.0)
                if scale != 1.0:
                    im = im.resize((max(1, round(im.width * scale)),
                                    max(1, round(im.height * scale))),
                                   Image.Resampling.BILINEAR if scale < 1.0
                                   else Image.Resampling.NEAREST)
                image, lines = painter(im, record.sample, pred, scale, ctx)
        except (OSError, ValueError) as e:
            return Thumbnail(None, [f"image unreadable: {path} ({e})"], kind)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=_QUALITY, optimize=True)
        data = buf.getvalue()
        self.drawn += 1
        if self.dir is not None:
            self._store(key, data, lines)
        return Thumbnail(data, lines, kind)

    def _store(self, key: str, data: bytes, lines: list[str]) -> None:
        if self.dir is None:
            return
        try:
            for name, payload in ((f"{key}.jpg", data), (f"{key}.json",
                                                         json.dumps(lines).encode())):
                tmp = self.dir / f"{name}.tmp{os.getpid()}"
                tmp.write_bytes(payload)
                tmp.replace(self.dir / name)
        except OSError:
            pass  # a cache that cannot be written only costs time
