"""Figures as PNG bytes: headless (matplotlib's Agg renderer, no pyplot state) and
deterministic (fixed size and dpi, no "Software" or date metadata), so the same inputs give the
same bytes.
"""

from __future__ import annotations

import io

import numpy as np

DPI = 100
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3,
         "figure.facecolor": "white", "savefig.facecolor": "white"}


def _figure(ncols: int = 1, width: float = 5.0, height: float = 4.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=DPI)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _styled(draw):
    """Run a drawing function under the report's style and return the PNG bytes."""
    import matplotlib

    def wrapper(*args, **kwargs) -> bytes:
        with matplotlib.rc_context(STYLE):
            return _png(draw(*args, **kwargs))

    wrapper.__doc__, wrapper.__name__ = draw.__doc__, draw.__name__
    return wrapper


@_styled
def confusion_matrix(labels: list[str], matrix: list[list[int]], title: str):
    """Counts with rows true and columns predicted, shaded by the row's share."""
    m = np.asarray(matrix, dtype=np.float64)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(labels)
    fig, (ax,) = _figure(width=max(4.0, size + 1.0), height=max(3.5, size))
    ax.grid(False)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def _curves(y_true, proba, classes, kind: str):
    from sklearn.metrics import precision_recall_curve, roc_curve

    from mmcli.report.metrics import one_hot

    truth = one_hot(y_true, classes)
    for k, c in enumerate(classes):
        pos = truth[:, k].sum()
        if kind == "roc" and 0 < pos < len(y_true):
            x, y, _ = roc_curve(truth[:, k], proba[:, k])
            yield c, x, y
        elif kind == "pr" and pos > 0:
            p, r, _ = precision_recall_curve(truth[:, k], proba[:, k])
            yield c, r, p


@_styled
def roc_curves(y_true: list[str], proba: np.ndarray, classes: list[str], auc: dict, title: str):
    """One-vs-rest ROC curve per class (classes absent from the split are left out)."""
    fig, (ax,) = _figure()
    drawn = 0
    for c, x, y in _curves(y_true, proba, classes, "roc"):
        ax.plot(x, y, label=f"{c} (AUC {auc[c]:.3f})", drawstyle="steps-post")
        drawn += 1
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
           xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    else:  # a split of one class has no negatives for any one-vs-rest curve
        ax.text(0.5, 0.5, "no ROC curve: every item of the split has the same label",
                ha="center", va="center", fontsize=8)
    return fig


@_styled
def pr_curves(y_true: list[str], proba: np.ndarray, classes: list[str], ap: dict, title: str):
    """Precision-recall curve per class (one-vs-rest)."""
    fig, (ax,) = _figure()
    for c, r, p in _curves(y_true, proba, classes, "pr"):
        ax.plot(r, p, label=f"{c} (AP {ap[c]:.3f})", drawstyle="steps-post")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(-0.02, 1.02),
           ylim=(-0.02, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return fig


@_styled
def calibration(runs: list[tuple[str, np.ndarray, np.ndarray, float]], title: str):
    """Reliability diagram: accuracy per confidence bin against the diagonal, one line per
    (name, confidence, correct, ece) run, and the confidence histogram below."""
    from matplotlib.figure import Figure

    from mmcli.report.metrics import calibration_bins

    fig = Figure(figsize=(5.0, 5.2), dpi=DPI)
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    for name, confidence, correct, ece in runs:
        b = calibration_bins(confidence, correct)
        used = b["count"] > 0
        ax.plot(b["confidence"][used], b["accuracy"][used], marker="o", markersize=4,
                label=f"{name} (ECE {ece:.3f})")
        centres = (b["edges"][:-1] + b["edges"][1:]) / 2
        hist.step(centres, b["count"], where="mid")
    ax.set(ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    hist.set(xlabel="confidence (top-class probability)", ylabel="items")
    return fig


@_styled
def training_curves(log: list[dict], title: str):
    """Loss per epoch (train and val) and validation accuracy, best epoch marked."""
    fig, (loss, acc) = _figure(ncols=2, width=4.5, height=3.5)
    epochs = [r.get("epoch", k + 1) for k, r in enumerate(log)]
    for key in ("train_loss", "val_loss"):
        if any(key in r for r in log):
            loss.plot(epochs, [r.get(key, np.nan) for r in log], label=key.replace("_", " "))
    acc.plot(epochs, [r.get("val_accuracy", np.nan) for r in log], label="val accuracy",
             color="C2")
    best = [e for e, r in zip(epochs, log) if r.get("best")]
    for ax in (loss, acc):
        if best:
            ax.axvline(best[-1], color="grey", linestyle=":", linewidth=1, label="best epoch")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    loss.set(ylabel="loss", title=title)
    acc.set(ylabel="accuracy", title="validation accuracy")
    return fig


@_styled
def modality_ablation(runs: list[tuple[str, dict]], title: str):
    """Test accuracy with all modalities and with each one removed; one bar group per run."""
    columns = list(dict.fromkeys(c for _, a in runs for c in a["removed"]))
    groups = ["all", *(f"without {c}" for c in columns)]
    fig, (ax,) = _figure(width=max(5.0, 1.3 * len(groups) + 1.5), height=3.8)
    width = 0.8 / len(runs)
    x = np.arange(len(groups))
    for k, (name, a) in enumerate(runs):
        values = [a["clean"], *(a["removed"].get(c, np.nan) for c in columns)]
        bars = ax.bar(x + (k - (len(runs) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, groups)
    ax.set(ylabel="test accuracy", ylim=(0, 1.08), title=title)
    if len(runs) > 1:
        ax.legend(fontsize=8)
    return fig


@_styled
def robustness_curves(runs: list[tuple[str, dict]], title: str):
    """Accuracy against noise severity: one panel per modality column, a line per perturbation
    (and per run when comparing)."""
    columns = list(dict.fromkeys(c["column"] for _, curves in runs for c in curves.values()))
    fig, axes = _figure(ncols=len(columns), width=3.8, height=3.4)
    styles = ["-", "--", "-.", ":"]
    for ax, col in zip(axes, columns):
        for r, (name, curves) in enumerate(runs):
            for p, c in enumerate(v for v in curves.values() if v["column"] == col):
                label = c["perturbation"] if len(runs) == 1 else f"{name}: {c['perturbation']}"
                color = f"C{r}" if len(runs) > 1 else f"C{p}"
                ax.plot(c["levels"], c["accuracy"], marker="o", markersize=3, label=label,
                        color=color, linestyle=styles[p % len(styles)] if len(runs) > 1 else "-")
                ci = (c.get("ci") or {}).get("accuracy")
                if ci:  # the bootstrap interval of each point
                    ax.fill_between(c["levels"], [v[0] for v in ci], [v[1] for v in ci],
                                    color=color, alpha=0.15, linewidth=0)
        ax.set(xlabel="severity s", ylabel="test accuracy", ylim=(0, 1.02), title=col)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


@_styled
def comparison_bars(rows: list[tuple[str, dict]], title: str):
    """Test accuracy, balanced accuracy and macro F1 per model with bootstrap intervals."""
    keys = ["accuracy", "balanced_accuracy", "macro_f1"]
    fig, (ax,) = _figure(width=max(5.0, 1.6 * len(rows) + 2), height=3.8)
    width = 0.8 / len(keys)
    x = np.arange(len(rows))
    for k, key in enumerate(keys):
        values = np.array([m[key] for _, m in rows])
        ci = [m.get("ci", {}).get(key) for _, m in rows]
        err = np.array([[v - c[0], c[1] - v] if c else [0, 0] for v, c in zip(values, ci)]).T
        ax.bar(x + (k - 1) * width, values, width, yerr=err, capsize=3,
               label=key.replace("_", " "))
    ax.set_xticks(x, [name for name, _ in rows])
    ax.set(ylabel="test score", ylim=(0, 1.22), title=title)
    ax.legend(fontsize=8, loc="upper center", ncols=3)
    return fig


@_styled
def roc_overlay(runs: list[tuple[str, list[str], np.ndarray, list[str], float | None]],
                title: str):
    """Micro-averaged one-vs-rest ROC curve per model (all classes' scores pooled)."""
    from sklearn.metrics import roc_curve

    from mmcli.report.metrics import one_hot

    fig, (ax,) = _figure()
    for name, y_true, proba, classes, auc in runs:
        truth = one_hot(y_true, classes).ravel()
        if 0 < truth.sum() < truth.size:
            x, y, _ = roc_curve(truth, np.asarray(proba).ravel())
            label = f"{name} (macro AUC {auc:.3f})" if auc is not None else name
            ax.plot(x, y, label=label, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
           xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    return fig
