"""A multilayer perceptron in torch, with dropout, weight decay and early stopping."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.models.base import MODELS, Model, resolve_device


@MODELS.register("mlp")
class MLPModel(Model):
    """Fully connected network: ``hidden`` layer sizes with ReLU and ``dropout``, trained with
    AdamW (``lr``, ``weight_decay`` = L2) on cross-entropy, ``l1`` adds an L1 penalty on the
    weights. With a validation split, training stops after ``patience`` epochs without
    improvement of the validation loss and the best epoch's weights are restored.
    ``class_weight: balanced`` weighs the loss by inverse class frequency.
    """

    @dataclasses.dataclass
    class Params:
        hidden: list = dataclasses.field(default_factory=lambda: [256])
        dropout: float = 0.3
        lr: float = 1e-3
        weight_decay: float = 1e-3
        l1: float = 0.0
        epochs: int = 200
        batch_size: int = 64
        patience: int = 20
        class_weight: str | None = None

    def _network(self, n_features: int, n_classes: int):
        import torch.nn as nn

        layers: list = []
        width = n_features
        for h in self.params.hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(self.params.dropout)]
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)

    def fit(self, X, y, n_classes, X_val=None, y_val=None):
        import torch

        p = self.params
        if p.class_weight not in (None, "balanced"):
            from mmcli.errors import UsageError

            raise UsageError(f"mlp class_weight is {p.class_weight!r}", "use null or balanced")
        device = resolve_device(self.device)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.n_features_, self.n_classes_ = X.shape[1], n_classes
        net = self._network(X.shape[1], n_classes).to(device)
        weight = None
        if p.class_weight == "balanced":
            counts = np.bincount(y, minlength=n_classes).astype(np.float64)
            w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
            weight = torch.tensor(w, dtype=torch.float32, device=device)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            Xv = torch.as_tensor(np.asarray(X_val, dtype=np.float32), device=device)
            yv = torch.as_tensor(np.asarray(y_val, dtype=np.int64), device=device)
        best, best_state, since_best = np.inf, None, 0
        self.log_ = []
        for epoch in range(1, p.epochs + 1):
            net.train()
            order = torch.randperm(len(Xt), generator=gen).to(device)
            total = 0.0
            for start in range(0, len(order), p.batch_size):
                idx = order[start:start + p.batch_size]
                opt.zero_grad()
                loss = loss_fn(net(Xt[idx]), yt[idx])
                if p.l1 > 0:
                    loss = loss + p.l1 * sum(w.abs().sum() for n, w in net.named_parameters()
                                             if n.endswith("weight"))
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            record = {"epoch": epoch, "train_loss": total / len(Xt)}
            if has_val:
                net.eval()
                with torch.no_grad():
                    logits = net(Xv)
                    val_loss = float(loss_fn(logits, yv))
                    val_acc = float((logits.argmax(1) == yv).float().mean())
                record.update(val_loss=val_loss, val_accuracy=val_acc)
                if val_loss < best - 1e-6:
                    best, since_best = val_loss, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    record["best"] = True
                else:
                    since_best += 1
            self.log_.append(record)
            if has_val and since_best >= p.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.best_epoch_ = max((r["epoch"] for r in self.log_ if r.get("best")),
                               default=len(self.log_))
        self.net_ = net.cpu().eval()
        return self

    def predict_proba(self, X):
        import torch

        with torch.no_grad():
            logits = self.net_(torch.as_tensor(np.array(X, dtype=np.float32)))
            return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def get_state(self):
        arrays = {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        return ({"n_features": self.n_features_, "n_classes": self.n_classes_,
                 "best_epoch": self.best_epoch_, "epochs_run": len(self.log_)}, arrays)

    def _load(self, fitted, arrays):
        import torch

        self.n_features_, self.n_classes_ = int(fitted["n_features"]), int(fitted["n_classes"])
        self.best_epoch_ = fitted.get("best_epoch")
        net = self._network(self.n_features_, self.n_classes_)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.net_ = net.eval()
