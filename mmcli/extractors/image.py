"""Image extractors over preprocessed RGB uint8 batches of shape (n, height, width, 3)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmcli.errors import UsageError
from mmcli.extractors.base import EXTRACTORS, Extractor


@EXTRACTORS.register("color_hist", kind="image")
class ColorHistogram(Extractor):
    """Per-channel colour histogram, normalised to sum to 1 per channel.

    Output dimension: ``3 * bins``

    Parameters:
        bins: histogram bins per channel (1-256)
        space: rgb, or hsv (hue, saturation, value; robust to lighting)
    """

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        bins: int = 16
        space: str = "rgb"

    def _check(self) -> None:
        self._one_of("space", ("rgb", "hsv"))
        self._at_least(1, "bins")
        if self.params.bins > 256:
            raise self._bad("bins", self.params.bins, "<= 256")

    def _fit(self, data) -> int:
        return 3 * self.params.bins

    def _transform(self, images: np.ndarray) -> np.ndarray:
        n = images.shape[0]
        bins = self.params.bins
        if self.params.space == "hsv":
            from PIL import Image

            images = np.stack([np.asarray(Image.fromarray(im).convert("HSV")) for im in images])
        flat = images.reshape(n, -1, 3)
        pixels = flat.shape[1]
        # count the 256 byte values per image and channel (bincount on the uint8 pixels, no
        # wide copy of the batch), then add them up into bins: value v falls in bin
        # v * bins // 256; sums of integer counts are exact in float64
        to_bins = np.zeros((256, bins))
        to_bins[np.arange(256), np.arange(256) * bins // 256] = 1.0
        out = np.empty((n, 3 * bins), dtype=np.float32)
        for c in range(3):
            counts = np.stack([np.bincount(flat[k, :, c], minlength=256) for k in range(n)]) \
                if n else np.zeros((0, 256))
            out[:, c * bins:(c + 1) * bins] = (counts @ to_bins) / pixels
        return out


@EXTRACTORS.register("pixels", kind="image")
class DownsampledPixels(Extractor):
    """Pixels of the image shrunk to ``size`` x ``size`` (box filter), scaled to [0, 1].

    With ``size: 0`` the image keeps its preprocessed size (``preprocess.image_size``), so a
    CNN encoder (``encoder: auto`` of the learned-fusion models) sees the whole image. The row
    is row-major: ``x.reshape(n, height, width, channels)``.

    Output dimension: ``size * size * 3`` (``size * size`` with ``grayscale``); with
    ``size: 0``, ``height * width * 3`` of the preprocessed images

    Parameters:
        size: side of the shrunk image in pixels; 0 keeps the preprocessed size
        grayscale: use luminance only
    """

    @dataclasses.dataclass
    class Params:
        size: int = 8
        grayscale: bool = False

    @property
    def needs_fit(self) -> bool:  # type: ignore[override]
        return self.params.size == 0  # the preprocessed size is read from the train images

    def _check(self) -> None:
        self._at_least(0, "size")

    def _fit(self, data) -> int:
        if self.params.size:
            self.hw_ = (self.params.size, self.params.size)
        else:
            if len(data) == 0:
                raise UsageError("extractor 'pixels' with size 0 has no train image to read the "
                                 "size from", "give the train split images")
            self.hw_ = (int(data[0].shape[0]), int(data[0].shape[1]))
        return self.hw_[0] * self.hw_[1] * self._channels()

    def _channels(self) -> int:
        return 1 if self.params.grayscale else 3

    def _transform(self, images: np.ndarray) -> np.ndarray:
        h, w = self.hw_
        return shrink(images, (w, h), self.params.grayscale).reshape(len(images), self.dim_)

    def structure(self) -> dict | None:
        return {"layout": "image", "shape": [*self.hw_, self._channels()]}

    def _state(self):
        return {"height": self.hw_[0], "width": self.hw_[1]}, {}

    def _load(self, params, arrays):
        # states written before ``size: 0`` existed hold no height/width: the square size
        s = self.params.size
        self.hw_ = (int(params.get("height", s)), int(params.get("width", s)))


def shrink(images: np.ndarray, size, grayscale: bool) -> np.ndarray:
    """Images resized to ``size`` x ``size`` or ``size = (width, height)`` (box filter),
    float32 in [0, 1]; (n, height, width[, 3])."""
    from PIL import Image

    size = (size, size) if isinstance(size, int) else tuple(size)
    out = []
    for im in images:
        pil = Image.fromarray(im)
        if grayscale:
            pil = pil.convert("L")
        if pil.size != size:
            pil = pil.resize(size, Image.Resampling.BOX)
        out.append(np.asarray(pil, dtype=np.float32))
    shape = (0, size[1], size[0]) if grayscale else (0, size[1], size[0], 3)
    return np.stack(out) / 255.0 if out else np.zeros(shape, dtype=np.float32)


def _gray(images: np.ndarray, size: int) -> np.ndarray:
    """Luminance in [0, 1], resized to ``size`` x ``size`` (bilinear) when size > 0."""
    from PIL import Image

    out = []
    for im in images:
        pil = Image.fromarray(im).convert("L")
        if size and pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.BILINEAR)
        out.append(np.asarray(pil, dtype=np.float32) / 255.0)
    return out


@EXTRACTORS.register("hog", kind="image")
class Hog(Extractor):
    """Histogram of oriented gradients (scikit-image ``hog``) of the grey image resized to
    ``size`` x ``size``: shape and edges, insensitive to colour and lighting.

    Output dimension: ``b * b * cells_per_block**2 * orientations`` with
    ``b = size // pixels_per_cell - cells_per_block + 1``

    Parameters:
        size: side the image is resized to before HOG
        orientations: gradient-orientation bins
        pixels_per_cell: side of a cell in pixels
        cells_per_block: side of a normalisation block in cells
    """

    worker_modules = ("skimage.feature._hog",)

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        size: int = 64
        orientations: int = 9
        pixels_per_cell: int = 8
        cells_per_block: int = 2

    def _check(self) -> None:
        p = self.params
        self._at_least(1, "orientations", "pixels_per_cell", "cells_per_block")
        if p.size // p.pixels_per_cell < p.cells_per_block:
            raise self._bad("size", p.size,
                            f">= pixels_per_cell * cells_per_block "
                            f"({p.pixels_per_cell * p.cells_per_block})")

    def _fit(self, data) -> int:
        p = self.params
        blocks = p.size // p.pixels_per_cell - p.cells_per_block + 1
        return blocks * blocks * p.cells_per_block ** 2 * p.orientations

    def _transform(self, images: np.ndarray) -> np.ndarray:
        p = self.params
        grays = _gray(images, p.size)
        if not grays:
            return np.zeros((0, self.dim_), dtype=np.float32)
        return hog_l2hys(np.stack(grays), p.orientations, p.pixels_per_cell,
                         p.cells_per_block).reshape(len(grays), self.dim_)


def hog_l2hys(grays: np.ndarray, orientations: int, cell: int, block: int) -> np.ndarray:
    """``skimage.feature.hog(gray, orientations, (cell, cell), (block, block), "L2-Hys")`` of
    every image of a (n, height, width) float32 batch, bit for bit, as (n, features) float32.

    The same gradients and cell histograms (skimage's own kernel, image by image); the
    block normalisation, which skimage runs block by block in a Python loop (60% of its
    time on 64x64 images), runs here on every block of the batch at once, with the same
    operations on the same values (a sum over a block's contiguous values, as
    ``np.sum(block ** 2)`` sums them; a test compares the result with skimage's). The cell
    histograms come from skimage's private ``_hoghistogram`` module; should a scikit-image
    release move or change it, this falls back to ``skimage.feature.hog`` image by image
    (the same values, about twice as slow).
    """
    try:
        from skimage.feature import _hoghistogram

        return _hog_batch(_hoghistogram.hog_histograms, grays, orientations, cell, block)
    except (ImportError, AttributeError, TypeError):
        from skimage.feature import hog

        return np.stack([hog(g, orientations=orientations, pixels_per_cell=(cell, cell),
                             cells_per_block=(block, block), block_norm="L2-Hys")
                         for g in grays]).astype(np.float32).reshape(len(grays), -1)


def _hog_batch(hog_histograms, grays: np.ndarray, orientations: int, cell: int,
               block: int) -> np.ndarray:
    n, rows, cols = grays.shape
    cells_r, cells_c = rows // cell, cols // cell
    # skimage's _hog_channel_gradient, for the whole batch (float32, like the images)
    g_row = np.zeros_like(grays)
    g_row[:, 1:-1, :] = grays[:, 2:, :] - grays[:, :-2, :]
    g_col = np.zeros_like(grays)
    g_col[:, :, 1:-1] = grays[:, :, 2:] - grays[:, :, :-2]
    g_row, g_col = g_row.astype(float), g_col.astype(float)
    hist = np.zeros((n, cells_r, cells_c, orientations))
    for k in range(n):
        hog_histograms(g_col[k], g_row[k], cell, cell, cols, rows, cells_c, cells_r,
                       orientations, hist[k])
    # every block's cells (block, block, orientations), flattened in skimage's order
    windows = np.lib.stride_tricks.sliding_window_view(hist, (block, block), axis=(1, 2))
    blocks = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(
        -1, block * block * orientations)
    eps = 1e-5  # skimage's _hog_normalize_block, method "L2-Hys"
    out = blocks / np.sqrt(np.sum(blocks ** 2, axis=-1) + eps ** 2)[:, None]
    out = np.minimum(out, 0.2)
    out = out / np.sqrt(np.sum(out ** 2, axis=-1) + eps ** 2)[:, None]
    return out.astype(np.float32).reshape(n, -1)


@EXTRACTORS.register("lbp", kind="image")
class LocalBinaryPatterns(Extractor):
    """Histograms of uniform local binary patterns (scikit-image ``local_binary_pattern``) of
    the grey image, one per cell of a ``grid`` x ``grid`` split: texture.

    Output dimension: ``grid * grid * (points + 2)``

    Parameters:
        points: neighbours on the circle
        radius: circle radius in pixels
        grid: the image is split into grid x grid cells, one histogram each
    """

    worker_modules = ("skimage.feature.texture",)

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        points: int = 8
        radius: float = 1.0
        grid: int = 2

    def _check(self) -> None:
        self._at_least(1, "points", "grid")
        if self.params.radius <= 0:
            raise self._bad("radius", self.params.radius, "> 0")

    def _fit(self, data) -> int:
        return self.params.grid ** 2 * (self.params.points + 2)

    def _transform(self, images: np.ndarray) -> np.ndarray:
        import warnings

        from skimage.feature import local_binary_pattern

        p = self.params
        bins = p.points + 2
        out = np.zeros((len(images), self.dim_), dtype=np.float32)
        for k, gray in enumerate(_gray(images, 0)):
            with warnings.catch_warnings():  # float input: skimage suggests integers
                warnings.simplefilter("ignore")
                codes = local_binary_pattern((gray * 255).astype(np.uint8), p.points,
                                             p.radius, method="uniform").astype(np.int64)
            h, w = codes.shape
            rows = np.linspace(0, h, p.grid + 1).astype(int)
            cols = np.linspace(0, w, p.grid + 1).astype(int)
            hists = []
            for i in range(p.grid):
                for j in range(p.grid):
                    cell = codes[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].ravel()
                    counts = np.bincount(cell, minlength=bins)[:bins].astype(np.float32)
                    hists.append(counts / max(1, cell.size))
            out[k] = np.concatenate(hists)
        return out


@EXTRACTORS.register("pixels_pca", kind="image")
class PixelsPca(Extractor):
    """Downsampled pixels (as ``pixels``) projected on their principal components, fitted on
    the train images (scikit-learn ``PCA``).

    Output dimension: ``min(components, n_train_images, size * size * channels)``

    Parameters:
        size: side of the shrunk image in pixels
        grayscale: use luminance only
        components: principal components kept
        whiten: divide each component by its standard deviation
    """

    worker_modules = ("sklearn.decomposition",)

    @dataclasses.dataclass
    class Params:
        size: int = 16
        grayscale: bool = False
        components: int = 32
        whiten: bool = False

    def _check(self) -> None:
        self._at_least(1, "size", "components")

    def _pixels(self, images: np.ndarray) -> np.ndarray:
        p = self.params
        return shrink(images, p.size, p.grayscale).reshape(
            len(images), p.size * p.size * (1 if p.grayscale else 3))

    def _fit(self, images: np.ndarray) -> int:
        from sklearn.decomposition import PCA

        x = self._pixels(images).astype(np.float64)
        k = min(self.params.components, x.shape[0], x.shape[1])
        pca = PCA(n_components=k, svd_solver="full").fit(x)
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
        self.scale_ = (scale if self.params.whiten else np.ones_like(scale)).astype(np.float32)
        return k

    def _transform(self, images: np.ndarray) -> np.ndarray:
        return ((self._pixels(images) - self.mean_) @ self.components_.T) / self.scale_

    def _state(self):
        return {}, {"mean": self.mean_, "components": self.components_, "scale": self.scale_}

    def _load(self, params, arrays):
        self.mean_, self.components_ = arrays["mean"], arrays["components"]
        self.scale_ = arrays["scale"]


_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@EXTRACTORS.register("cnn", kind="image")
class TorchScriptEmbedding(Extractor):
    """Embeddings from your TorchScript model file (for example a pretrained CNN without its
    classifier, saved with ``torch.jit.save(torch.jit.script(net), "net.pt")``).

    Images are resized to ``input_size`` (bilinear), scaled to [0, 1], normalised with the
    ImageNet mean and std, and fed as float32 (batch, 3, input_size, input_size) in batches
    of ``batch_size`` under ``torch.no_grad``, on a GPU when one is present. The output is
    flattened per image. The model file is copied into the extract state (with its sha256),
    so the model directory keeps working when the original file moves. ``torch.jit.load``
    reads TorchScript's own format, not arbitrary pickled Python, but the model's TorchScript
    code does run: use model files you trust.

    Output dimension: the model's flattened output size (found with one dummy batch)

    Parameters:
        model: path to the TorchScript file (.pt); required
        input_size: side of the square input in pixels
        batch_size: images per forward pass
        device: auto (cuda when available), cpu or cuda
    """

    needs_fit = False
    parallel = False

    @dataclasses.dataclass
    class Params:
        model: str = ""
        input_size: int = 224
        batch_size: int = 64
        device: str = "auto"

    def _check(self) -> None:
        if not self.params.model:
            raise UsageError(
                "extractor 'cnn' needs a model file",
                "set extract.params.cnn.model to a TorchScript file (torch.jit.save)")
        self._at_least(1, "input_size", "batch_size")
        self._one_of("device", ("auto", "cpu", "cuda"))

    def __getstate__(self):  # worker processes get the path, not the loaded module
        return {k: v for k, v in self.__dict__.items() if k != "_module"}

    def _device(self) -> str:
        import torch

        if self.params.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.params.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("extract.params.cnn.device is cuda but no GPU is available",
                             "use device: auto or cpu")
        return self.params.device

    def _load_module(self, path: Path):
        import warnings

        import torch

        device = self._device()
        try:
            with warnings.catch_warnings():  # torch 2.9+ marks TorchScript as deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location=device)
        except Exception as exc:  # noqa: BLE001 - any reason the file is not a TorchScript model
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"cnn model file {path} cannot be loaded: {reason[:200]}",
                             "give a file written by torch.jit.save") from None
        module.eval()
        return module, device

    def _fit(self, data) -> int:
        path = Path(self.params.model)
        if not path.is_file():
            raise UsageError(f"cnn model file {path} does not exist",
                             "set extract.params.cnn.model to a TorchScript file")
        from mmcli.artifacts import sha256_file

        self.model_path_ = path
        self.sha256_ = sha256_file(path)
        self._module, self._device_name = self._load_module(path)
        dummy = np.zeros((1, 8, 8, 3), dtype=np.uint8)
        try:
            out = self._forward(dummy)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model rejects an image batch
            reason = str(exc).strip().splitlines()[-1][:200]
            raise UsageError(
                f"cnn model {path} fails on a (1, 3, {self.params.input_size}, "
                f"{self.params.input_size}) batch: {reason}",
                "check input_size and that the model takes an image batch") from None
        return int(out.shape[1])

    def _forward(self, images: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        s = self.params.input_size
        if getattr(self, "_module", None) is None:
            self._module, self._device_name = self._load_module(self.model_path_)
        batch = np.stack([
            np.asarray(Image.fromarray(im).resize((s, s), Image.Resampling.BILINEAR)
                       if im.shape[:2] != (s, s) else im, dtype=np.float32)
            for im in images]) / 255.0
        batch = ((batch - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(0, 3, 1, 2)
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device_name)
            y = self._module(x)
            if isinstance(y, (tuple, list)):
                y = y[0]
        return y.reshape(len(images), -1).float().cpu().numpy()

    def _transform(self, images: np.ndarray) -> np.ndarray:
        out = np.zeros((len(images), self.dim_), dtype=np.float32)
        step = self.params.batch_size
        for a in range(0, len(images), step):
            out[a:a + step] = self._forward(images[a:a + step])
        return out

    def state_files(self) -> dict[str, Path]:
        return {"model.pt": self.model_path_} if hasattr(self, "model_path_") else {}

    def _state(self):
        return {"sha256": self.sha256_}, {}

    def _load(self, params, arrays):
        from mmcli.artifacts import sha256_file
        from mmcli.errors import ArtifactError

        self.sha256_ = params["sha256"]
        path = self.files_.get("model.pt")
        if path is None or not Path(path).is_file():
            raise ArtifactError(f"the cnn model copy {path} is missing",
                                "re-run mmcli extract")
        if sha256_file(path) != self.sha256_:
            raise ArtifactError(f"{path} was modified (sha256 differs from the state)",
                                "re-run mmcli extract")
        self.model_path_ = Path(path)
        self._module = None
