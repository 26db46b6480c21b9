"""MLflow tracking of train, eval and run (optional: ``pip install 'mmcli[mlflow]'``).

On with ``--track`` or when ``MLFLOW_TRACKING_URI`` is set (``--no-track`` turns it off).
Everything logged is read from the finished stage directories, so what MLflow shows is what
the directories hold:

- params: the resolved config of each stage (``train.model``, ``train.params.C``...);
- metrics: train's accuracies and the chosen candidate's cross-validation score; eval's
  scores per split (``test_accuracy``, ``val_macro_f1``...);
- artifacts: each stage's ``meta.json``; train's ``leaderboard.csv`` (model auto) and
  ``train_log.jsonl``; eval's ``metrics.json``, ``report.md``, ``report.html`` and figures;
- tags: ``mmcli.version``, ``mmcli.command``, and per stage its fingerprint, its input hashes
  and (for ``mmcli run``) whether it ran or was up to date.

``mmcli run`` is one MLflow run for the whole pipeline (a nightly run is one entry), with every
stage logged under its name. Tracking never costs the work: when MLflow is unreachable or
fails, a warning says so and the command's outputs and exit code are what they would be
without it. mlflow is imported only here, only when tracking is on.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from mmcli.errors import UsageError

log = logging.getLogger(__name__)

#: scalar scores of each split in eval's metrics.json that become MLflow metrics
EVAL_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "roc_auc_macro",
                "average_precision_macro", "log_loss", "ece", "n")
#: files of a stage directory logged as artifacts (folders: every file in them)
ARTIFACTS = {"train": ("meta.json", "leaderboard.csv", "train_log.jsonl"),
             "eval": ("meta.json", "metrics.json", "report.md", "report.html", "figures")}
MAX_PARAM = 6000  # MLflow's limit on a param value (characters)


def wanted(track: bool | None) -> bool:
    """Whether to track: ``--track``/``--no-track``, else whether MLFLOW_TRACKING_URI is set."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) if track is None else track


class Tracker:
    """One MLflow run; every method is a no-op once tracking failed (after one warning)."""

    def __init__(self, name: str, command: str, track: bool | None):
        """``track``: the ``--track``/``--no-track`` flag (None: whether MLFLOW_TRACKING_URI is
        set). ``--track`` without mlflow installed is a usage error, raised here, before any
        work; the environment variable alone only warns."""
        self.name, self.command = name, command
        self.mlflow = None
        self.run = None
        if not wanted(track):
            return
        try:
            # a server that is down must fail in seconds, not after minutes of retries
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            import mlflow
        except ImportError:
            if track:
                raise UsageError("--track needs mlflow", "pip install 'mmcli[mlflow]'") from None
            log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed; not tracking "
                        "(pip install 'mmcli[mlflow]', or unset it)")
            return
        self.mlflow = mlflow

    def __enter__(self) -> Tracker:
        if self.mlflow is not None:
            import mmcli

            self._safely("start the run", lambda: setattr(self, "run", self.mlflow.start_run(
                run_name=self.name, tags={"mmcli.version": mmcli.__version__,
                                          "mmcli.command": self.command})))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.run is not None:
            status = "FINISHED" if exc_type is None else (
                "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
            self._safely("end the run", lambda: self.mlflow.end_run(status))

    def _safely(self, what: str, fn) -> None:
        if self.mlflow is None or (self.run is None and what != "start the run"):
            return
        try:
            fn()
        except Exception as exc:  # a server down, a bad URI, a full disk: never the run's end
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            log.warning("MLflow tracking failed (%s: %s); not tracking the rest of this "
                        "command, whose outputs are unaffected", what, first)
            if self.run is not None:
                try:
                    self.mlflow.end_run("FAILED")
                except Exception:  # already reported
                    pass
            self.mlflow = self.run = None

    def log_stage(self, directory: Path, action: str | None = None) -> None:
        """Log the finished stage directory ``directory`` (see the module notes)."""
        self._safely(f"log {directory}", lambda: self._log_stage(Path(directory), action))

    def _log_stage(self, directory: Path, action: str | None) -> None:
        meta = json.loads((directory / "meta.json").read_text("utf-8"))
        stage = meta["stage"]
        mlflow = self.mlflow
        mlflow.log_params({k: v for k, v in _flat(meta.get("config", {}), f"{stage}.")})
        tags = {f"{stage}.fingerprint": meta.get("fingerprint", ""),
                f"{stage}.inputs": json.dumps(meta.get("inputs", {}), sort_keys=True)[:5000],
                f"{stage}.dir": str(directory)}
        if action:
            tags[f"{stage}.action"] = action
        mlflow.set_tags(tags)
        summary = meta.get("summary", {})
        metrics = {}
        if stage == "train":
            for key in ("train_accuracy", "val_accuracy"):
                if isinstance(summary.get(key), (int, float)):
                    metrics[key] = summary[key]
            chosen = [r for r in (summary.get("selection") or {}).get("leaderboard", [])
                      if r.get("chosen")]
            if chosen:
                metrics["selection_cv_score"] = float(chosen[0]["cv_score"])
                mlflow.set_tag("train.selected", f"{chosen[0]['model']} {chosen[0]['params']}")
        if stage == "eval":
            scores = json.loads((directory / "metrics.json").read_text("utf-8"))
            for split, values in scores.items():
                if isinstance(values, dict):
                    metrics.update({_name(f"{split}_{k}"): float(values[k]) for k in EVAL_METRICS
                                    if isinstance(values.get(k), (int, float))})
        if metrics:
            mlflow.log_metrics(metrics)
        for name in ARTIFACTS.get(stage, ("meta.json",)):
            path = directory / name
            if path.is_dir():
                mlflow.log_artifacts(str(path), f"{stage}/{name}")
            elif path.is_file():
                mlflow.log_artifact(str(path), stage)


def _flat(value, prefix: str):
    """(key, text) pairs of a nested config: dicts by dotted keys, everything else as JSON."""
    if isinstance(value, dict) and value:
        for k, v in sorted(value.items()):
            yield from _flat(v, f"{prefix}{k}.")
        return
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    yield _name(prefix.rstrip(".")), text[:MAX_PARAM]


def _name(key: str) -> str:
    """An MLflow key: letters, digits and ``_-. /`` only."""
    return re.sub(r"[^\w\-. /]", "_", key)
