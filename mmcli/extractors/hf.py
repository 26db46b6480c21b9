"""Hugging Face ``transformers`` backbones (text, image, audio) and ``sentence-transformers``
text models, loaded from local files only (:mod:`mmcli.extractors.pretrained`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmcli.extractors.base import EXTRACTORS
from mmcli.extractors.pretrained import (
    PretrainedExtractor,
    batches_by_length,
    image_bytes,
    pad_rows,
    pool,
    text_bucket,
    text_bytes,
)


@dataclasses.dataclass
class _Loaded:
    model: object
    directory: Path
    device: str
    dtype: object
    #: CLIP-like models embed each modality with get_text_features / get_image_features
    joint: bool
    #: processor class name -> loaded processor (a CLIP's text and image columns share the
    #: model, each with its own processor)
    processors: dict = dataclasses.field(default_factory=dict)

    def processor(self, name: str):
        if name not in self.processors:
            import transformers

            processor = getattr(transformers, name).from_pretrained(str(self.directory),
                                                                    local_files_only=True)
            if getattr(processor, "pad_token", "") is None:  # GPT-2-like: pads are masked
                processor.pad_token = processor.eos_token
            self.processors[name] = processor
        return self.processors[name]


def _load_transformers(directory: Path, device: str, dtype, trust_pickle: bool) -> _Loaded:
    import transformers
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Loading weights" bars, on every load
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # reports of unused heads, e.g. a classifier left out
    try:
        model = transformers.AutoModel.from_pretrained(str(directory), local_files_only=True,
                                                       use_safetensors=not trust_pickle)
    finally:
        logging.set_verbosity(verbosity)
    joint = hasattr(model, "get_text_features") and hasattr(model, "get_image_features")
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()  # Whisper, T5...: the encoder's states
    model = model.to(device=device, dtype=dtype).eval()
    return _Loaded(model, directory, device, dtype, joint)


def _features(out) -> object:
    """get_*_features returns a tensor (transformers 4) or an output with the pooled,
    projected embedding (later versions)."""
    import torch

    if torch.is_tensor(out):
        return out
    for name in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    return out[0]


class _HfBase(PretrainedExtractor):
    extra = "hf"
    backbone = "transformers"
    processor = "AutoTokenizer"

    def _module_name(self) -> str:
        return "transformers"

    def _check(self) -> None:
        super()._check()
        self._one_of("pooling", ("mean", "cls", "max"))

    def _load_backbone(self, directory, device, dtype):
        return _load_transformers(directory, device, dtype, self.params.trust_pickle)

    def _forward(self, net: _Loaded, batch: dict, modality: str):
        """(batch, dim) pooled float32 rows of one processed batch."""
        import torch

        batch = {k: v.to(net.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for k, v in batch.items():
            if torch.is_tensor(v) and v.is_floating_point():
                batch[k] = v.to(net.dtype)
        batch, n = pad_rows(batch, self.params.batch_size)
        if net.joint:
            fn = net.model.get_text_features if modality == "text" else \
                net.model.get_image_features
            rows = _features(fn(**batch))
        else:
            layer = self.params.layer
            out = net.model(**batch, output_hidden_states=layer != -1)
            hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
            if hidden.dim() == 4:  # a convolutional backbone: (batch, channels, h, w)
                hidden = hidden.flatten(2).transpose(1, 2)
            mask = batch.get("attention_mask") if modality == "text" else None
            rows = pool(hidden, mask, self.params.pooling)
        return rows[:n].float().cpu().numpy()

    def _backbone_dim(self, net) -> int:
        return int(self._embed(self._probe())[0].shape[0])


@EXTRACTORS.register("hf_text", kind="text")
class HfText(_HfBase):
    """Embeddings of a Hugging Face ``transformers`` text model (BERT, RoBERTa, E5, T5's
    encoder...): the tokenizer and ``AutoModel`` of ``model``, the states of ``layer``
    pooled over the tokens. A CLIP or SigLIP checkpoint gives its projected text embedding
    (``get_text_features``) instead, in the space of ``hf_image``'s.

    ``model`` is a local directory (``save_pretrained``) or a hub id found in the local
    Hugging Face cache; nothing is downloaded unless ``allow_download: true``. Weights are
    read from safetensors only (a pickle ``.bin`` needs ``trust_pickle: true``); their
    sha256 is recorded and checked by ``predict``. Texts are cut at ``max_length`` tokens,
    padded to the next of 16, 24, 32, 48, 64, 96... tokens and batched by that length, every
    batch of one shape (an embedding does not depend on its batch). Embeddings are cached by
    model, parameters and text (docs/extractors.md).

    Output dimension: the model's hidden size (its projection size for CLIP-like models)

    Parameters:
        model: model directory or hub id (required)
        batch_size: texts per forward pass
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin) when a folder has no safetensors
        cache: read and write the embedding cache
        pooling: mean or max over the tokens, or cls (the first token)
        layer: hidden layer pooled (-1 the last, -2 the one before...)
        max_length: longest text in tokens (longer ones are cut)
    """

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        pooling: str = "mean"
        layer: int = -1
        max_length: int = 256

    def _check(self) -> None:
        super()._check()
        self._at_least(1, "max_length")

    def _probe(self) -> list:
        return ["probe"]

    def _item_bytes(self, item) -> bytes:
        return text_bytes(item)

    def _max_length(self, tokenizer) -> int:
        limit = getattr(tokenizer, "model_max_length", None) or self.params.max_length
        return int(min(self.params.max_length, limit if limit < 1e6 else self.params.max_length))

    def _embed(self, texts: list[str]) -> np.ndarray:
        net = self._net_()
        tok = net.processor(self.processor)
        longest = self._max_length(tok)
        counts = [len(ids) for ids in tok(texts, truncation=True, max_length=longest)
                  ["input_ids"]]
        padded = [text_bucket(n, longest) for n in counts]
        rows: dict[int, np.ndarray] = {}
        for batch in batches_by_length(padded, self.params.batch_size):
            enc = tok([texts[k] for k in batch], padding="max_length", truncation=True,
                      max_length=padded[batch[0]], return_tensors="pt")
            if net.joint:  # CLIP's text tower uses no token type ids
                enc.pop("token_type_ids", None)
            for k, row in zip(batch, self._forward(net, dict(enc), "text")):
                rows[k] = row
        return np.stack([rows[k] for k in range(len(texts))])


@EXTRACTORS.register("hf_image", kind="image")
class HfImage(_HfBase):
    """Embeddings of a Hugging Face ``transformers`` image model (ViT, DINOv2, ConvNeXt...):
    its image processor and ``AutoModel``, the states of ``layer`` pooled over the patches
    (``cls``: the first token). A CLIP or SigLIP checkpoint gives its projected image
    embedding (``get_image_features``) instead, in the space of ``hf_text``'s.

    The preprocessed images (``preprocess.image_size``: set it near the model's input size,
    e.g. [224, 224]) go through the model's own processor (resize, crop, normalise). Local
    files only, safetensors only, sha256 checked by ``predict``, cached: as ``hf_text``.

    Output dimension: the model's hidden size (its projection size for CLIP-like models)

    Parameters:
        model: model directory or hub id (required)
        batch_size: images per forward pass
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin) when a folder has no safetensors
        cache: read and write the embedding cache
        pooling: mean or max over the patches (or spatial positions), or cls
        layer: hidden layer pooled (-1 the last, -2 the one before...)
    """

    processor = "AutoImageProcessor"

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        pooling: str = "mean"
        layer: int = -1

    def _probe(self) -> list:
        return [np.zeros((32, 32, 3), dtype=np.uint8)]

    def _item_bytes(self, item) -> bytes:
        return image_bytes(item)

    def _embed(self, images: list[np.ndarray]) -> np.ndarray:
        net = self._net_()
        shapes = [im.shape for im in images]
        order = sorted(set(shapes))
        parts: dict[int, np.ndarray] = {}
        step = self.params.batch_size
        for shape in order:  # preprocess makes every image one size; a probe differs
            positions = [k for k, s in enumerate(shapes) if s == shape]
            for a in range(0, len(positions), step):
                batch = positions[a:a + step]
                enc = net.processor(self.processor)(images=[images[k] for k in batch],
                                                    return_tensors="pt")
                for k, row in zip(batch, self._forward(net, dict(enc), "image")):
                    parts[k] = row
        return np.stack([parts[k] for k in range(len(images))])


@EXTRACTORS.register("hf_audio", kind="audio")
class HfAudio(_HfBase):
    """Embeddings of a Hugging Face ``transformers`` speech model (wav2vec2, HuBERT, WavLM,
    Whisper's encoder...): its feature extractor and ``AutoModel``, the states of ``layer``
    pooled over the frames.

    Clips are resampled to the model's rate when preprocess used another
    (``preprocess.sample_rate``: set it to the model's, usually 16000), cut at
    ``max_seconds`` and batched with clips of the same length only (zero padding changes
    what these models compute); every batch has ``batch_size`` rows (short ones are padded
    with copies), so keep the default 1 unless many clips share a length. Local files only,
    safetensors only, sha256 checked by ``predict``, cached: as ``hf_text``.

    Output dimension: the model's hidden size

    Parameters:
        model: model directory or hub id (required)
        batch_size: clips per forward pass (more than 1 pays off only for equal lengths)
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin) when a folder has no safetensors
        cache: read and write the embedding cache
        pooling: mean or max over the frames
        layer: hidden layer pooled (-1 the last, -2 the one before...)
        max_seconds: longest clip in seconds (longer ones are cut)
    """

    processor = "AutoFeatureExtractor"

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        batch_size: int = 1
        pooling: str = "mean"
        layer: int = -1
        max_seconds: float = 30.0

    def _check(self) -> None:
        super()._check()
        self._one_of("pooling", ("mean", "max"))
        if self.params.max_seconds <= 0:
            raise self._bad("max_seconds", self.params.max_seconds, "> 0")

    def _probe(self):
        rate = int(getattr(self._net_().processor(self.processor), "sampling_rate", 16000))
        return [(np.zeros(rate, dtype=np.float32), rate)]

    def _items(self, data) -> list:
        return [(np.asarray(c, dtype=np.float32), int(data.sample_rate)) for c in data.clips]

    def _item_bytes(self, item) -> bytes:
        clip, rate = item
        return f"{rate}:".encode("ascii") + np.ascontiguousarray(clip).tobytes()

    def _embed(self, items: list) -> np.ndarray:
        net = self._net_()
        extractor = net.processor(self.processor)
        rate = int(getattr(extractor, "sampling_rate", 16000))
        clips = []
        for clip, sr in items:
            if sr != rate:
                import librosa

                clip = librosa.resample(clip, orig_sr=sr, target_sr=rate).astype(np.float32)
            clips.append(clip[:int(self.params.max_seconds * rate)])
        rows: dict[int, np.ndarray] = {}
        for batch in batches_by_length([len(c) for c in clips], self.params.batch_size):
            enc = extractor([clips[k] for k in batch], sampling_rate=rate,
                                return_tensors="pt")
            enc.pop("attention_mask", None)  # one length per batch: nothing is padded
            for k, row in zip(batch, self._forward(net, dict(enc), "audio")):
                rows[k] = row
        return np.stack([rows[k] for k in range(len(items))])


@EXTRACTORS.register("sentence_transformers", kind="text")
class SentenceTransformerText(PretrainedExtractor):
    """Sentence embeddings of a ``sentence-transformers`` model (all-MiniLM, mpnet, E5, BGE
    ...): its own modules (transformer, pooling, normalisation) end to end.

    Texts are batched with texts of the same token count only (no padding, and a short
    batch is filled up with copies: a text's embedding does not depend on its batch). Local
    files only, safetensors only, sha256 checked by ``predict``, cached: as ``hf_text``.

    Output dimension: the model's sentence embedding size

    Parameters:
        model: model directory or hub id (required)
        batch_size: texts per forward pass
        device: auto (cuda when available, or what --device says), cpu or cuda
        precision: auto (float16 on cuda, float32 on cpu), float32, float16 or bfloat16
        allow_download: fetch a hub id missing from the local cache (HF_HUB_OFFLINE wins)
        trust_pickle: allow pickle weights (.bin) when a folder has no safetensors
        cache: read and write the embedding cache
        normalize: scale every embedding to unit length
    """

    extra = "sentence"
    backbone = "sentence_transformers"

    @dataclasses.dataclass
    class Params(PretrainedExtractor.Params):
        normalize: bool = False

    def _module_name(self) -> str:
        return "sentence_transformers"

    def _load_backbone(self, directory, device, dtype):
        from sentence_transformers import SentenceTransformer

        kwargs = {"use_safetensors": True} if not self.params.trust_pickle else {}
        model = SentenceTransformer(str(directory), device=device, local_files_only=True,
                                    model_kwargs=kwargs)
        return model.to(dtype).eval()

    def _backbone_dim(self, net) -> int:
        return int(self._embed(["probe"]).shape[1])

    def _item_bytes(self, item) -> bytes:
        return text_bytes(item)

    def _token_counts(self, net, texts: list[str]) -> list[int]:
        tokenizer = getattr(net, "tokenizer", None)
        if tokenizer is None or not callable(tokenizer):
            return list(range(len(texts)))  # each text alone
        limit = getattr(net, "max_seq_length", None) or 512
        return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=limit)
                ["input_ids"]]

    def _embed(self, texts: list[str]) -> np.ndarray:
        net = self._net_()
        rows: dict[int, np.ndarray] = {}
        for batch in batches_by_length(self._token_counts(net, texts), self.params.batch_size):
            group = [texts[k] for k in batch]
            group += group[-1:] * (self.params.batch_size - len(group))  # one shape
            vectors = net.encode(group, batch_size=len(group), convert_to_numpy=True,
                                 show_progress_bar=False,
                                 normalize_embeddings=self.params.normalize)
            for k, row in zip(batch, np.asarray(vectors, dtype=np.float32)):
                rows[k] = row
        return np.stack([rows[k] for k in range(len(texts))])
