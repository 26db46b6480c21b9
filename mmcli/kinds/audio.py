"""Audio columns: paths to (or bytes of) sound files, decoded to mono float32 clips at
``sample_rate``, of any length up to ``max_audio_seconds``."""

from __future__ import annotations

import math

import numpy as np

from mmcli.kinds.base import KINDS, Kind
from mmcli.media import load_audio

#: what the frames extractor pads with (extractors.audio._LOG_EPS): silence in log-mel units
_SILENCE = math.log(1e-6)


@KINDS.register("audio")
class AudioKind(Kind):
    order = 20
    media = True
    stored = "arrays"
    extensions = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus"})
    magic = ((b"RIFF", b"WAVE", ".wav"), (b"FORM", b"AIFF", ".aiff"), (b"FORM", b"AIFC", ".aiff"),
             (b"fLaC", None, ".flac"), (b"OggS", None, ".ogg"), (b"ID3", None, ".mp3"))
    perturbations = {"white_noise": "white noise, SNR 30 - 40·s dB"}
    layout = "logmel"
    layout_what = "log-mel frames"
    layout_extractor = "frames"
    encoder = "gru"
    augmentations = ("gain_db", "time_shift", "noise_snr_db")
    default_extractors = ("mfcc", "spectral", "prosody", "frames(auto)")
    decode_settings = ("sample_rate", "max_audio_seconds", "long_audio")

    def load(self, path, spec: dict) -> np.ndarray:
        """Mono float32 at ``sample_rate``; see :func:`mmcli.media.load_audio`."""
        return load_audio(path, spec["sample_rate"], spec["max_audio_seconds"],
                          spec["long_audio"])

    def arrays(self, spec: dict) -> dict:
        return {"": (np.float32, None)}

    def read(self, data, col: str, index):
        from mmcli.dataset import AudioClips

        return AudioClips(data.ragged_rows(col, index), data.sample_rate)

    def missing_value(self, spec: dict) -> np.ndarray:
        """A clip of no samples."""
        return np.zeros(0, dtype=np.float32)

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        if name != "white_noise":
            return super().perturb(name, data, severity, rng)
        from mmcli.dataset import AudioClips

        snr_db = 30 - 40 * float(severity)
        clips = []
        for clip in data.clips:
            power = float(np.mean(clip.astype(np.float64) ** 2)) if clip.size else 0.0
            std = np.sqrt(power / 10 ** (snr_db / 10))
            clips.append((clip + rng.normal(0, std, clip.shape)).astype(np.float32))
        return AudioClips(clips, data.sample_rate)

    def augment(self, raw, shape, p, rng):
        """Gain, time shift and noise on log-mel frames (see :mod:`mmcli.models.augment`)."""
        import torch

        n = raw.shape[0]
        t, m = shape
        x = raw.reshape(n, t, m)
        if p.gain_db > 0:
            gain = rng.uniform(-p.gain_db, p.gain_db, n) * math.log(10) / 10
            x = x + torch.as_tensor(gain, dtype=x.dtype, device=x.device)[:, None, None]
        if p.time_shift > 0:
            x = _shift(x, rng.integers(-p.time_shift, p.time_shift + 1, n))
        if p.noise_snr_db != 0:
            power = torch.exp(x.double())
            noise_mean = power.mean((1, 2), keepdim=True) / 10 ** (p.noise_snr_db / 10)
            draws = torch.as_tensor(rng.exponential(1.0, (n, t, m)), device=x.device)
            x = torch.log(power + noise_mean * draws).to(x.dtype)
        return x.reshape(n, -1)


def _shift(x, shifts):
    """Each clip's frames shifted by its whole number of frames, silence filling in."""
    import torch

    t = x.shape[1]
    shifted = torch.full_like(x, _SILENCE)
    for k, s in enumerate(shifts):
        s = int(s)
        if s >= t or -s >= t:
            continue
        if s >= 0:
            shifted[k, s:] = x[k, :t - s]
        else:
            shifted[k, :t + s] = x[k, -s:]
    return shifted
