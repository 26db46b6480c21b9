"""Image extractors over preprocessed RGB uint8 batches of shape (n, height, width, 3)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.extractors.base import EXTRACTORS, Extractor


@EXTRACTORS.register("color_hist", kind="image")
class ColorHistogram(Extractor):
    """Per-channel colour histogram, normalised to sum to 1 per channel.

    Output dimension: ``3 * bins``. ``space`` is ``rgb`` or ``hsv``.
    """

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        bins: int = 16
        space: str = "rgb"

    def _fit(self, data) -> int:
        if self.params.space not in ("rgb", "hsv"):
            from mmcli.errors import UsageError

            raise UsageError(f"color_hist space is {self.params.space!r}", "use rgb or hsv")
        return 3 * self.params.bins

    def _transform(self, images: np.ndarray) -> np.ndarray:
        n = images.shape[0]
        bins = self.params.bins
        if self.params.space == "hsv":
            from PIL import Image

            images = np.stack([np.asarray(Image.fromarray(im).convert("HSV")) for im in images])
        flat = images.reshape(n, -1, 3).astype(np.int64)
        pixels = flat.shape[1]
        out = np.empty((n, 3 * bins), dtype=np.float32)
        offsets = (np.arange(n) * bins)[:, None]
        for c in range(3):
            idx = (flat[:, :, c] * bins) // 256 + offsets
            counts = np.bincount(idx.ravel(), minlength=n * bins).reshape(n, bins)
            out[:, c * bins:(c + 1) * bins] = counts / pixels
        return out


@EXTRACTORS.register("pixels", kind="image")
class DownsampledPixels(Extractor):
    """Pixels of the image shrunk to ``size`` x ``size`` (box filter), scaled to [0, 1].

    Output dimension: ``size * size * 3`` (``size * size`` with ``grayscale``).
    """

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        size: int = 8
        grayscale: bool = False

    def _fit(self, data) -> int:
        return self.params.size ** 2 * (1 if self.params.grayscale else 3)

    def _transform(self, images: np.ndarray) -> np.ndarray:
        from PIL import Image

        s = self.params.size
        out = []
        for im in images:
            pil = Image.fromarray(im)
            if self.params.grayscale:
                pil = pil.convert("L")
            out.append(np.asarray(pil.resize((s, s), Image.Resampling.BOX), dtype=np.float32))
        return np.stack(out).reshape(len(out), -1) / 255.0 if out else np.zeros((0, self.dim_))
