"""mmcli: batch multimodal machine learning from the command line.

The stages are plain functions that work without the CLI::

    from mmcli import stages
    stages.preprocess("sample_data/manifest.csv", "runs/pre")

Heavy libraries (torch, scikit-learn, gensim, librosa) are imported only by the code that uses
them, so importing :mod:`mmcli` is cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
