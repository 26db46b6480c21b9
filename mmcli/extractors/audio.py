"""Audio extractors over :class:`mmcli.dataset.AudioClips` (mono float32 at one rate).

Preprocess decodes any format and rate to mono at ``preprocess.sample_rate``; frame sizes
here (``n_fft``, ``hop_length``) are in samples at that rate. Clips shorter than ``n_fft``
are zero-padded.

The summary extractors (``mfcc``, ``logmel``, ``chroma``, ``spectral``) reduce a
(features x frames) matrix over time with the statistics in ``stats``: ``mean``, ``std``,
``min``, ``max``, ``median`` or ``pNN`` (the NN-th percentile, e.g. ``p10``). Their output is
statistic-major: all features' first statistic, then all features' second one, and so on.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from mmcli.extractors.base import EXTRACTORS, Extractor

_STAT = re.compile(r"^(mean|std|min|max|median|p(100|[1-9]?[0-9]))$")
_LOG_EPS = 1e-6  # log(mel power + eps): silence and padding sit at log(eps)


def summarize(matrix: np.ndarray, stats: list[str]) -> np.ndarray:
    """Reduce (features, frames) to (features * len(stats),), statistic-major."""
    out = []
    for stat in stats:
        if stat == "mean":
            out.append(matrix.mean(axis=1))
        elif stat == "std":
            out.append(matrix.std(axis=1))
        elif stat == "min":
            out.append(matrix.min(axis=1))
        elif stat == "max":
            out.append(matrix.max(axis=1))
        elif stat == "median":
            out.append(np.median(matrix, axis=1))
        else:
            out.append(np.percentile(matrix, float(stat[1:]), axis=1))
    return np.concatenate(out)


def _padded(y: np.ndarray, n_fft: int) -> np.ndarray:
    """A clip (or a batch of equal-length clips, on the last axis) at least ``n_fft`` long."""
    short = n_fft - y.shape[-1]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, short)]) if short > 0 else y


def mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's mel filter bank (``librosa.filters.mel``), built once per process and
    setting (read-only): building it took as long as applying it, once per clip."""
    key = (int(sr), int(n_fft), int(n_mels))
    if key not in _MEL_BASES:
        import librosa

        basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
        basis.setflags(write=False)
        _MEL_BASES[key] = basis
    return _MEL_BASES[key]


_MEL_BASES: dict[tuple[int, int, int], np.ndarray] = {}


def magnitude_spectra(audio, n_fft: int, hop: int) -> list[np.ndarray]:
    """|STFT| (1 + n_fft // 2, frames) of every clip of a batch, in clip order.

    Shared by the extractors of one batch (``AudioClips.shared``): ``mfcc``, ``spectral``,
    ``frames``, ``logmel`` and ``chroma`` with the same ``n_fft`` and ``hop_length`` frame
    and transform each clip once between them, not once each.

    The framing and FFT run once per group of equal-length clips (one batched
    ``librosa.stft``), several times faster than clip by clip on short clips; each clip's
    spectrogram is bit for bit the one ``librosa.stft(clip)`` gives alone (the FFT of a
    frame does not depend on the other frames). Everything after it (mel projection, DCT,
    deltas) runs per clip, whose results could otherwise depend on the batch's shape in the
    last bits, so features never depend on which other items share a chunk (incremental runs
    rely on that; a test compares clips alone and in batches).
    """
    def compute() -> list[np.ndarray]:
        import librosa

        groups: dict[int, list[int]] = {}
        for k, clip in enumerate(audio.clips):
            groups.setdefault(len(clip), []).append(k)
        out: list = [None] * len(audio)
        for ks in groups.values():
            batch = _padded(np.stack([audio.clips[k] for k in ks]), n_fft)
            for k, magnitude in zip(ks, np.abs(librosa.stft(batch, n_fft=n_fft,
                                                            hop_length=hop))):
                # the layout librosa.stft gives one clip (frequencies contiguous), not the
                # batch's (clips interleaved), which made the per-clip work 3x slower
                out[k] = np.asfortranarray(magnitude)
        return out

    return audio.shared(("magnitude", n_fft, hop), compute)


def power_spectra(audio, n_fft: int, hop: int):
    """(position, power spectrogram ``|STFT| ** 2``) of every clip of a batch."""
    for k, magnitude in enumerate(magnitude_spectra(audio, n_fft, hop)):
        yield k, magnitude ** 2.0


def mel_spectra(audio, n_fft: int, hop: int, n_mels: int) -> list[np.ndarray]:
    """Mel power (n_mels, frames) of every clip, what ``librosa.feature.melspectrogram``
    gives; shared like :func:`magnitude_spectra` (``mfcc`` and ``frames`` use the same)."""
    def compute() -> list[np.ndarray]:
        basis = mel_basis(audio.sample_rate, n_fft, n_mels)
        # librosa.feature.melspectrogram(S=power, ...) is this product
        return [np.einsum("...ft,mf->...mt", power, basis, optimize=True)
                for _, power in power_spectra(audio, n_fft, hop)]

    return audio.shared(("mel", n_fft, hop, n_mels), compute)


class _Summary(Extractor):
    """Shared parts of the summary-statistics extractors: ``stats`` checks and the loop."""

    worker_modules = ("librosa.feature.spectral",)

    needs_fit = False
    rows: int  # features per frame, set by _fit

    def _check_stats(self) -> None:
        stats = self.params.stats
        if not stats or not all(isinstance(s, str) and _STAT.match(s) for s in stats):
            raise self._bad("stats", stats,
                            "a non-empty list of mean, std, min, max, median, pNN")
        self._at_least(16, "n_fft")
        self._at_least(1, "hop_length")

    def _frames(self, audio, k: int) -> np.ndarray:
        """The (features, frames) matrix of clip ``k`` of the batch ``audio`` (from the
        batch's shared spectra where it starts from a spectrogram)."""
        raise NotImplementedError

    def _transform(self, audio) -> np.ndarray:
        out = np.zeros((len(audio), self.dim_), dtype=np.float32)
        for k in range(len(audio)):
            out[k] = summarize(self._frames(audio, k), self.params.stats)
        return out


@EXTRACTORS.register("mfcc", kind="audio")
class MfccStats(_Summary):
    """Statistics over time of MFCCs (librosa) and, optionally, their first and second
    deltas.

    Output dimension: ``n_mfcc * (1 + deltas) * len(stats)``

    Parameters:
        n_mfcc: cepstral coefficients
        n_fft: FFT window in samples
        hop_length: hop between frames in samples
        n_mels: mel bands the MFCCs are computed from
        deltas: 0 (none), 1 (add deltas) or 2 (add deltas and delta-deltas)
        stats: statistics over time (mean, std, min, max, median, pNN)
    """

    @dataclasses.dataclass
    class Params:
        n_mfcc: int = 20
        n_fft: int = 512
        hop_length: int = 160
        n_mels: int = 40
        deltas: int = 1
        stats: list = dataclasses.field(
            default_factory=lambda: ["mean", "std", "p10", "p50", "p90"])

    def _check(self) -> None:
        self._check_stats()
        self._at_least(1, "n_mfcc", "n_mels")
        self._one_of("deltas", (0, 1, 2))

    def _fit(self, data) -> int:
        return self.params.n_mfcc * (1 + self.params.deltas) * len(self.params.stats)

    def _frames(self, audio, k: int) -> np.ndarray:
        import librosa

        p = self.params
        # what librosa.feature.mfcc(y=clip, ...) computes, from the mel spectrogram
        mel_db = librosa.power_to_db(mel_spectra(audio, p.n_fft, p.hop_length, p.n_mels)[k])
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=p.n_mfcc)
        parts = [mfcc]
        width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))  # odd, <= frames
        for order in range(1, p.deltas + 1):
            parts.append(librosa.feature.delta(mfcc, width=width, order=order) if width >= 3
                         else np.zeros_like(mfcc))
        return np.concatenate(parts)

    def _transform(self, audio) -> np.ndarray:
        # keep the historical layout for the default (mfcc stats, then delta stats)
        out = np.zeros((len(audio), self.dim_), dtype=np.float32)
        n = self.params.n_mfcc
        for k in range(len(audio)):
            frames = self._frames(audio, k)
            out[k] = np.concatenate([summarize(frames[a:a + n], self.params.stats)
                                     for a in range(0, frames.shape[0], n)])
        return out


@EXTRACTORS.register("logmel", kind="audio")
class LogMelStats(_Summary):
    """Statistics over time of the log-mel spectrogram, ``log(mel power + 1e-6)``.

    Output dimension: ``n_mels * len(stats)``

    Parameters:
        n_mels: mel bands
        n_fft: FFT window in samples
        hop_length: hop between frames in samples
        stats: statistics over time (mean, std, min, max, median, pNN)
    """

    @dataclasses.dataclass
    class Params:
        n_mels: int = 40
        n_fft: int = 512
        hop_length: int = 160
        stats: list = dataclasses.field(default_factory=lambda: ["mean", "std"])

    def _check(self) -> None:
        self._check_stats()
        self._at_least(1, "n_mels")

    def _fit(self, data) -> int:
        return self.params.n_mels * len(self.params.stats)

    def _frames(self, audio, k: int) -> np.ndarray:
        p = self.params
        return np.log(mel_spectra(audio, p.n_fft, p.hop_length, p.n_mels)[k] + _LOG_EPS)


@EXTRACTORS.register("chroma", kind="audio")
class ChromaStats(_Summary):
    """Statistics over time of the 12 pitch-class energies (librosa ``chroma_stft``).

    Output dimension: ``12 * len(stats)``

    Parameters:
        n_fft: FFT window in samples
        hop_length: hop between frames in samples
        stats: statistics over time (mean, std, min, max, median, pNN)
    """

    @dataclasses.dataclass
    class Params:
        n_fft: int = 1024
        hop_length: int = 160
        stats: list = dataclasses.field(default_factory=lambda: ["mean", "std"])

    def _check(self) -> None:
        self._check_stats()

    def _fit(self, data) -> int:
        return 12 * len(self.params.stats)

    def _frames(self, audio, k: int) -> np.ndarray:
        import librosa

        p = self.params
        # chroma_stft(y=clip) starts from this power spectrogram
        power = magnitude_spectra(audio, p.n_fft, p.hop_length)[k] ** 2.0
        return librosa.feature.chroma_stft(S=power, sr=audio.sample_rate, n_fft=p.n_fft,
                                           hop_length=p.hop_length, tuning=0.0)


@EXTRACTORS.register("spectral", kind="audio")
class SpectralStats(_Summary):
    """Statistics over time of spectral shape descriptors (librosa): spectral contrast
    (``n_bands + 1`` rows), then centroid, bandwidth and roll-off (as fractions of the
    Nyquist frequency), flatness, zero-crossing rate and log RMS energy.

    Contrast bands start at ``fmin`` Hz, lowered when the sample rate is too low for
    ``n_bands`` octaves.

    Output dimension: ``(n_bands + 7) * len(stats)``

    Parameters:
        n_bands: spectral-contrast octave bands
        fmin: lowest contrast band edge in Hz
        rolloff: roll-off energy fraction
        n_fft: FFT window in samples
        hop_length: hop between frames in samples
        stats: statistics over time (mean, std, min, max, median, pNN)
    """

    @dataclasses.dataclass
    class Params:
        n_bands: int = 6
        fmin: float = 200.0
        rolloff: float = 0.85
        n_fft: int = 512
        hop_length: int = 160
        stats: list = dataclasses.field(default_factory=lambda: ["mean", "std"])

    def _check(self) -> None:
        self._check_stats()
        self._at_least(1, "n_bands")
        if self.params.fmin <= 0:
            raise self._bad("fmin", self.params.fmin, "> 0")
        if not 0 < self.params.rolloff < 1:
            raise self._bad("rolloff", self.params.rolloff, "between 0 and 1")

    def _fit(self, data) -> int:
        return (self.params.n_bands + 7) * len(self.params.stats)

    def _frames(self, audio, k: int) -> np.ndarray:
        import librosa

        p, sr = self.params, audio.sample_rate
        y = _padded(audio.clips[k], p.n_fft)
        nyquist = sr / 2
        spec = magnitude_spectra(audio, p.n_fft, p.hop_length)[k]
        fmin = min(p.fmin, 0.99 * nyquist / 2 ** (p.n_bands - 1))
        contrast = librosa.feature.spectral_contrast(S=spec, sr=sr, n_fft=p.n_fft,
                                                     n_bands=p.n_bands, fmin=fmin)
        rows = [
            librosa.feature.spectral_centroid(S=spec, sr=sr) / nyquist,
            librosa.feature.spectral_bandwidth(S=spec, sr=sr) / nyquist,
            librosa.feature.spectral_rolloff(S=spec, sr=sr, roll_percent=p.rolloff) / nyquist,
            librosa.feature.spectral_flatness(S=spec),
            librosa.feature.zero_crossing_rate(y, frame_length=p.n_fft,
                                               hop_length=p.hop_length),
            np.log(librosa.feature.rms(S=spec, frame_length=p.n_fft) + _LOG_EPS),
        ]
        frames = min(m.shape[1] for m in [contrast, *rows])
        return np.concatenate([contrast[:, :frames], *(r[:, :frames] for r in rows)])


@EXTRACTORS.register("frames", kind="audio")
class LogMelFrames(Extractor):
    """A fixed-length sequence of log-mel frames for sequence models (GRU, CNN).

    Each clip's log-mel spectrogram (``log(mel power + 1e-6)``) is brought to ``n_frames``
    frames: ``resample`` stretches or squeezes it in time (linear interpolation), ``pad``
    keeps the first ``n_frames`` frames and pads short clips with silence (``log(1e-6)``).
    The row is frame-major: ``x.reshape(n, n_frames, n_mels)`` gives (batch, time, features)
    for a GRU or Transformer encoder (``encoder: auto`` of the learned-fusion models), and the
    training augmentations ``gain_db``, ``time_shift`` and ``noise_snr_db`` act on it.

    As ``frames(auto)`` (in the default audio list) it is used only where the train clips
    are short and of similar length (a fixed grid of frames then lines up with the words):
    their median duration is at most ``short_seconds`` and the spread of durations,
    (p90 - p10) / median, at most ``length_spread``. The decision is taken once, at fit.

    Output dimension: ``n_frames * n_mels``

    Parameters:
        n_frames: frames per clip
        n_mels: mel bands per frame
        n_fft: FFT window in samples
        hop_length: hop between frames in samples
        mode: resample or pad
        short_seconds: as frames(auto), the longest median train clip duration (seconds)
        length_spread: as frames(auto), the largest (p90 - p10) / median of train durations
    """

    worker_modules = ("librosa.feature.spectral",)

    needs_fit = False

    @dataclasses.dataclass
    class Params:
        n_frames: int = 32
        n_mels: int = 40
        n_fft: int = 512
        hop_length: int = 160
        mode: str = "resample"
        short_seconds: float = 2.0
        length_spread: float = 0.25

    def _check(self) -> None:
        self._at_least(1, "n_frames", "n_mels", "hop_length")
        self._at_least(16, "n_fft")
        self._one_of("mode", ("resample", "pad"))
        self._at_least(0, "short_seconds", "length_spread")

    def applies_to(self, audio) -> tuple[bool, str]:
        p = self.params
        if len(audio) == 0:
            return False, "no train clips"
        seconds = np.array([len(c) for c in audio.clips], dtype=np.float64) / audio.sample_rate
        lo, median, hi = np.percentile(seconds, [10, 50, 90])
        spread = (hi - lo) / median if median > 0 else np.inf
        facts = f"train clips: median {median:.2f} s, spread (p90 - p10) / median {spread:.2f}"
        if median > p.short_seconds:
            return False, f"{facts}; median > short_seconds {p.short_seconds:g} s"
        if spread > p.length_spread:
            return False, f"{facts}; spread > length_spread {p.length_spread:g}"
        return True, f"{facts}; short and of similar length"

    def _fit(self, data) -> int:
        return self.params.n_frames * self.params.n_mels

    def _transform(self, audio) -> np.ndarray:
        p = self.params
        out = np.zeros((len(audio), self.dim_), dtype=np.float32)
        for k, mel in enumerate(mel_spectra(audio, p.n_fft, p.hop_length, p.n_mels)):
            out[k] = self._fixed(np.log(mel + _LOG_EPS)).T.ravel()
        return out

    def structure(self) -> dict | None:
        return {"layout": "logmel", "shape": [self.params.n_frames, self.params.n_mels]}

    def _fixed(self, logmel: np.ndarray) -> np.ndarray:
        n = self.params.n_frames
        frames = logmel.shape[1]
        if self.params.mode == "pad":
            fixed = np.full((logmel.shape[0], n), np.log(_LOG_EPS), dtype=np.float64)
            fixed[:, :min(n, frames)] = logmel[:, :n]
            return fixed
        if frames == 1:
            return np.repeat(logmel, n, axis=1)
        src = np.linspace(0, frames - 1, n)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, frames - 1)
        w = src - lo
        return logmel[:, lo] * (1 - w) + logmel[:, hi] * w


#: names of the ``prosody`` features, in output order
PROSODY_FEATURES = (
    "voiced_fraction",
    "f0_mean", "f0_std", "f0_p10", "f0_p50", "f0_p90", "f0_range", "f0_slope",
    "energy_mean", "energy_std", "energy_p10", "energy_p50", "energy_p90", "energy_range",
    "energy_slope",
    "voiced_segments_per_s", "voiced_segment_s", "energy_peaks_per_s", "pause_fraction",
    "log_duration",
)
_RMS_FLOOR = 1e-4  # -80 dBFS: a quieter frame is never voiced (digital silence, dither)
_RMS_EPS = 1e-5  # energy is log(rms + 1e-5): silence sits at log(1e-5), -11.5


@EXTRACTORS.register("prosody", kind="audio")
class Prosody(Extractor):
    """Prosody of the whole clip: pitch (F0) statistics over voiced frames, energy
    statistics, voicing and rate measures.

    F0 is found per frame by YIN (`librosa.yin`, `fmin` to `fmax` Hz, frames of
    `frame_length` samples every `hop_length`). A frame is voiced when (1) its RMS is
    within `energy_db` dB of the clip's loud frames (the 95th percentile of frame RMS)
    and above -80 dBFS, and (2) it is periodic at the YIN period T: the normalised
    correlation between the frame and itself shifted by T is at least `periodicity`.
    (YIN's difference function is d(T) = e0 + eT - 2 r(T), so this is a threshold on
    YIN's normalised aperiodicity, like Praat's voicing threshold of 0.45.)

    Features (20, in order): voiced fraction; log-F0 in semitones re 100 Hz over voiced
    frames: mean, std, p10, p50, p90, range (p90 - p10), slope (semitones per second);
    frame energy, the natural log of the frame RMS (as in ``spectral``; 10 times louder is
    +2.3), over all frames: mean, std, p10, p50, p90, range (p90 - p10), slope (per
    second); voiced segments (runs of at least 2 voiced
    frames) per second; their mean length in seconds; energy peaks (local maxima of the
    50-ms smoothed energy, at least 100 ms apart and 3 dB above the lowest point within
    100 ms, above the energy threshold) per second;
    pause fraction (frames below the energy threshold); log duration in seconds. A clip
    with no voiced frame has voiced fraction 0 and every F0 statistic 0.

    Output dimension: 20

    Parameters:
        fmin: lowest F0 in Hz
        fmax: highest F0 in Hz
        frame_length: YIN frame in samples (at least 2 periods of fmin)
        hop_length: hop between frames in samples
        energy_db: voiced frames are within this many dB of the clip's loud frames
        periodicity: least normalised correlation at the F0 period of a voiced frame
    """

    worker_modules = ("librosa.core.pitch",)
    needs_fit = False

    @dataclasses.dataclass
    class Params:
        fmin: float = 60.0
        fmax: float = 500.0
        frame_length: int = 1024
        hop_length: int = 160
        energy_db: float = 30.0
        periodicity: float = 0.5

    def _check(self) -> None:
        p = self.params
        if p.fmin <= 0:
            raise self._bad("fmin", p.fmin, "> 0")
        if p.fmax <= p.fmin:
            raise self._bad("fmax", p.fmax, f"> fmin ({p.fmin})")
        self._at_least(64, "frame_length")
        self._at_least(1, "hop_length")
        if p.energy_db <= 0:
            raise self._bad("energy_db", p.energy_db, "> 0")
        if not 0 < p.periodicity < 1:
            raise self._bad("periodicity", p.periodicity, "between 0 and 1")

    def _fit(self, data) -> int:
        return len(PROSODY_FEATURES)

    def _bounds(self, sr: int) -> tuple[float, float]:
        """fmin and fmax as YIN can search them at this rate and frame length."""
        p = self.params
        fmin = max(p.fmin, 2.0 * sr / p.frame_length)  # two periods fit in a frame
        fmax = min(p.fmax, sr / 4.0)
        return fmin, max(fmax, fmin * 1.5)

    def _transform(self, audio) -> np.ndarray:
        p, sr = self.params, audio.sample_rate
        fmin, fmax = self._bounds(sr)
        out = np.zeros((len(audio), self.dim_), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for k, clip in enumerate(audio.clips):
            groups.setdefault(len(clip), []).append(k)
        for length, ks in groups.items():
            # YIN over a batch of equal-length clips works frame by frame (FFT, cumulative
            # sums along each frame), so a clip's F0 is the one it gets alone (a test checks)
            batch = np.stack([audio.clips[k] for k in ks]).astype(np.float32)
            f0, frames = yin(batch, fmin, fmax, sr, p.frame_length, p.hop_length)
            for row, k in enumerate(ks):
                out[k] = self._features(frames[row], f0[row], sr, length)
        return out

    def _features(self, frames: np.ndarray, f0: np.ndarray, sr: int, length: int) -> np.ndarray:
        """The 20 features of one clip from its (frame_length, n) frames and YIN F0."""
        p = self.params
        frames = frames.astype(np.float64)
        rms = np.sqrt(np.mean(frames ** 2, axis=0))
        db = 20 * np.log10(rms + _RMS_EPS)  # the voicing and peak rules work in dB
        loud = np.percentile(db, 95)
        energetic = (db >= loud - p.energy_db) & (rms > _RMS_FLOOR)
        voiced = energetic & (self._periodicity(frames, sr / f0) >= p.periodicity)
        step = p.hop_length / sr
        times = np.arange(len(db)) * step
        duration = max(length / sr, step)

        feats = [voiced.mean()]
        semitones = 12 * np.log2(f0[voiced] / 100.0)
        if semitones.size:
            lo, mid, hi = np.percentile(semitones, [10, 50, 90])
            feats += [semitones.mean(), semitones.std(), lo, mid, hi, hi - lo,
                      _slope(times[voiced], semitones)]
        else:
            feats += [0.0] * 7
        energy = np.log(rms + _RMS_EPS)
        lo, mid, hi = np.percentile(energy, [10, 50, 90])
        feats += [energy.mean(), energy.std(), lo, mid, hi, hi - lo, _slope(times, energy)]
        runs = _runs(voiced)
        runs = runs[runs >= 2]
        feats += [len(runs) / duration, runs.mean() * step if runs.size else 0.0]
        feats += [_peaks(db, energetic, sr, p.hop_length) / duration,
                  1.0 - energetic.mean(), np.log(duration)]
        return np.asarray(feats, dtype=np.float64)

    def _periodicity(self, frames: np.ndarray, period: np.ndarray) -> np.ndarray:
        """Per frame, the normalised correlation of the frame's start with the same span
        one period (in samples, rounded) later; 0 for a silent frame."""
        lag = np.clip(np.rint(period).astype(int), 1, frames.shape[0] // 2)
        width = frames.shape[0] - int(lag.max())
        cols = np.arange(frames.shape[1])
        a = frames[:width]
        b = frames[np.arange(width)[:, None] + lag[None, :], cols[None, :]]
        energy = np.sqrt((a ** 2).sum(axis=0) * (b ** 2).sum(axis=0))
        corr = (a * b).sum(axis=0)
        return np.divide(corr, energy, out=np.zeros_like(corr), where=energy > 1e-12)


#: frames YIN works on at a time: its FFTs and sums then stay in the CPU's caches (on a
#: batch of 128 one-second clips at once, 13,000 frames and 200 MB, it ran 1.7x slower)
YIN_BLOCK = 512


def yin(batch: np.ndarray, fmin: float, fmax: float, sr: int, frame_length: int, hop: int,
        trough_threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.yin(batch, ...)`` (centred, zero-padded frames), bit for bit, and the frames
    it used, (clips, frame_length, n_frames) (a view of the padded batch).

    The same operations as librosa's, on the same values, in the same order; only the layout
    and the blocking differ: librosa transforms and sums along the frame axis of
    (frame_length, n_frames) arrays, whose elements lie far apart in memory after the first
    FFT, and the whole batch at once; here every frame is a row, so the FFTs, cumulative sums
    and numba kernels run on contiguous rows, ``YIN_BLOCK`` frames at a time (2.3x faster;
    frames are independent, and a test compares the F0s with librosa's).
    """
    import librosa

    half = frame_length // 2
    framed = librosa.util.frame(np.pad(batch, [(0, 0), (half, half)]),
                                frame_length=frame_length, hop_length=hop)
    rows = np.swapaxes(framed, -1, -2)  # (clips, n_frames, frame_length), rows contiguous
    periods = (int(np.floor(sr / fmax)), min(int(np.ceil(sr / fmin)), frame_length - 1))
    clips, n_frames = rows.shape[:2]
    f0 = np.empty((clips, n_frames))
    per = max(1, YIN_BLOCK // max(1, n_frames))  # whole clips per block, or frames of one
    for a in range(0, clips, per):
        for b in range(0, n_frames, YIN_BLOCK):
            block = rows[a:a + per, b:b + YIN_BLOCK]
            f0[a:a + per, b:b + YIN_BLOCK] = sr / _yin_periods(block, *periods,
                                                                trough_threshold)
    return f0, framed


def _yin_periods(rows: np.ndarray, min_period: int, max_period: int,
                 trough_threshold: float) -> np.ndarray:
    """YIN's period in samples of every frame of ``rows`` (..., frame_length): librosa.yin's
    steps after framing, along the last axis."""
    import librosa
    import scipy.fft
    from librosa.core.pitch import _parabolic_interpolation

    util = librosa.util
    frame_length = rows.shape[-1]
    # librosa.autocorrelate(frames, max_size=max_period + 1)
    fft = librosa.get_fftlib()
    n_pad = scipy.fft.next_fast_len(2 * frame_length - 1, real=True)
    acf = fft.irfft(util.abs2(fft.rfft(rows, n=n_pad, axis=-1)), n=n_pad,
                    axis=-1)[..., :min(max_period + 1, frame_length)]
    # the cumulative mean normalised difference (librosa's
    # _cumulative_mean_normalized_difference)
    diff = np.square(rows)
    np.cumsum(diff, out=diff, axis=-1)
    diff[..., 0] = 0
    diff[..., 1:max_period + 1] = (2 * (acf[..., 0:1] - acf[..., 1:max_period + 1])
                                   - diff[..., :max_period])
    mean = np.cumsum(diff[..., 1:max_period + 1], axis=-1) / np.arange(1, max_period + 1)
    denominator = mean[..., min_period - 1:max_period]
    cmnd = diff[..., min_period:max_period + 1] / (denominator + util.tiny(denominator))
    # the first trough below the threshold, else the global minimum, refined by a parabola
    shifts = _parabolic_interpolation(cmnd, axis=-1)
    trough = util.localmin(cmnd, axis=-1)
    trough[..., 0] = cmnd[..., 0] < cmnd[..., 1]
    below = np.logical_and(trough, cmnd < trough_threshold)
    global_min = np.argmin(cmnd, axis=-1)
    period = np.argmax(below, axis=-1)
    none = np.all(~below, axis=-1)
    period[none] = global_min[none]
    return (min_period + period
            + np.take_along_axis(shifts, period[..., None], axis=-1)[..., 0])


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against ``t``; 0 with fewer than 2 distinct times."""
    if t.size < 2:
        return 0.0
    tc = t - t.mean()
    denom = float((tc ** 2).sum())
    return float((tc * (y - y.mean())).sum() / denom) if denom > 0 else 0.0


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a boolean vector."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def _peaks(db: np.ndarray, energetic: np.ndarray, sr: int, hop: int) -> int:
    """Syllable-like energy peaks: local maxima of the energy smoothed over 50 ms, at least
    100 ms apart, 3 dB above the lowest point within 100 ms on either side, above the
    energy threshold."""
    frames_per = sr / hop
    view = np.lib.stride_tricks.sliding_window_view
    h = max(1, int(round(0.025 * frames_per)))  # +-25 ms moving average, edges repeated
    smooth = view(np.pad(db, h, mode="edge"), 2 * h + 1).mean(axis=1)
    half = max(1, int(round(0.05 * frames_per)))
    top = view(np.pad(smooth, half, constant_values=-np.inf), 2 * half + 1).max(axis=1)
    wide = max(1, int(round(0.1 * frames_per)))
    low = view(np.pad(smooth, wide, mode="edge"), 2 * wide + 1).min(axis=1)
    is_peak = (smooth >= top) & (smooth - low >= 3.0) & energetic
    # a flat top counts once: only its first frame
    is_peak[1:] &= ~(is_peak[:-1] & (smooth[1:] == smooth[:-1]))
    return int(is_peak.sum())
