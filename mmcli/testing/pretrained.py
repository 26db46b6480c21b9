"""Tiny randomly initialised pretrained-backbone directories, saved the way the real ones
are (safetensors), for the tests and the throughput bench: nothing is downloaded.

Each ``write_*`` function writes one model directory under ``root`` and returns its path;
:func:`write_all` writes every one. They need the extras (``mmcli[hf,sentence,clip,timm]``).
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["the", "a", "one", "small", "photo", "of", "some", "thing", "here", "fire", "apple",
         "brick", "grass", "leaf", "frog", "sea", "sky", "ice", "red", "green", "blue"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _quiet() -> None:
    from transformers.utils import logging

    from mmcli.extractors.pretrained import ensure_torchvision

    ensure_torchvision()
    logging.set_verbosity_error()
    logging.disable_progress_bar()


def write_tokenizer(directory: Path) -> None:
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(str(directory))


def write_bert(root: Path, hidden: int = 32) -> Path:
    """A 2-layer BERT and its WordPiece tokenizer (the words of the dummy datasets)."""
    _quiet()
    import torch
    from transformers import BertConfig, BertModel

    out = root / "bert"
    write_tokenizer(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(SPECIAL + WORDS), hidden_size=hidden,
                        num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(out))
    return out


def write_vit(root: Path) -> Path:
    """A 2-layer ViT on 32 x 32 images (patches of 8) and its image processor."""
    _quiet()
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    out = root / "vit"
    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64)
    ViTModel(config, add_pooling_layer=False).save_pretrained(str(out))
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(out))
    return out


def write_wav2vec2(root: Path) -> Path:
    """A 2-layer wav2vec2 (three small convolutions) and its feature extractor at 16 kHz."""
    _quiet()
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    out = root / "wav2vec2"
    torch.manual_seed(0)
    # strides 5 x 4 x 4: 200 frames a second (real wav2vec2: 50)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3),
                            conv_stride=(5, 4, 4), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4)
    Wav2Vec2Model(config).save_pretrained(str(out))
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(str(out))
    return out


def write_hf_clip(root: Path) -> Path:
    """A transformers CLIPModel (two 2-layer towers, 16-d joint space), a WordPiece
    tokenizer and a CLIP image processor on 32 x 32 images."""
    _quiet()
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    out = root / "hf_clip"
    write_tokenizer(out)
    torch.manual_seed(0)
    tower = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 64}
    config = CLIPConfig(text_config={**tower, "vocab_size": len(SPECIAL + WORDS),
                                     "max_position_embeddings": 64, "eos_token_id": 3},
                        vision_config={**tower, "image_size": 32, "patch_size": 8},
                        projection_dim=16)
    CLIPModel(config).save_pretrained(str(out))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(str(out))
    return out


def write_sentence_transformer(root: Path, bert: Path) -> Path:
    """A sentence-transformers model: the tiny BERT with mean pooling."""
    _quiet()
    from sentence_transformers import SentenceTransformer

    out = root / "sentence"
    SentenceTransformer(str(bert), device="cpu", local_files_only=True).save(str(out))
    return out


def write_open_clip(root: Path) -> Path:
    """An OpenCLIP model in the hub layout: 1-layer towers of width 32, a 16-d joint space,
    32 x 32 images, 16-token context (open_clip's own BPE tokenizer)."""
    _quiet()
    import open_clip
    import torch
    from safetensors.torch import save_file

    out = root / "open_clip"
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": {"embed_dim": 16,
                            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
                                           "patch_size": 8, "head_width": 16},
                            "text_cfg": {"context_length": 16, "vocab_size": 49408,
                                         "width": 32, "heads": 2, "layers": 1}},
              "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                 "std": [0.26862954, 0.26130258, 0.27577711]}}
    (out / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.manual_seed(0)
    import logging

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "no weights found": they are written next
    try:
        model = open_clip.create_model(f"local-dir:{out}")
    finally:
        logging.getLogger().setLevel(level)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    return out


def write_timm(root: Path) -> Path:
    """timm's ``test_vit`` (a few thousand parameters) on 32 x 32 images, randomly
    initialised, saved with ``save_for_hf`` (config.json + model.safetensors)."""
    _quiet()
    import timm
    import torch
    from timm.models import save_for_hf

    out = root / "timm"
    torch.manual_seed(0)
    model = timm.create_model("test_vit", pretrained=False, img_size=32)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 32, 32), "crop_pct": 1.0}
    save_for_hf(model, str(out), model_args={"img_size": 32}, safe_serialization=True)
    return out


def write_all(root: Path) -> dict[str, Path]:
    root = Path(root)
    bert = write_bert(root)
    return {"bert": bert, "vit": write_vit(root), "wav2vec2": write_wav2vec2(root),
            "hf_clip": write_hf_clip(root), "sentence": write_sentence_transformer(root, bert),
            "open_clip": write_open_clip(root), "timm": write_timm(root)}
