"""The one training loop shared by every torch model, and the base class those models extend.

A torch model only says which network to build (:meth:`TorchModel._network`); this module does
the rest: losses (cross-entropy, focal, MSE), optimizers (SGD, Adam, AdamW) with a learning-rate
schedule, initialisation, L1 and L2 penalties, gradient clipping, class weights and
over/under-sampling, augmentation of feature vectors (Gaussian noise and *modality dropout*,
which zeroes a whole modality block so the model survives a missing modality at predict time)
and of structured blocks (image, audio-frame and token augmentations, :mod:`.augment`),
several tasks trained together, early stopping on the validation split with best-checkpoint
restore, a per-epoch log and a per-epoch callback (the stage's progress bar).

Tasks: a model predicts one or more targets from the same trunk. Each task is a dict
``{"name", "kind": "classification" | "regression", "n_classes", "weight"}``; the network's
last layer has one output slice (one linear head) per task: ``n_classes`` logits for a
classification task, one value for a regression task. Targets are an ``(n, n_tasks)`` float
array; a missing target is NaN (regression) or -1 (classification) and adds no loss.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.blocks import Blocks
from mmcli.errors import DataError, UsageError
from mmcli.models.base import Model, resolve_device

LOSSES = ("cross_entropy", "focal")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("none", "cosine", "step")
INITS = ("default", "xavier", "kaiming")
SAMPLING = ("none", "over", "under")


@dataclasses.dataclass
class TrainParams:
    """Training controls common to every torch model (``train.params`` in the config)."""

    dropout: float = 0.3
    lr: float = 1e-3
    #: L2 penalty (decoupled for adamw, added to the gradient for adam and sgd)
    weight_decay: float = 1e-3
    #: L1 penalty on the weights, added to the loss
    l1: float = 0.0
    epochs: int = 200
    batch_size: int = 64
    #: epochs without a better validation loss before stopping (needs a val split)
    patience: int = 20
    #: null or balanced (loss weighted by inverse class frequency)
    class_weight: str | None = None
    #: cross_entropy or focal (classification tasks; regression tasks always use MSE)
    loss: str = "cross_entropy"
    focal_gamma: float = 2.0
    optimizer: str = "adamw"
    momentum: float = 0.9
    #: none, cosine (to 0 over ``epochs``) or step (times ``lr_gamma`` every ``lr_step`` epochs)
    schedule: str = "none"
    lr_step: int = 30
    lr_gamma: float = 0.1
    #: default (torch's), xavier or kaiming for the linear layers
    init: str = "default"
    #: clip the gradient norm to this value; 0 disables
    clip_grad: float = 0.0
    #: standard deviation of Gaussian noise added to the features while training
    noise: float = 0.0
    #: probability of zeroing each modality block of a training row (needs a concat fuse)
    modality_dropout: float = 0.0
    #: none, over (repeat rare classes) or under (drop frequent ones) per epoch, first task
    sampling: str = "none"
    #: task name -> loss weight (default 1.0 each)
    task_weights: dict = dataclasses.field(default_factory=dict)
    #: on-the-fly augmentation of structured blocks while training, e.g. {flip: 0.5,
    #: gain_db: 6, token_drop: 0.1} (see mmcli.models.augment); empty: off
    augment: dict = dataclasses.field(default_factory=dict)


def check_params(p: TrainParams, name: str) -> None:
    for key, allowed in (("loss", LOSSES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                         ("init", INITS), ("sampling", SAMPLING),
                         ("class_weight", (None, "balanced"))):
        if getattr(p, key) not in allowed:
            raise UsageError(
                f"the {key!r} parameter of model {name!r} must be one of "
                f"{', '.join(str(a) for a in allowed)}; got {getattr(p, key)!r} instead",
                f"fix train.params.{key} in the config")
    for key in ("dropout", "modality_dropout"):
        if not 0.0 <= getattr(p, key) < 1.0:
            raise UsageError(f"the {key!r} parameter of model {name!r} must be in [0, 1); got "
                             f"{getattr(p, key)!r} instead", f"fix train.params.{key}")
    from mmcli.models.augment import parse_augment

    parse_augment(p.augment, name)
    for key in ("epochs", "batch_size"):
        if getattr(p, key) < 1:
            raise UsageError(f"the {key!r} parameter of model {name!r} must be >= 1; got "
                             f"{getattr(p, key)!r} instead", f"fix train.params.{key}")


def single_task(n_classes: int) -> list[dict]:
    return [{"name": "label", "kind": "classification", "n_classes": int(n_classes),
             "weight": 1.0}]


def task_width(task: dict) -> int:
    return int(task["n_classes"]) if task["kind"] == "classification" else 1


class TorchModel(Model):
    """Base of the torch models: subclasses define ``Params`` (extending :class:`TrainParams`)
    and ``_network(n_features, n_outputs)``, which reads ``self.blocks_`` (the
    :class:`~mmcli.blocks.Blocks` given to ``fit``) and ``self.tasks_``."""

    #: True when the network needs the modality blocks (a concat fuse directory)
    needs_blocks = False
    supports_tasks = True

    @dataclasses.dataclass
    class Params(TrainParams):
        pass

    def __init__(self, seed: int = 0, device: str = "auto", **params):
        super().__init__(seed, device, **params)
        check_params(self.params, self.name)

    # --- the contract -------------------------------------------------------------------------
    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None, **masks):
        # masks: presence, presence_val for the models that use them (mmcli.missing)
        y = np.asarray(y, dtype=np.float64)[:, None]
        yv = None if y_val is None else np.asarray(y_val, dtype=np.float64)[:, None]
        return self.fit_tasks(X, y, single_task(n_classes), X_val, yv, blocks=blocks, **masks)

    def predict_proba(self, X, **masks):
        out = self.predict_tasks(X, **masks)
        first = next(t for t in self.tasks_ if t["kind"] == "classification")
        return out[first["name"]]

    def fit_tasks(self, X, Y, tasks: list[dict], X_val=None, Y_val=None, *,
                  blocks=None) -> TorchModel:
        """Train on ``Y`` (n, n_tasks): class indices or values per task (see module doc);
        ``blocks`` as for :meth:`~mmcli.models.base.Model.fit`."""
        self._use_blocks(blocks)
        self.tasks_ = [dict(t) for t in tasks]
        for t in self.tasks_:
            t["weight"] = float(self.params.task_weights.get(t["name"], t.get("weight", 1.0)))
        unknown = set(self.params.task_weights) - {t["name"] for t in tasks}
        if unknown:
            raise UsageError(f"task_weights names unknown task(s) {sorted(unknown)}",
                             f"the tasks are: {', '.join(t['name'] for t in tasks)}")
        self.n_features_ = int(X.shape[1])
        self._check_blocks()
        train_loop(self, np.asarray(X, dtype=np.float32), np.asarray(Y, dtype=np.float64),
                   None if X_val is None or len(X_val) == 0 else
                   (np.asarray(X_val, dtype=np.float32), np.asarray(Y_val, dtype=np.float64)))
        return self

    def predict_tasks(self, X) -> dict[str, np.ndarray]:
        """Per task: (n, n_classes) probabilities or (n,) predicted values."""
        import torch

        with torch.no_grad():
            out = self.net_(torch.as_tensor(np.array(X, dtype=np.float32)))
        result = {}
        for t, part in zip(self.tasks_, split_outputs(out, self.tasks_)):
            if t["kind"] == "classification":
                result[t["name"]] = torch.softmax(part, dim=1).numpy().astype(np.float64)
            else:
                result[t["name"]] = part[:, 0].numpy().astype(np.float64)
        return result

    def _check_blocks(self) -> None:
        if self.blocks_ is None:
            if self.params.modality_dropout > 0:
                raise UsageError(
                    "modality_dropout needs the modality blocks of a concat fusion",
                    "fuse with `mmcli fuse --method concat` (the default) and train on that")
            return
        # the fusion's missing indicators (one per block) may follow the blocks
        if self.n_features_ not in (self.blocks_.width, self.blocks_.width + len(self.blocks_)):
            raise DataError(f"the modality blocks cover {self.blocks_.width} features but the "
                            f"data has {self.n_features_}", "re-run mmcli fuse")

    def _network(self, n_features: int, n_outputs: int):
        raise NotImplementedError

    # --- state --------------------------------------------------------------------------------
    def get_state(self):
        arrays = {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        fitted = {"n_features": self.n_features_, "n_classes": self.n_classes_,
                  "best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_,
                  "tasks": self.tasks_,
                  "blocks": None if self.blocks_ is None else self.blocks_.ranges}
        if self.blocks_ is not None and self.blocks_.layouts is not None:
            fitted["layouts"] = self.blocks_.layouts
        return fitted, arrays

    def _load(self, fitted, arrays):
        import torch

        self.n_features_, self.n_classes_ = int(fitted["n_features"]), int(fitted["n_classes"])
        self.best_epoch_ = fitted.get("best_epoch")
        self.epochs_run_ = fitted.get("epochs_run")
        self.tasks_ = fitted.get("tasks") or single_task(self.n_classes_)
        blocks = fitted.get("blocks")
        self.blocks_ = Blocks.from_ranges(blocks, fitted.get("layouts")) if blocks else None
        net = self._network(self.n_features_, sum(task_width(t) for t in self.tasks_))
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.net_ = net.eval()


def split_outputs(out, tasks: list[dict]) -> list:
    parts, start = [], 0
    for t in tasks:
        parts.append(out[:, start:start + task_width(t)])
        start += task_width(t)
    return parts


def _init_weights(net, how: str) -> None:
    import torch.nn as nn

    if how == "default":
        return
    for m in net.modules():
        if isinstance(m, nn.Linear):
            if how == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _class_weights(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y[y >= 0].astype(np.int64), minlength=k).astype(np.float64)
    n = counts.sum()
    return np.where(counts > 0, n / (k * np.maximum(counts, 1)), 0.0)


def _epoch_rows(rng: np.random.Generator, y: np.ndarray | None, sampling: str,
                n: int) -> np.ndarray:
    """Row order of one epoch; over/under-sampling balances the first classification task."""
    if sampling == "none" or y is None:
        return rng.permutation(n)
    known = y >= 0
    classes = np.unique(y[known])
    by_class = [np.flatnonzero(y == c) for c in classes]
    target = (max if sampling == "over" else min)(len(r) for r in by_class)
    rows = [rng.choice(r, target, replace=len(r) < target) for r in by_class]
    rows.append(np.flatnonzero(~known))
    return rng.permutation(np.concatenate(rows))


def train_loop(model: TorchModel, X: np.ndarray, Y: np.ndarray,
               val: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Fit ``model`` (sets ``net_``, ``log_``, ``best_epoch_``, ``epochs_run_``, ``n_classes_``)."""
    import torch

    p, tasks = model.params, model.tasks_
    device = resolve_device(model.device)
    torch.manual_seed(model.seed)
    rng = np.random.default_rng(model.seed)
    cls_tasks = [k for k, t in enumerate(tasks) if t["kind"] == "classification"]
    model.n_classes_ = int(tasks[cls_tasks[0]]["n_classes"]) if cls_tasks else 0
    if not cls_tasks and p.sampling != "none":
        raise UsageError("sampling needs a classification task", "set sampling: none")
    net = model._network(X.shape[1], sum(task_width(t) for t in tasks))
    _init_weights(net, p.init)
    net = net.to(device)
    loss_of = _loss_function(tasks, _class_weights_of(Y, tasks, cls_tasks, p, device), p)
    opt, sched = _optimizer(list(net.parameters()), p)
    batch = _BatchMaker(model, X, device)
    Yt = torch.as_tensor(Y, device=device)
    if val is not None:
        val = (torch.as_tensor(val[0], device=device), torch.as_tensor(val[1], device=device))
    first_y = Y[:, cls_tasks[0]] if cls_tasks else None
    stopper = _EarlyStopping(p.patience)
    model.log_ = []
    for epoch in range(1, p.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        order = _epoch_rows(rng, first_y, p.sampling, len(X))
        train_loss = _train_epoch(net, opt, loss_of, batch, Yt, order, rng, p)
        if sched is not None:
            sched.step()
        record = {"epoch": epoch, "train_loss": train_loss, "lr": lr}
        if val is not None:
            record.update(_validate(net, loss_of, val, tasks, cls_tasks))
            stopper.update(net, record)
        model.log_.append(record)
        if model.on_epoch is not None:
            model.on_epoch(record)
        if val is not None and stopper.stop:
            break
    stopper.restore(net)
    model.best_epoch_ = max((r["epoch"] for r in model.log_ if r.get("best")),
                            default=len(model.log_))
    model.epochs_run_ = len(model.log_)
    model.net_ = net.cpu().eval()


def _class_weights_of(Y: np.ndarray, tasks: list[dict], cls_tasks: list[int], p,
                      device) -> dict:
    """Per classification task index, its balanced class weights (class_weight: balanced)."""
    import torch

    if p.class_weight != "balanced":
        return {}
    return {k: torch.tensor(_class_weights(Y[:, k], tasks[k]["n_classes"]),
                            dtype=torch.float32, device=device) for k in cls_tasks}


def _loss_function(tasks: list[dict], weights: dict, p):
    """The weighted sum over tasks of cross-entropy / focal (classification) and MSE
    (regression) losses; targets that are missing (-1, NaN) add nothing."""
    import torch
    import torch.nn.functional as F

    def loss_of(out, Yb):
        total = out.new_zeros(())
        for k, (t, part) in enumerate(zip(tasks, split_outputs(out, tasks))):
            target = Yb[:, k]
            if t["kind"] == "classification":
                mask = target >= 0
                if not bool(mask.any()):
                    continue
                logits, tgt = part[mask], target[mask].long()
                ce = F.cross_entropy(logits, tgt, weight=weights.get(k), reduction="none")
                if p.loss == "focal":
                    pt = torch.softmax(logits, 1).gather(1, tgt[:, None])[:, 0]
                    ce = (1 - pt).clamp(min=0) ** p.focal_gamma * ce
                term = ce.sum() / weights[k][tgt].sum() if k in weights else ce.mean()
            else:
                mask = ~torch.isnan(target)
                if not bool(mask.any()):
                    continue
                term = F.mse_loss(part[mask, 0], target[mask].float())
            total = total + t["weight"] * term
        return total

    return loss_of


def _optimizer(params: list, p):
    """The optimizer and learning-rate schedule (None for a constant rate) of ``p``."""
    import torch

    if p.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
    elif p.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=p.lr, weight_decay=p.weight_decay)
    sched = None
    if p.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs)
    elif p.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=p.lr_step, gamma=p.lr_gamma)
    return opt, sched


class _BatchMaker:
    """A training batch of rows: augmentation of structured blocks, Gaussian noise and
    modality dropout, in that order (each draws from the loop's ``rng``)."""

    def __init__(self, model: TorchModel, X: np.ndarray, device):
        import torch

        from mmcli.models.augment import Augmenter, parse_augment

        blocks = model.blocks_
        self.p, self.device = model.params, device
        self.X = torch.as_tensor(X, device=device)
        self.ranges = blocks.ranges if blocks is not None else []
        self.augmenter = Augmenter(parse_augment(self.p.augment, model.name), self.ranges,
                                   blocks.layouts if blocks is not None else None,
                                   blocks.norms if blocks is not None else None, device)
        # Gaussian feature noise would turn token ids into other ids: token blocks get none;
        # the presence mask columns of a model that uses them (after the blocks) neither
        self.noise_mask = np.ones(X.shape[1], dtype=np.float32)
        for block in blocks or []:
            if block.layout == "tokens":
                self.noise_mask[block.start:block.stop] = 0.0
        self.mask_at = (blocks.width if blocks and getattr(model, "uses_presence", False)
                        else None)
        if self.mask_at is not None:
            self.noise_mask[self.mask_at:] = 0.0

    def __call__(self, idx, rng: np.random.Generator):
        import torch

        p, xb = self.p, self.X[idx]
        if self.augmenter.active:
            xb = self.augmenter(xb, rng)
        if p.noise > 0:
            noise = rng.standard_normal(xb.shape).astype(np.float32) * p.noise * self.noise_mask
            xb = xb + torch.as_tensor(noise, device=self.device)
        if p.modality_dropout > 0 and len(self.ranges) > 1:
            drop = rng.random((len(idx), len(self.ranges))) < p.modality_dropout
            drop[drop.all(axis=1)] = False  # never drop every modality of a row
            keep = np.ones(xb.shape, dtype=np.float32)
            for b, (a, z) in enumerate(self.ranges):
                keep[drop[:, b], a:z] = 0.0
                if self.mask_at is not None:  # dropped: absent for the network too
                    keep[drop[:, b], self.mask_at + b] = 0.0
            xb = xb * torch.as_tensor(keep, device=self.device)
        return xb


def _train_epoch(net, opt, loss_of, batch: _BatchMaker, Yt, order: np.ndarray,
                 rng: np.random.Generator, p) -> float:
    """One pass over ``order`` in batches; the mean training loss."""
    import torch

    net.train()
    total, seen = 0.0, 0
    for start in range(0, len(order), p.batch_size):
        idx = torch.as_tensor(order[start:start + p.batch_size], device=batch.device)
        xb = batch(idx, rng)
        opt.zero_grad()
        loss = loss_of(net(xb), Yt[idx])
        if p.l1 > 0:
            loss = loss + p.l1 * sum(w.abs().sum() for n, w in net.named_parameters()
                                     if n.endswith("weight"))
        loss.backward()
        if p.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(list(net.parameters()), p.clip_grad)
        opt.step()
        total += float(loss.detach()) * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def _validate(net, loss_of, val, tasks: list[dict], cls_tasks: list[int]) -> dict:
    """``val_loss`` and, with a classification task, the first one's ``val_accuracy``."""
    import torch

    Xv, Yv = val
    net.eval()
    record = {}
    with torch.no_grad():
        out = net(Xv)
        val_loss = float(loss_of(out, Yv))
        if cls_tasks:
            k = cls_tasks[0]
            part = split_outputs(out, tasks)[k]
            mask = Yv[:, k] >= 0
            hits = (part.argmax(1) == Yv[:, k].long())[mask]
            record["val_accuracy"] = float(hits.float().mean()) if len(hits) else None
    record["val_loss"] = val_loss
    return record


class _EarlyStopping:
    """Keeps the weights of the best validation loss; ``stop`` after ``patience`` epochs
    without a better one."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best, self.state, self.since = np.inf, None, 0

    def update(self, net, record: dict) -> None:
        if record["val_loss"] < self.best - 1e-6:
            self.best, self.since = record["val_loss"], 0
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            record["best"] = True
        else:
            self.since += 1

    @property
    def stop(self) -> bool:
        return self.since >= self.patience

    def restore(self, net) -> None:
        if self.state is not None:
            net.load_state_dict(self.state)
