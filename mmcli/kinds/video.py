"""Video columns: clips (.mp4 .webm .mkv .mov .avi) decoded with PyAV (``pip install
'mmcli[video]'``; its wheels carry FFmpeg).

A clip becomes ``video_frames`` RGB frames of ``image_size``, sampled evenly over its duration
(the frame shown at the centre of each of ``video_frames`` equal segments), and its sound track,
mixed to mono at ``sample_rate`` (empty when the clip has none). Limits: the frame size read
from the stream header (``max_video_pixels``, width x height, refused before any frame is
decoded), the duration (``max_video_seconds``; longer clips are cut to their start, or refused
with ``long_video: fail``) and the sound track (``max_audio_seconds``, cut).

Features: every entry of ``extract.video`` names an image or an audio extractor. An image
extractor runs on every sampled frame and its rows are pooled over time (mean, then standard
deviation: twice its dimension); an audio extractor runs on the sound track (a zero row for a
clip without one; write it ``NAME(auto)`` so it is left out where no train clip has sound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmcli.extractors.base import Extractor
from mmcli.kinds.base import KINDS, Kind
from mmcli.media import MediaError, check_file


@dataclass
class VideoClips:
    """A batch of decoded clips: ``frames`` (n, video_frames, height, width, 3) uint8 and
    their sound tracks (:class:`~mmcli.dataset.AudioClips`, empty clips where there is none)."""

    frames: np.ndarray
    audio: object

    def __len__(self) -> int:
        return len(self.frames)


@KINDS.register("video")
class VideoKind(Kind):
    order = 25
    media = True
    stored = "arrays"
    extensions = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi"})
    magic = ((b"RIFF", b"AVI ", ".avi"), (b"\x1a\x45\xdf\xa3", None, ".mkv"))
    perturbations = {"frame_noise": "Gaussian noise on every frame, std 128·s grey levels",
                     "track_noise": "white noise on the sound track, SNR 30 - 40·s dB"}
    default_extractors = ("color_hist", "hog", "mfcc(auto)", "spectral(auto)")
    decode_settings = ("image_size", "video_frames", "max_video_seconds", "long_video",
                       "max_video_pixels", "sample_rate", "max_audio_seconds")
    extractors_note = ("any image extractor (run on every sampled frame, pooled over time: "
                       "mean and std) or audio extractor (on the sound track)")

    def require(self) -> None:
        try:
            import av  # noqa: F401
        except ImportError:
            from mmcli.errors import UsageError

            raise UsageError("video columns need PyAV, which is not installed",
                             "pip install 'mmcli[video]'") from None

    def sniff(self, data: bytes) -> str | None:
        if data[4:8] == b"ftyp":  # ISO media: MP4, or QuickTime ("qt  " brand)
            return ".mov" if data[8:10] == b"qt" else ".mp4"
        return super().sniff(data)

    def load(self, path, spec: dict) -> tuple[np.ndarray, np.ndarray]:
        return load_video(path, spec)

    def arrays(self, spec: dict) -> dict:
        w, h = spec["image_size"]
        return {"": (np.uint8, (int(spec["video_frames"]), h, w, 3)), ".audio": (np.float32, None)}

    def parts(self, value) -> tuple:
        return tuple(value)

    def join(self, parts: tuple):
        return tuple(parts)

    def read(self, data, col: str, index) -> VideoClips:
        from mmcli.dataset import AudioClips

        return VideoClips(data.fixed_rows(col, index),
                          AudioClips(data.ragged_rows(f"{col}.audio", index), data.sample_rate))

    def missing_value(self, spec: dict) -> tuple[np.ndarray, np.ndarray]:
        """Black frames and no sound."""
        w, h = spec["image_size"]
        return (np.zeros((int(spec["video_frames"]), h, w, 3), dtype=np.uint8),
                np.zeros(0, dtype=np.float32))

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        from mmcli.kinds import get_kind

        if name == "frame_noise":
            n, t, *shape = data.frames.shape
            flat = data.frames.reshape(n * t, *shape)
            noisy = get_kind("image").perturb("gaussian_noise", flat, severity, rng)
            return VideoClips(noisy.reshape(data.frames.shape), data.audio)
        if name == "track_noise":
            audio = get_kind("audio").perturb("white_noise", data.audio, severity, rng)
            return VideoClips(data.frames, audio)
        return super().perturb(name, data, severity, rng)

    def build_extractor(self, name: str, params: dict | None) -> Extractor:
        """An image extractor pooled over the frames, or an audio extractor on the track."""
        from mmcli.errors import UsageError
        from mmcli.extractors import EXTRACTORS, build_extractor

        kind = EXTRACTORS.tags(name)["kind"] if name in EXTRACTORS else None
        if kind == "image":
            return PooledFrames(build_extractor(name, "image", params))
        if kind == "audio":
            return Soundtrack(build_extractor(name, "audio", params))
        EXTRACTORS.get(name, where="extract.video")  # an unknown name: "did you mean"
        raise UsageError(f"extractor {name!r} is for {kind} columns, not video",
                         f"video extractors: {self.extractors_note}: "
                         f"{', '.join(self.extractor_names())}")

    def extractor_names(self) -> list[str]:
        from mmcli.extractors import EXTRACTORS

        return EXTRACTORS.names(kind="image") + EXTRACTORS.names(kind="audio")

    def load_extractor(self, state: dict, arrays: dict, files: dict) -> Extractor:
        from mmcli.extractors import EXTRACTORS

        inner = EXTRACTORS.get(state["name"]).from_state(state, arrays, files)
        wrapper = {"frames": PooledFrames, "track": Soundtrack}[state["video"]](inner)
        wrapper.dim_ = wrapper._dim(inner.dim_)
        return wrapper


class _OverVideo(Extractor):
    """An image or audio extractor applied to a part of every clip (see the module doc)."""

    part = ""

    def __init__(self, inner: Extractor):  # the inner extractor validated its parameters
        self.inner = inner
        self.name = inner.name
        self.params = inner.params
        self.Params = inner.Params
        self.needs_fit = inner.needs_fit
        self.parallel = inner.parallel
        self.worker_modules = inner.worker_modules
        self.dim_ = None

    def _dim(self, inner_dim: int) -> int:
        return inner_dim

    def fit_note(self) -> str | None:
        return self.inner.fit_note()

    def state_files(self) -> dict:
        return self.inner.state_files()

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = self.inner.get_state()
        return {**state, "video": self.part}, arrays


class PooledFrames(_OverVideo):
    part = "frames"

    def _dim(self, inner_dim: int) -> int:
        return 2 * inner_dim

    @staticmethod
    def _frames(data: VideoClips) -> np.ndarray:
        return data.frames.reshape(-1, *data.frames.shape[2:])

    def applies_to(self, data: VideoClips) -> tuple[bool, str]:
        return self.inner.applies_to(self._frames(data))

    def _fit(self, data: VideoClips | None) -> int:
        self.inner.fit(self._frames(data) if data is not None else None)
        return self._dim(self.inner.dim_)

    def _transform(self, data: VideoClips) -> np.ndarray:
        n, t = data.frames.shape[:2]
        rows = self.inner.transform(self._frames(data)).reshape(n, t, -1)
        return np.concatenate([rows.mean(1), rows.std(1)], axis=1)


class Soundtrack(_OverVideo):
    part = "track"

    def __init__(self, inner: Extractor):
        super().__init__(inner)
        self.needs_fit = True  # to see that the train clips have sound at all

    @staticmethod
    def _with_sound(data: VideoClips) -> tuple[list[int], object]:
        from mmcli.dataset import AudioClips

        keep = [k for k, clip in enumerate(data.audio.clips) if clip.size]
        return keep, AudioClips([data.audio.clips[k] for k in keep], data.audio.sample_rate)

    def applies_to(self, data: VideoClips) -> tuple[bool, str]:
        keep, clips = self._with_sound(data)
        if not keep:
            return False, "no train video has a sound track"
        return self.inner.applies_to(clips)

    def _fit(self, data: VideoClips) -> int:
        keep, clips = self._with_sound(data)
        if not keep:
            from mmcli.errors import DataError

            raise DataError(f"no train video has a sound track, so the audio extractor "
                            f"{self.name!r} of extract.video would learn nothing",
                            f"write it {self.name}(auto) in extract.video, or leave it out")
        self.inner.fit(clips if self.inner.needs_fit else None)
        return self.inner.dim_

    def _transform(self, data: VideoClips) -> np.ndarray:
        out = np.zeros((len(data), self.dim_), dtype=np.float32)
        keep, clips = self._with_sound(data)
        if keep:
            out[keep] = self.inner.transform(clips)
        return out


# --- decoding ------------------------------------------------------------------------------


def load_video(path, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(frames (video_frames, h, w, 3) uint8, mono float32 sound track) of a clip, or
    :class:`MediaError` with the reason; see the module doc for the limits."""
    import av
    import av.logging

    av.logging.set_libav_level(av.logging.PANIC)  # reasons go to failures.csv, not stderr
    path = check_file(path, "a video")
    try:
        with av.open(str(path)) as container:
            seconds = _duration(_video_stream(container, path, spec), container, path, spec)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # preprocess runs one worker per core
            frames = _sample_frames(container, stream, seconds, spec)
        if frames is None:
            raise MediaError(f"video has no frames: {path}")
        # the track of the clip's (cut) duration, within the audio limit
        limit = min(seconds or math.inf, float(spec["max_audio_seconds"]))
        with av.open(str(path)) as container:
            track = _sound_track(container, limit, spec)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this item's reason
        reason = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
        raise MediaError(f"cannot decode video {path}: {reason.splitlines()[0]}") from None
    return frames, track


def _video_stream(container, path, spec: dict):
    """The first video stream, its frame size checked against ``max_video_pixels``."""
    if not container.streams.video:
        raise MediaError(f"no video stream in {path}")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > spec["max_video_pixels"]:
        raise MediaError(f"video frames too large ({width}x{height}): more than "
                         f"max_video_pixels = {spec['max_video_pixels']} pixels: {path}")
    return stream


def _duration(stream, container, path, spec: dict) -> float:
    """The video stream's duration in seconds (from its header, else from its packets, which
    are read without decoding), cut to ``max_video_seconds`` or refused with ``long_video:
    fail``."""
    limit = float(spec["max_video_seconds"])
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    else:  # Matroska and WebM give no stream duration: the end of the last packet
        seconds = 0.0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                end = packet.pts + (packet.duration or 0)
                seconds = max(seconds, float(end * packet.time_base))
            if seconds > limit:
                break
    if seconds > limit:
        if spec["long_video"] == "fail":
            raise MediaError(f"video longer than max_video_seconds = {limit:g} s "
                             f"(long_video: fail): {path}")
        seconds = limit
    return max(seconds, 0.0)


def _sample_frames(container, stream, seconds: float, spec: dict) -> np.ndarray | None:
    """The frames shown at the centres of ``video_frames`` equal segments of ``seconds``
    (decoding stops once the last is found); None when the stream has no frame."""
    count = int(spec["video_frames"])
    targets = [(j + 0.5) * seconds / count for j in range(count)]
    chosen: list = []
    shown = None  # (frame, its image once converted)
    for frame in container.decode(stream):
        t = frame.time if frame.time is not None else 0.0
        while shown is not None and len(chosen) < count and targets[len(chosen)] < t:
            chosen.append(shown)
        if len(chosen) == count:
            break
        shown = frame
    if shown is None:
        return None
    chosen += [shown] * (count - len(chosen))
    images: dict[int, np.ndarray] = {}  # a frame chosen twice is converted once
    for frame in chosen:
        if id(frame) not in images:
            images[id(frame)] = _rgb(frame, spec["image_size"])
    return np.stack([images[id(frame)] for frame in chosen])


def _rgb(frame, size) -> np.ndarray:
    from PIL import Image

    image = frame.to_image().resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _sound_track(container, seconds: float, spec: dict) -> np.ndarray:
    """The first audio stream mixed to mono float32 at ``sample_rate``, at most ``seconds``
    long; no samples when there is none."""
    import av

    if not container.streams.audio:
        return np.zeros(0, dtype=np.float32)
    rate = int(spec["sample_rate"])
    limit = max(1, int(np.ceil(seconds * rate)))
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts, total = [], 0
    for frame in container.decode(container.streams.audio[0]):
        for out in resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1))
            total += parts[-1].size
        if total >= limit:
            break
    else:
        parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    track = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if not np.all(np.isfinite(track)):
        raise MediaError("video sound track contains NaN or infinite samples")
    return np.ascontiguousarray(track[:limit], dtype=np.float32)
