"""OpenCLIP (``open_clip``) image and text towers: one embedding space for both, loaded from
local files only (:mod:`mmcli.extractors.pretrained`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmcli.extractors.base import EXTRACTORS
from mmcli.extractors.pretrained import PretrainedExtractor, image_bytes, pad_rows, text_bytes

_COMMON = """
    ``model`` is a directory in the OpenCLIP hub layout (``open_clip_config.json`` beside
    ``open_clip_model.safetensors``) or a hub id of one (``laion/CLIP-ViT-B-32-laion2B-s34B-
    b79K``) found in the local Hugging Face cache; nothing is downloaded unless
    ``allow_download: true``. Safetensors only (a pickle needs ``trust_pickle: true``), sha256
    recorded and checked by ``predict``, embeddings cached (docs/extractors.md). Give
    ``clip_image`` and ``clip_text`` the same ``model`` to embed the image and text columns
    of a manifest in one space (one copy of the model is loaded for both).

    Output dimension: the model's embedding size (``embed_dim``)

    Parameters:
        model: OpenCLIP model directory or hub id (required)
        batch_size: items per forward pass
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin, .pt) when a folder has no safetensors
        cache: read and write the embedding cache
        normalize: scale every embedding to unit length (as CLIP's similarity does)
"""


@dataclasses.dataclass
class _Clip:
    model: object
    transform: object
    tokenizer: object
    device: str
    dtype: object


class _ClipBase(PretrainedExtractor):
    extra = "clip"
    backbone = "open_clip"

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        normalize: bool = True

    def _module_name(self) -> str:
        return "open_clip"

    def _load_backbone(self, directory: Path, device: str, dtype) -> _Clip:
        import open_clip

        name = f"local-dir:{directory}"
        model, _, transform = open_clip.create_model_and_transforms(
            name, device=device, weights_only=not self.params.trust_pickle)
        model = model.to(dtype=dtype).eval()
        return _Clip(model, transform, open_clip.get_tokenizer(name), device, dtype)

    def _backbone_dim(self, net: _Clip) -> int:
        return int(self._embed(self._probe()).shape[1])

    def _run(self, net: _Clip, encode, x) -> np.ndarray:
        batch, n = pad_rows({"x": x.to(net.device)}, self.params.batch_size)
        if batch["x"].is_floating_point():
            batch["x"] = batch["x"].to(net.dtype)
        return encode(batch["x"], normalize=self.params.normalize)[:n].float().cpu().numpy()

    def _embed(self, items: list) -> np.ndarray:
        net = self._net_()
        step = self.params.batch_size
        return np.concatenate([self._batch(net, items[a:a + step])
                               for a in range(0, len(items), step)])


@EXTRACTORS.register("clip_image", kind="image")
class ClipImage(_ClipBase):
    __doc__ = """Image embeddings of an OpenCLIP model (``encode_image``), in the space of
    ``clip_text``'s; the model's own transform (resize, crop, normalise) on the preprocessed
    images.
""" + _COMMON

    def _probe(self) -> list:
        return [np.zeros((32, 32, 3), dtype=np.uint8)]

    def _item_bytes(self, item) -> bytes:
        return image_bytes(item)

    def _batch(self, net: _Clip, images: list) -> np.ndarray:
        import torch
        from PIL import Image

        x = torch.stack([net.transform(Image.fromarray(im)) for im in images])
        return self._run(net, net.model.encode_image, x)


@EXTRACTORS.register("clip_text", kind="text")
class ClipText(_ClipBase):
    __doc__ = """Text embeddings of an OpenCLIP model (``encode_text``), in the space of
    ``clip_image``'s; texts are cut at the model's context length (77 tokens for most), and
    every batch has that length.
""" + _COMMON

    def _probe(self) -> list:
        return ["probe"]

    def _item_bytes(self, item) -> bytes:
        return text_bytes(item)

    def _batch(self, net: _Clip, texts: list) -> np.ndarray:
        return self._run(net, net.model.encode_text, net.tokenizer(texts))
