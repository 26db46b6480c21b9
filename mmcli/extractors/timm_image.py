"""``timm`` image backbones, their global-pool features, loaded from local files only
(:mod:`mmcli.extractors.pretrained`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmcli.extractors.base import EXTRACTORS
from mmcli.extractors.pretrained import PretrainedExtractor, image_bytes, pad_rows


@dataclasses.dataclass
class _Timm:
    model: object
    transform: object
    device: str
    dtype: object


@EXTRACTORS.register("timm", kind="image")
class TimmImage(PretrainedExtractor):
    """Global-pool features of a ``timm`` image model (ResNet, EfficientNet, ConvNeXt, ViT,
    EVA...), the classifier removed, after the model's own evaluation transform (resize,
    centre crop, normalise) of the preprocessed images.

    ``model`` is a directory in the timm hub layout (``config.json`` with ``architecture``,
    beside ``model.safetensors``: what ``timm.models.save_for_hf`` writes) or a hub id of
    one (``timm/resnet50.a1_in1k``) found in the local Hugging Face cache; nothing is
    downloaded unless ``allow_download: true``. Safetensors only (a pickle needs
    ``trust_pickle: true``), sha256 recorded and checked by ``predict``, embeddings cached
    (docs/extractors.md).

    Output dimension: the model's feature size (``num_features``)

    Parameters:
        model: timm model directory or hub id (required)
        batch_size: images per forward pass
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin, .pth) when a folder has no safetensors
        cache: read and write the embedding cache
        global_pool: the model's pooling (empty) or one timm knows (avg, max, avgmax, token)
    """

    extra = "timm"
    backbone = "timm"

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        global_pool: str = ""

    def _load_backbone(self, directory: Path, device: str, dtype) -> _Timm:
        import timm
        from timm.data import create_transform, resolve_data_config

        kwargs = {"global_pool": self.params.global_pool} if self.params.global_pool else {}
        model = timm.create_model(f"local-dir:{directory}", pretrained=True, num_classes=0,
                                  **kwargs)
        model = model.to(device=device, dtype=dtype).eval()
        transform = create_transform(**resolve_data_config({}, model=model))
        return _Timm(model, transform, device, dtype)

    def _backbone_dim(self, net: _Timm) -> int:
        return int(self._embed([np.zeros((32, 32, 3), dtype=np.uint8)]).shape[1])

    def _item_bytes(self, item) -> bytes:
        return image_bytes(item)

    def _embed(self, images: list) -> np.ndarray:
        import torch
        from PIL import Image

        net = self._net_()
        out = []
        step = self.params.batch_size
        for a in range(0, len(images), step):
            x = torch.stack([net.transform(Image.fromarray(im)) for im in images[a:a + step]])
            batch, n = pad_rows({"x": x.to(net.device, net.dtype)}, step)
            out.append(net.model(batch["x"])[:n].reshape(n, -1).float().cpu().numpy())
        return np.concatenate(out)
