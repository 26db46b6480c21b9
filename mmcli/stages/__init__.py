"""The pipeline stages as library functions; the CLI is a thin layer over these.

Each module exposes one function named after its stage that reads its input directory (or
manifest), writes one stage directory atomically and returns a summary dict.
"""

from mmcli.stages.evaluate import evaluate
from mmcli.stages.extract import extract
from mmcli.stages.fuse import fuse
from mmcli.stages.predict import predict
from mmcli.stages.preprocess import preprocess
from mmcli.stages.train import train

__all__ = ["preprocess", "extract", "fuse", "train", "evaluate", "predict"]
