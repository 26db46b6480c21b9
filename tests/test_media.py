"""Decoding media: images of every mode, audio of every format, text normalisation."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmcli.media import MediaError, load_audio, load_image, normalize_text
from mmcli.testing.dummies import write_png, write_wav

# --- images -------------------------------------------------------------------------------


def solid(mode: str, colour, size=(8, 6)) -> Image.Image:
    return Image.new(mode, size, colour)


def mode_of(path) -> str:
    with Image.open(path) as im:
        return im.mode


def test_rgb(tmp_path):
    path = write_png(tmp_path / "a.png", (200, 40, 40), size=20, noise=0)
    arr = load_image(path, (10, 5))
    assert arr.shape == (5, 10, 3) and arr.dtype == np.uint8
    assert (arr == [200, 40, 40]).all()


def test_rgba_composited_on_white(tmp_path):
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (0, 0, 2, 4))  # left half opaque blue
    im.save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png", (4, 4))
    assert (arr[:, :2] == [0, 0, 255]).all()
    assert (arr[:, 2:] == [255, 255, 255]).all()  # fully transparent red shows white


def test_rgba_half_transparent(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 128)).save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png", (4, 4))
    assert np.all(np.abs(arr.astype(int) - 127) <= 2)


def test_la_composited(tmp_path):
    Image.new("LA", (4, 4), (0, 0)).save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png", (4, 4)) == 255).all()


def test_palette(tmp_path):
    solid("RGB", (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE).save(
        tmp_path / "a.png")
    assert mode_of(tmp_path / "a.png") == "P"
    arr = load_image(tmp_path / "a.png", (8, 6))
    assert np.all(np.abs(arr.astype(int) - [10, 200, 30]) <= 2)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 2, 4))
    im.info["transparency"] = 0
    im.save(tmp_path / "a.png", transparency=0)
    arr = load_image(tmp_path / "a.png", (4, 4))
    assert (arr[:, :2] == [0, 255, 0]).all()
    assert (arr[:, 2:] == [255, 255, 255]).all()


def test_grayscale(tmp_path):
    solid("L", 77).save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png", (3, 3))
    assert arr.shape == (3, 3, 3)
    assert (arr == 77).all()


def test_one_bit(tmp_path):
    Image.new("1", (4, 4), 1).save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png", (4, 4)) == 255).all()


def test_16_bit(tmp_path):
    data = np.zeros((4, 8), dtype=np.uint16)
    data[:, 4:] = 60000
    data[:, :4] = 1000
    Image.fromarray(data).save(tmp_path / "a.png")
    assert mode_of(tmp_path / "a.png").startswith("I")
    arr = load_image(tmp_path / "a.png", (8, 4))
    assert arr.shape == (4, 8, 3)
    assert (arr[:, :3] == 0).all()  # rescaled: minimum -> 0, maximum -> 255
    assert (arr[:, 5:] == 255).all()


def test_16_bit_constant(tmp_path):
    Image.fromarray(np.full((4, 4), 5000, dtype=np.uint16)).save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png", (4, 4)) == 0).all()


def test_float_tiff(tmp_path):
    data = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)
    Image.fromarray(data).save(tmp_path / "a.tif")
    arr = load_image(tmp_path / "a.tif", (4, 4))
    assert arr[0, 0, 0] == 0 and arr[3, 3, 0] == 255


def test_cmyk_jpeg(tmp_path):
    solid("RGB", (200, 40, 40), (16, 16)).convert("CMYK").save(tmp_path / "a.jpg", quality=95)
    assert mode_of(tmp_path / "a.jpg") == "CMYK"
    arr = load_image(tmp_path / "a.jpg", (8, 8))
    assert arr.shape == (8, 8, 3)
    assert np.all(np.abs(arr.astype(int) - [200, 40, 40]) <= 12)


def test_large_jpeg_is_reduced(tmp_path):
    im = Image.new("RGB", (400, 200), (0, 0, 255))
    im.paste((255, 255, 0), (0, 0, 200, 200))
    im.save(tmp_path / "a.jpg", quality=95)
    arr = load_image(tmp_path / "a.jpg", (8, 4)).astype(int)
    assert arr.shape == (4, 8, 3)
    assert np.all(np.abs(arr[:, 1] - [255, 255, 0]) <= 20)
    assert np.all(np.abs(arr[:, 6] - [0, 0, 255]) <= 20)


def test_exif_rotated_jpeg(tmp_path):
    # Stored landscape 40x20: left half red, right half blue. Orientation 6 means "rotate 90
    # degrees clockwise to display", so the displayed image is portrait 20x40 with red on top.
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "a.jpg", exif=exif, quality=95)
    arr = load_image(tmp_path / "a.jpg", (10, 20)).astype(int)  # (width, height): portrait
    assert arr.shape == (20, 10, 3)
    top, bottom = arr[2:8].reshape(-1, 3).mean(0), arr[12:18].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50, top
    assert bottom[2] > 200 and bottom[0] < 50, bottom


def test_gif_and_bmp(tmp_path):
    solid("RGB", (0, 255, 0)).save(tmp_path / "a.gif")
    solid("RGB", (0, 255, 0)).save(tmp_path / "a.bmp")
    for name in ("a.gif", "a.bmp"):
        assert (load_image(tmp_path / name, (4, 4)) == [0, 255, 0]).all()


def test_corrupt_image(tmp_path):
    write_png(tmp_path / "ok.png", (1, 2, 3), size=32)
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "bad.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cannot decode image"):
        load_image(tmp_path / "bad.png", (8, 8))


def test_text_named_png(tmp_path):
    (tmp_path / "a.png").write_text("I am not an image", encoding="utf-8")
    with pytest.raises(MediaError, match="cannot decode image"):
        load_image(tmp_path / "a.png", (8, 8))


def test_empty_file_image(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(MediaError):
        load_image(tmp_path / "a.png", (8, 8))


def test_missing_image(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        load_image(tmp_path / "nope.png", (8, 8))


def test_directory_image(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(MediaError, match="directory"):
        load_image(tmp_path / "d.png", (8, 8))


# --- audio --------------------------------------------------------------------------------


def sine(freq=440.0, seconds=0.5, rate=8000, channels=1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1) if channels > 1 else y


def test_mono_wav(tmp_path):
    path = write_wav(tmp_path / "a.wav", 440.0, seconds=0.5, rate=16000)
    y = load_audio(path, 16000, 30.0)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.shape == (8000,)
    assert 0.3 < np.abs(y).max() <= 1.0


def test_stereo_mixed_to_mono(tmp_path):
    left, right = sine(seconds=0.25, rate=8000), np.zeros(2000, dtype=np.float32)
    sf.write(tmp_path / "a.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    y = load_audio(tmp_path / "a.wav", 8000, 30.0)
    assert y.shape == (2000,)
    np.testing.assert_allclose(y, left / 2, atol=1e-6)


def test_stereo_dummy_wav(tmp_path):
    path = write_wav(tmp_path / "a.wav", 300.0, seconds=0.25, rate=8000, channels=2)
    mono = write_wav(tmp_path / "b.wav", 300.0, seconds=0.25, rate=8000, channels=1)
    np.testing.assert_allclose(load_audio(path, 8000, 30.0), load_audio(mono, 8000, 30.0))


def test_resample(tmp_path):
    path = write_wav(tmp_path / "a.wav", 440.0, seconds=0.5, rate=8000)
    y8 = load_audio(path, 8000, 30.0)
    y16 = load_audio(path, 16000, 30.0)
    assert y8.shape == (4000,)
    assert y16.shape == (8000,)
    assert y16.dtype == np.float32
    # the tone is kept: dominant frequency of the resampled signal is still 440 Hz
    spectrum = np.abs(np.fft.rfft(y16))
    assert abs(np.fft.rfftfreq(len(y16), 1 / 16000)[spectrum.argmax()] - 440) < 5


@pytest.mark.parametrize("fmt, ext", [("FLAC", "flac"), ("OGG", "ogg")])
def test_flac_and_ogg(tmp_path, fmt, ext):
    path = tmp_path / f"a.{ext}"
    sf.write(path, sine(seconds=0.5, rate=8000), 8000, format=fmt)
    y = load_audio(path, 8000, 30.0)
    assert y.dtype == np.float32
    assert abs(len(y) - 4000) <= 10
    assert 0.3 < np.abs(y).max() < 0.7


def test_float_wav(tmp_path):
    x = sine(seconds=0.1, rate=8000)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.wav", 8000, 30.0), x)


def test_24_bit_wav(tmp_path):
    x = sine(seconds=0.1, rate=8000)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="PCM_24")
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_24"
    np.testing.assert_allclose(load_audio(tmp_path / "a.wav", 8000, 30.0), x, atol=1e-6)


def test_zero_sample_wav(tmp_path):
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"")
    with pytest.raises(MediaError, match="no samples"):
        load_audio(tmp_path / "a.wav", 8000, 30.0)


@pytest.mark.filterwarnings("ignore")  # librosa warns when it falls back to audioread
def test_corrupt_audio(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage-garbage")
    with pytest.raises(MediaError, match="cannot decode audio"):
        load_audio(tmp_path / "a.wav", 8000, 30.0)


@pytest.mark.filterwarnings("ignore")
def test_text_named_wav(tmp_path):
    (tmp_path / "a.wav").write_text("hello, not audio", encoding="utf-8")
    with pytest.raises(MediaError, match="cannot decode audio"):
        load_audio(tmp_path / "a.wav", 8000, 30.0)


def test_nan_samples(tmp_path):
    x = sine(seconds=0.1, rate=8000)
    x[100] = np.nan
    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(MediaError, match="NaN"):
        load_audio(tmp_path / "a.wav", 8000, 30.0)


def test_inf_samples(tmp_path):
    x = sine(seconds=0.1, rate=8000)
    x[5] = np.inf
    sf.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(MediaError, match="infinite"):
        load_audio(tmp_path / "a.wav", 8000, 30.0)


def test_max_audio_seconds(tmp_path):
    path = write_wav(tmp_path / "a.wav", 440.0, seconds=1.0, rate=8000)
    assert load_audio(path, 8000, 0.25).shape == (2000,)
    assert load_audio(path, 16000, 0.25).shape == (4000,)
    assert load_audio(path, 8000, 5.0).shape == (8000,)


def test_missing_audio(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        load_audio(tmp_path / "nope.wav", 8000, 30.0)


def test_directory_audio(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(MediaError, match="directory"):
        load_audio(tmp_path / "d.wav", 8000, 30.0)


# --- text ---------------------------------------------------------------------------------


def test_normalize_whitespace_and_case():
    assert normalize_text("  Hello\t\tWORLD \n again ") == "hello world again"
    assert normalize_text("  Hello\t\tWORLD ", lowercase=False) == "Hello WORLD"


def test_normalize_nfkc():
    assert normalize_text("\uff21\uff22\uff23 \ufb01ne \u2460") == "abc fine 1"  # ＡＢＣ ﬁne ①
    assert normalize_text("cafe\u0301") == "caf\u00e9"  # combining accent composed
    assert normalize_text("a\u00a0b\u3000c") == "a b c"  # no-break and ideographic spaces


def test_normalize_keeps_non_latin_scripts():
    text = "Привет МИР 東京 مرحبا Ελλάδα"
    assert normalize_text(text) == "привет мир 東京 مرحبا ελλάδα"


def test_normalize_empty():
    assert normalize_text(" \n\t ") == ""


# --- limits and hostile files ---------------------------------------------------------------


def test_image_over_max_pixels_is_refused_before_decoding(tmp_path):
    from mmcli.testing.badinput import bomb_png

    (tmp_path / "bomb.png").write_bytes(bomb_png(100_000, 100_000))
    with pytest.raises(MediaError, match=r"too large \(100000x100000\): more than max_image_pix"):
        load_image(tmp_path / "bomb.png", (8, 8))
    # between 1x and 2x the limit Pillow only warns; mmcli still refuses, naming the size
    write_png(tmp_path / "a.png", (1, 2, 3), size=32)
    with pytest.raises(MediaError, match=r"image too large \(32x32\)"):
        load_image(tmp_path / "a.png", (8, 8), max_pixels=600)
    assert load_image(tmp_path / "a.png", (8, 8), max_pixels=32 * 32).shape == (8, 8, 3)


def test_animated_gif_gives_the_first_frame(tmp_path):
    frames = [solid("RGB", (255, 0, 0)), solid("RGB", (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    assert (load_image(tmp_path / "a.gif", (4, 4)) == [255, 0, 0]).all()


def test_fifo_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "a.png")
    with pytest.raises(MediaError, match="not a regular file"):
        load_image(tmp_path / "a.png", (8, 8))
    with pytest.raises(MediaError, match="not a regular file"):
        load_audio(tmp_path / "a.png", 8000)


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    """chmod does not stop root, so the refusal of the operating system is simulated."""
    import errno
    import os

    path = write_png(tmp_path / "a.png", (1, 2, 3))
    real_open = os.open

    def refuse(p, *args, **kwargs):
        if str(p) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(MediaError, match="permission denied"):
        load_image(path, (8, 8))


def test_long_audio_is_read_only_up_to_the_limit(tmp_path):
    import time
    import tracemalloc

    from mmcli.testing.badinput import write_long_wav

    path = write_long_wav(tmp_path / "a.wav", hours=2.0, rate=8000)  # 115 MB, sparse
    assert path.stat().st_size > 100_000_000
    tracemalloc.start()
    start = time.perf_counter()
    y = load_audio(path, 8000, 3.0)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert y.shape == (24000,)
    assert peak < 5_000_000 and seconds < 2.0  # reading 2 h would take 230 MB of float32
    with pytest.raises(MediaError, match="longer than max_audio_seconds = 3 s"):
        load_audio(path, 8000, 3.0, long_audio="fail")


def test_audio_exactly_at_the_limit_is_kept_whole_with_fail(tmp_path):
    path = write_wav(tmp_path / "a.wav", 440.0, seconds=1.0, rate=8000)
    assert load_audio(path, 8000, 1.0, long_audio="fail").shape == (8000,)
    with pytest.raises(MediaError, match="longer than"):
        load_audio(path, 8000, 0.5, long_audio="fail")


def test_wav_header_claiming_hours_with_a_short_body(tmp_path):
    from mmcli.testing.badinput import write_long_wav

    data = write_long_wav(tmp_path / "long.wav", hours=2.0).read_bytes()[:44]
    (tmp_path / "a.wav").write_bytes(data + b"\x10\x00" * 4000)
    assert load_audio(tmp_path / "a.wav", 8000, 30.0).shape == (4000,)


def test_text_limit_cut_and_fail():
    from mmcli.media import load_text

    assert load_text("  Hello   World ", max_chars=20) == "hello world"
    assert load_text("abc " * 100, max_chars=10) == "abc abc ab"
    assert load_text("abc " * 100, max_chars=8) == "abc abc"  # no trailing space
    with pytest.raises(MediaError, match="text of 399 characters, more than max_text_chars = 8"):
        load_text("abc " * 100, max_chars=8, long_text="fail")
    with pytest.raises(MediaError, match="empty text"):
        load_text(" \n\t ")


# --- property-based: arbitrary bytes never crash a loader ---------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
HEADERS = [b"", PNG, b"\xff\xd8\xff", b"GIF89a", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"BM",
           b"fLaC", b"OggS", b"II*\x00"]


def arbitrary_media():
    """Bytes, often starting with a real format's magic so that decoders get past it."""
    return st.tuples(st.sampled_from(HEADERS), st.binary(max_size=300)).map(lambda t: t[0] + t[1])


def mutated_valid_png():
    im = Image.new("RGB", (6, 5), (10, 200, 30))
    import io

    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    return st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255),
                     st.integers(1, len(data))).map(
        lambda t: (data[:t[0]] + bytes([t[1]]) + data[t[0] + 1:])[:t[2]])


# tmp_path is shared by the examples of one test: each example overwrites the same file
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.one_of(arbitrary_media(), mutated_valid_png()))
def test_load_image_on_arbitrary_bytes_raises_only_media_error(tmp_path, data):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    try:
        arr = load_image(path, (4, 3))
    except MediaError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert arr.shape == (3, 4, 3) and arr.dtype == np.uint8


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=arbitrary_media())
def test_load_audio_on_arbitrary_bytes_raises_only_media_error(tmp_path, data):
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    try:
        y = load_audio(path, 8000, 1.0)
    except MediaError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=200), limit=st.integers(1, 50))
def test_load_text_is_normalised_and_bounded(text, limit):
    from mmcli.media import load_text

    try:
        out = load_text(text, max_chars=limit)
    except MediaError as exc:
        assert str(exc) == "empty text"
        return
    assert 0 < len(out) <= limit
    assert out == out.strip() and "  " not in out


def test_large_jpegs_are_decoded_at_reduced_scale(tmp_path, monkeypatch):
    """A 1024x768 JPEG for a 224x224 target is decoded at 512x384 (DCT scaling), not in full:
    the draft request must not exceed what the target needs (it was 2x the target, which
    for 1024x768 allowed no reduction at all)."""
    from PIL import Image, JpegImagePlugin

    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (768, 1024, 3), dtype=np.uint8)
                    ).save(path, quality=90)
    decoded = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    assert load_image(path, (224, 224)).shape == (224, 224, 3)
    assert decoded == [(512, 384)]
    assert load_image(path, (600, 400)).shape == (400, 600, 3)  # 1/2 would be too small
    assert decoded[-1] == (1024, 768)
