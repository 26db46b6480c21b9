"""Image columns: paths to (or bytes of) pictures, decoded to RGB uint8 of ``image_size``."""

from __future__ import annotations

import numpy as np

from mmcli.kinds.base import KINDS, Kind
from mmcli.media import load_image


@KINDS.register("image")
class ImageKind(Kind):
    order = 10
    media = True
    stored = "arrays"
    extensions = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
    magic = ((b"RIFF", b"WEBP", ".webp"), (b"\x89PNG\r\n\x1a\n", None, ".png"),
             (b"\xff\xd8\xff", None, ".jpg"), (b"GIF8", None, ".gif"), (b"BM", None, ".bmp"),
             (b"II*\x00", None, ".tif"), (b"MM\x00*", None, ".tif"))
    perturbations = {"gaussian_noise": "Gaussian noise, std 128·s grey levels",
                     "blur": "Gaussian blur, sigma s·width/16 px"}
    layout = "image"
    layout_what = "an image (pixels)"
    layout_extractor = "pixels"
    encoder = "cnn"
    augmentations = ("flip", "rotate", "crop")
    default_extractors = ("color_hist", "hog")
    decode_settings = ("image_size", "max_image_pixels")

    def load(self, path, spec: dict) -> np.ndarray:
        """RGB uint8 (height, width, 3); see :func:`mmcli.media.load_image`."""
        return load_image(path, tuple(spec["image_size"]), spec["max_image_pixels"])

    def arrays(self, spec: dict) -> dict:
        w, h = spec["image_size"]
        return {"": (np.uint8, (h, w, 3))}

    def read(self, data, col: str, index) -> np.ndarray:
        return data.fixed_rows(col, index)

    def missing_value(self, spec: dict) -> np.ndarray:
        """A black image of ``image_size``."""
        w, h = spec["image_size"]
        return np.zeros((h, w, 3), dtype=np.uint8)

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        s = float(severity)
        if name == "gaussian_noise":
            noisy = data.astype(np.float32) + rng.normal(0, 128 * s, data.shape).astype(np.float32)
            return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        if name == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = s * data.shape[2] / 16
            blurred = gaussian_filter(data.astype(np.float32), sigma=(0, sigma, sigma, 0))
            return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
        return super().perturb(name, data, severity, rng)

    def augment(self, raw, shape, p, rng):
        """Flip, rotate and crop (one bilinear resampling; see :mod:`mmcli.models.augment`)."""
        import torch
        import torch.nn.functional as F

        n = raw.shape[0]
        h, w, c = shape
        img = raw.reshape(n, h, w, c).permute(0, 3, 1, 2)
        if p.flip > 0:
            flip = torch.as_tensor(rng.random(n) < p.flip, device=raw.device)
            img = torch.where(flip[:, None, None, None], img.flip(-1), img)
        if p.rotate > 0 or p.crop > 0:
            angle = np.deg2rad(rng.uniform(-p.rotate, p.rotate, n))
            keep = 1.0 - rng.uniform(0.0, p.crop, n)
            tx, ty = (rng.uniform(-1, 1, n) * (1 - keep) for _ in range(2))
            # a rotation in pixels, written in affine_grid's [-1, 1] coordinates (each axis
            # scaled by its own side, so non-square images are not sheared)
            cos, sin = keep * np.cos(angle), keep * np.sin(angle)
            theta = np.stack([np.stack([cos, -sin * h / w, tx], 1),
                              np.stack([sin * w / h, cos, ty], 1)], 1)
            theta = torch.as_tensor(theta, dtype=img.dtype, device=raw.device)
            grid = F.affine_grid(theta, list(img.shape), align_corners=False)
            img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border",
                                align_corners=False)
        return img.permute(0, 2, 3, 1).reshape(n, -1)
