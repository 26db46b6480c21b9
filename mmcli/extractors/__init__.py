"""Feature extractors, one registry keyed by name; see :mod:`mmcli.extractors.base`.

Importing this package registers every built-in extractor. To add one, write a class in the
module of its modality with ``@EXTRACTORS.register("name", kind="image")``.
"""

from mmcli.extractors import (  # noqa: F401  (registers them)
    audio,
    hf,
    image,
    openclip,
    tabular,
    text,
    timm_image,
)
from mmcli.extractors.base import EXTRACTORS, Extractor, build_extractor, check_params

__all__ = ["EXTRACTORS", "Extractor", "build_extractor", "check_params"]
