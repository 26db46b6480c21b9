"""On-the-fly augmentation of structured blocks, applied to the training batches only.

Configured by ``train.params.augment`` (off by default) and applied by the shared training loop
(:mod:`mmcli.models.torch_train`) to each training batch, never to validation, eval or predict
inputs. It acts on the blocks whose extractor gives a structured row (the ``layout`` of each
:class:`mmcli.blocks.Block` given to ``fit``, from ``fusion.json``), in the extractor's own
units: the block is un-normalised with the concat fusion's train mean and scale (``Block.norm``),
changed, and normalised again. Every draw comes from the training loop's seeded generator, so
a seed gives the same augmented batches.

Image blocks (``pixels``, values in [0, 1], ``(height, width, channels)``):

* ``flip``: probability of a horizontal (left-right) flip;
* ``rotate``: rotation by an angle drawn uniformly in [-rotate, rotate] degrees;
* ``crop``: a random crop keeping a fraction drawn in [1 - crop, 1] of each side, at a random
  position, resized back to the full size (rotation and crop are one bilinear resampling with
  edge pixels repeated outside the image).

Audio blocks (``frames``: log-mel frames, ``log(mel power + 1e-6)``, frame-major):

* ``gain_db``: a gain drawn uniformly in [-gain_db, gain_db] dB, i.e. ``g * ln(10) / 10``
  added to every log-mel value;
* ``time_shift``: the frames shifted by a whole number of frames drawn in
  [-time_shift, time_shift], the vacated frames filled with silence (``log(1e-6)``);
* ``noise_snr_db``: noise added in the power domain, ``log(exp(x) + n)``, at this
  signal-to-noise ratio (0: off): the noise's mean power per mel bin is the clip's mean mel
  power divided by 10^(snr/10), and each bin's power is that mean times an Exp(1) draw (the
  spread of a noise periodogram). Approximations: the noise is flat across mel bands (white
  noise is flat per Hz, and wider bands collect more of it), and the mel power of signal plus
  noise is taken as the sum of their mel powers (the cross term averages to zero).

Text blocks (``tokens`` ids, padding 0, unknown 1):

* ``token_drop``: each token removed with this probability (the rest move left, padding fills);
* ``token_unk``: each remaining token replaced by the unknown id 1 with this probability.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mmcli.errors import UsageError

_SILENCE = math.log(1e-6)  # what the frames extractor pads with (audio._LOG_EPS)


@dataclasses.dataclass
class AugmentParams:
    flip: float = 0.0
    rotate: float = 0.0
    crop: float = 0.0
    gain_db: float = 0.0
    time_shift: int = 0
    noise_snr_db: float = 0.0
    token_drop: float = 0.0
    token_unk: float = 0.0


#: which layout each augmentation acts on
TARGETS = {"flip": "image", "rotate": "image", "crop": "image", "gain_db": "logmel",
           "time_shift": "logmel", "noise_snr_db": "logmel", "token_drop": "tokens",
           "token_unk": "tokens"}
_WHAT = {"image": "an image (pixels)", "logmel": "log-mel frames", "tokens": "word ids"}
_HOW = {"image": "pixels", "logmel": "frames", "tokens": "tokens"}


def parse_augment(spec: dict, model: str) -> AugmentParams:
    """``train.params.augment`` checked: known keys, numbers, ranges."""
    from mmcli.config import check_known, check_types

    if not isinstance(spec, dict):
        raise UsageError(f"train.params.augment of model {model!r} is {spec!r}",
                         "give a mapping, e.g. augment: {flip: 0.5, gain_db: 6}")
    for key in spec:
        check_known(key, list(TARGETS), "train.params.augment")
    params = AugmentParams(**spec)
    check_types(params, "train.params.augment")
    for key in ("flip", "crop", "token_drop", "token_unk"):
        if not 0.0 <= getattr(params, key) < 1.0:
            raise UsageError(f"train.params.augment.{key} must be in [0, 1); got "
                             f"{getattr(params, key)!r} instead", f"fix augment.{key}")
    for key in ("rotate", "gain_db", "time_shift"):
        if getattr(params, key) < 0:
            raise UsageError(f"train.params.augment.{key} must be >= 0; got "
                             f"{getattr(params, key)!r} instead", f"fix augment.{key}")
    return params


class Augmenter:
    """Applies ``params`` to the structured blocks of a training batch (a torch tensor)."""

    def __init__(self, params: AugmentParams, blocks, layouts, norms, device):
        import torch

        self.p = params
        self.jobs = []
        asked = {TARGETS[k] for k, v in dataclasses.asdict(params).items() if v}
        for k, (a, z) in enumerate(blocks or []):
            info = (layouts or [None] * len(blocks))[k] or {}
            if info.get("layout") not in asked:
                continue
            if norms is not None and norms[k] is not None:
                mean, scale = (torch.as_tensor(np.asarray(v, dtype=np.float32), device=device)
                               for v in norms[k])
            else:
                mean, scale = None, None
            self.jobs.append((a, z, info, mean, scale))
            if info.get("layout") == "logmel" and params.time_shift >= info["shape"][0]:
                raise UsageError(
                    f"augment.time_shift {params.time_shift} is not below the {info['shape'][0]} "
                    f"frames of modality {info.get('column', k)!r}: shifted clips would be all "
                    "silence", f"use a time_shift below {info['shape'][0]}")
        found = {info.get("layout") for _, _, info, _, _ in self.jobs}
        for key, value in dataclasses.asdict(params).items():
            if value and TARGETS[key] not in found:
                raise UsageError(
                    f"augment.{key} is set but no modality block is {_WHAT[TARGETS[key]]}, so "
                    "it would change nothing",
                    f"extract the modality with {_HOW[TARGETS[key]]} alone (and fuse with "
                    "concat), or drop augment." + key)

    @property
    def active(self) -> bool:
        return bool(self.jobs)

    def __call__(self, xb, rng: np.random.Generator):
        xb = xb.clone()
        for a, z, info, mean, scale in self.jobs:
            raw = xb[:, a:z] if mean is None else xb[:, a:z] * scale + mean
            fn = {"image": self._image, "logmel": self._logmel, "tokens": self._tokens}
            raw = fn[info["layout"]](raw, info["shape"], rng)
            xb[:, a:z] = raw if mean is None else (raw - mean) / scale
        return xb

    def _image(self, raw, shape, rng):
        import torch
        import torch.nn.functional as F

        p, n = self.p, raw.shape[0]
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

    def _logmel(self, raw, shape, rng):
        import torch

        p, n = self.p, raw.shape[0]
        t, m = shape
        x = raw.reshape(n, t, m)
        if p.gain_db > 0:
            gain = rng.uniform(-p.gain_db, p.gain_db, n) * math.log(10) / 10
            x = x + torch.as_tensor(gain, dtype=x.dtype, device=x.device)[:, None, None]
        if p.time_shift > 0:
            shifts = rng.integers(-p.time_shift, p.time_shift + 1, n)
            shifted = torch.full_like(x, _SILENCE)
            for k, s in enumerate(shifts):
                s = int(s)
                if s >= t or -s >= t:
                    continue
                if s >= 0:
                    shifted[k, s:] = x[k, :t - s]
                else:
                    shifted[k, :t + s] = x[k, -s:]
            x = shifted
        if p.noise_snr_db != 0:
            power = torch.exp(x.double())
            noise_mean = power.mean((1, 2), keepdim=True) / 10 ** (p.noise_snr_db / 10)
            draws = torch.as_tensor(rng.exponential(1.0, (n, t, m)), device=x.device)
            x = torch.log(power + noise_mean * draws).to(x.dtype)
        return x.reshape(n, -1)

    def _tokens(self, raw, shape, rng):
        import torch

        p = self.p
        ids = np.rint(raw.detach().cpu().numpy()).astype(np.int64)
        present = ids > 0
        if p.token_drop > 0:
            drop = (rng.random(ids.shape) < p.token_drop) & present
            out = np.zeros_like(ids)
            for k in range(len(ids)):
                kept = ids[k][present[k] & ~drop[k]]
                out[k, :len(kept)] = kept
            ids = out
            present = ids > 0
        if p.token_unk > 0:
            ids = np.where((rng.random(ids.shape) < p.token_unk) & present, 1, ids)
        return torch.as_tensor(ids.astype(np.float32), device=raw.device)
