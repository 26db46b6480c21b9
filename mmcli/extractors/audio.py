"""Audio extractors over :class:`mmcli.dataset.AudioClips` (mono float32 at one rate)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.extractors.base import EXTRACTORS, Extractor


@EXTRACTORS.register("mfcc", kind="audio")
class MfccStats(Extractor):
    """Mean and standard deviation over time of MFCCs and their deltas (librosa).

    Output dimension: ``4 * n_mfcc`` (mean and std of the MFCCs, mean and std of the deltas).
    Frames: ``n_fft`` and ``hop_length`` in samples; clips shorter than ``n_fft`` are
    zero-padded.
    """

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        n_mfcc: int = 20
        n_fft: int = 512
        hop_length: int = 160
        n_mels: int = 40

    def _fit(self, data) -> int:
        return 4 * self.params.n_mfcc

    def _transform(self, audio) -> np.ndarray:
        import librosa

        p = self.params
        out = np.zeros((len(audio), self.dim_), dtype=np.float32)
        for k, clip in enumerate(audio.clips):
            if len(clip) < p.n_fft:
                clip = np.pad(clip, (0, p.n_fft - len(clip)))
            mfcc = librosa.feature.mfcc(y=clip, sr=audio.sample_rate, n_mfcc=p.n_mfcc,
                                        n_fft=p.n_fft, hop_length=p.hop_length, n_mels=p.n_mels)
            width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))
            delta = (librosa.feature.delta(mfcc, width=width) if width >= 3
                     else np.zeros_like(mfcc))
            out[k] = np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)])
        return out
