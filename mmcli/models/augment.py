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

import numpy as np

from mmcli.errors import UsageError


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


def _targets() -> dict[str, str]:
    """Which layout each augmentation acts on: the ``augmentations`` of the modality kind
    of that layout (:mod:`mmcli.kinds`), which also implements them (``Kind.augment``)."""
    from mmcli.kinds import get_kind, kind_names

    return {key: get_kind(n).layout for n in kind_names() for key in get_kind(n).augmentations}


def _kind_of_layout(layout: str):
    from mmcli.kinds import get_kind, kind_names

    return next(get_kind(n) for n in kind_names() if get_kind(n).layout == layout)


TARGETS = _targets()


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
                    f"augment.{key} is set but no modality block is "
                    f"{_kind_of_layout(TARGETS[key]).layout_what}, so "
                    "it would change nothing",
                    f"extract the modality with {_kind_of_layout(TARGETS[key]).layout_extractor}"
                    " alone (and fuse with "
                    "concat), or drop augment." + key)

    @property
    def active(self) -> bool:
        return bool(self.jobs)

    def __call__(self, xb, rng: np.random.Generator):
        xb = xb.clone()
        for a, z, info, mean, scale in self.jobs:
            raw = xb[:, a:z] if mean is None else xb[:, a:z] * scale + mean
            raw = _kind_of_layout(info["layout"]).augment(raw, info["shape"], self.p, rng)
            xb[:, a:z] = raw if mean is None else (raw - mean) / scale
        return xb
