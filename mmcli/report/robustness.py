"""Robustness on the test split, as MultiBench measures it (Liang et al., NeurIPS 2021).

* Modality ablation: accuracy with one modality's feature block replaced by its train mean
  (which the fusion's normalisation maps to zero), run through the fitted fusion and model; a
  ``tokens`` block (word ids) is replaced by padding (no text) instead.
* Noise: the *preprocessed* test data of one modality is corrupted at increasing severities
  ``s`` in [0, 1], then the fitted extractors, fusion and model run on it; the other modalities
  stay clean. Per modality kind:

  ============  ===============  ====================================================
  kind          perturbation     at severity s
  ============  ===============  ====================================================
  image         gaussian_noise   additive Gaussian noise, std 128·s grey levels
  image         blur             Gaussian blur, sigma s·width/16 pixels
  audio         white_noise      white noise at SNR 30 - 40·s dB (s = 0: none)
  text          word_drop        each word dropped with probability s
  numeric       gaussian_noise   additive Gaussian noise, std s (scaled units)
  categorical   swap             value replaced with probability s by a random test value
  ============  ===============  ====================================================

  Relative robustness of a curve: the area under accuracy-vs-severity (trapezoids), divided by
  the area of the flat curve at clean accuracy: 1.0 means no loss at any level, 0.5 on average
  half the clean accuracy lost. ``auc`` is the plain area (MultiBench's relative robustness
  when severities span [0, 1]).

Every corruption draws from its own seeded generator, so results do not depend on order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.dataset import AudioClips, PreprocessedData
from mmcli.progress import ProgressFactory, silent

PERTURBATIONS = {
    "image": ("gaussian_noise", "blur"),
    "audio": ("white_noise",),
    "text": ("word_drop",),
    "numeric": ("gaussian_noise",),
    "categorical": ("swap",),
}
DESCRIBE = {
    ("image", "gaussian_noise"): "Gaussian noise, std 128·s grey levels",
    ("image", "blur"): "Gaussian blur, sigma s·width/16 px",
    ("audio", "white_noise"): "white noise, SNR 30 - 40·s dB",
    ("text", "word_drop"): "each word dropped with probability s",
    ("numeric", "gaussian_noise"): "Gaussian noise, std s (scaled units)",
    ("categorical", "swap"): "value swapped with probability s",
}


@dataclass
class Fitted:
    """The fitted pipeline of a model directory: preprocess state, extractors, fusion, model."""

    pstate: object
    plan: dict
    fusion: object
    columns: list[str]
    model: object
    classes: list[str]

    @classmethod
    def load(cls, model_path: Path) -> Fitted:
        from mmcli.models import load_model
        from mmcli.stages.extract import load_plan
        from mmcli.stages.fuse import load_fusion
        from mmcli.stages.preprocess import PreprocessState

        state = model_path / "state"
        fusion, columns = load_fusion(state)
        model, classes = load_model(state / "model")
        return cls(PreprocessState.load(state), load_plan(state / "extract"), fusion, columns,
                   model, classes)

    def accuracy(self, blocks: list[np.ndarray], labels: list[str],
                 mask: np.ndarray | None = None) -> float:
        """Accuracy of the fitted fusion and model on ``blocks`` (``mask``: presence)."""
        from mmcli.missing import predict_proba
        from mmcli.stages.fuse import fuse_rows

        proba = predict_proba(self.model, fuse_rows(self.fusion, blocks, mask), mask)
        return float(np.mean([self.classes[k] == t for k, t in zip(proba.argmax(1), labels)]))


def relative_robustness(levels: list[float], accuracy: list[float]) -> tuple[float, float | None]:
    """(area under accuracy-vs-severity, that area / (severity span · clean accuracy))."""
    s, a = np.asarray(levels, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    auc = float(((a[1:] + a[:-1]) / 2 * np.diff(s)).sum())
    span = float(s[-1] - s[0])
    return auc, (auc / (span * a[0]) if span > 0 and a[0] > 0 else None)


def modality_ablation(fitted: Fitted, feat_path: Path, items: list[dict]) -> dict:
    """Test accuracy with each modality's block replaced by its train mean and marked
    absent in the presence mask (real missing cells of the test items stay missing)."""
    from mmcli.missing import presence

    test = np.array([k for k, it in enumerate(items) if it["split"] == "test"], dtype=int)
    mask = presence([items[k] for k in test], fitted.columns)
    train = np.array([k for k, it in enumerate(items) if it["split"] == "train"], dtype=int)
    labels = [items[k]["label"] for k in test]
    blocks = [np.asarray(artifacts.load_npy(feat_path / "features" / f"{c}.npy"))
              for c in fitted.columns]
    clean = [b[test] for b in blocks]
    out = {"clean": fitted.accuracy(clean, labels, mask), "removed": {}}
    for k, col in enumerate(fitted.columns):
        replaced = list(clean)
        without = mask.copy()
        without[:, k] = False
        if _is_tokens(fitted.plan[col]):  # the mean of ids is no text: all padding is
            replaced[k] = np.zeros_like(clean[k])
            out["removed"][col] = fitted.accuracy(replaced, labels, without)
            continue
        replaced[k] = np.broadcast_to(blocks[k][train].mean(0, dtype=np.float64),
                                      clean[k].shape).astype(np.float32)
        out["removed"][col] = fitted.accuracy(replaced, labels, without)
    return out


def _is_tokens(extractors: list) -> bool:
    return len(extractors) == 1 and (extractors[0].structure() or {}).get("layout") == "tokens"


def perturb(kind: str, name: str, data, severity: float, rng: np.random.Generator):
    """A corrupted copy of one batch of preprocessed values (see the module docstring)."""
    s = float(severity)
    if s == 0:
        return data
    if kind == "image" and name == "gaussian_noise":
        noisy = data.astype(np.float32) + rng.normal(0, 128 * s, data.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if kind == "image" and name == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = s * data.shape[2] / 16
        blurred = gaussian_filter(data.astype(np.float32), sigma=(0, sigma, sigma, 0))
        return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    if kind == "audio":
        snr_db = 30 - 40 * s
        clips = []
        for clip in data.clips:
            power = float(np.mean(clip.astype(np.float64) ** 2)) if clip.size else 0.0
            std = np.sqrt(power / 10 ** (snr_db / 10))
            clips.append((clip + rng.normal(0, std, clip.shape)).astype(np.float32))
        return AudioClips(clips, data.sample_rate)
    if kind == "text":
        return [" ".join(w for w, keep in zip(t.split(), rng.random(len(t.split())) >= s)
                         if keep) for t in data]
    if kind == "numeric":
        return (data + rng.normal(0, s, data.shape)).astype(np.float32)
    if kind == "categorical":
        pool = sorted(set(data))
        return [pool[int(rng.integers(len(pool)))] if rng.random() < s else v for v in data]
    raise ValueError(f"no perturbation {name!r} for {kind}")


def noise_robustness(fitted: Fitted, pre_path: Path, levels: list[float], seed: int,
                     progress: ProgressFactory = silent, max_items: int = 0) -> dict:
    """Test accuracy per modality, perturbation and severity; see the module docstring.

    With ``max_items`` > 0, a larger test split is subsampled (seeded) to that many items.
    Only the test items with every modality present are perturbed (mmcli.missing).
    """
    data = PreprocessedData(pre_path, fitted.pstate.columns, fitted.pstate.sample_rate)
    test = np.array([k for k, it in enumerate(data.items) if it["split"] == "test"
                     and not any(c in fitted.columns for c in it.get("missing", ()))], dtype=int)
    if 0 < max_items < test.size:
        test = np.sort(np.random.default_rng([seed, len(test)]).choice(test, max_items,
                                                                        replace=False))
    labels = [data.items[k]["label"] for k in test]

    def features(col: str, values) -> np.ndarray:
        return np.hstack([e.transform(values) for e in fitted.plan[col]]).astype(np.float32)

    raw = {col: data.column(col, test) for col in fitted.columns}
    clean = [features(col, raw[col]) for col in fitted.columns]
    clean_accuracy = fitted.accuracy(clean, labels)
    kinds = {col: fitted.pstate.columns[col] for col in fitted.columns}
    curves = {}
    total = sum(len(PERTURBATIONS[kinds[c]]) for c in fitted.columns) * (len(levels) - 1)
    with progress("eval: robustness", total) as bar:
        for k, col in enumerate(fitted.columns):
            for p, name in enumerate(PERTURBATIONS[kinds[col]]):
                accuracy = []
                for j, level in enumerate(levels):
                    if level == 0:
                        accuracy.append(clean_accuracy)
                        continue
                    rng = np.random.default_rng([seed, k, p, j])
                    blocks = list(clean)
                    blocks[k] = features(col, perturb(kinds[col], name, raw[col], level, rng))
                    accuracy.append(fitted.accuracy(blocks, labels))
                    bar.advance()
                auc, relative = relative_robustness(levels, accuracy)
                curves[f"{col}/{name}"] = {
                    "column": col, "kind": kinds[col], "perturbation": name,
                    "severity": DESCRIBE[(kinds[col], name)], "n": int(test.size),
                    "levels": list(levels),
                    "accuracy": accuracy, "auc": auc, "relative_robustness": relative}
    return curves


def check_levels(levels) -> list[float]:
    """Severity levels must be increasing numbers in [0, 1] starting at 0."""
    from mmcli.errors import UsageError

    ok = (isinstance(levels, list) and len(levels) >= 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels))
    if ok:
        ok = levels[0] == 0 and all(0 <= a < b <= 1 for a, b in zip(levels, levels[1:]))
    if not ok:
        raise UsageError(f"config 'eval.noise_levels' is {levels!r}",
                         "give increasing severities in [0, 1] starting at 0, e.g. "
                         "[0, 0.25, 0.5, 0.75, 1]")
    return [float(v) for v in levels]
