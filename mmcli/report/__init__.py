"""What ``mmcli eval`` shows a person: metrics, figures, robustness and the HTML report.

``metrics`` (numbers from arrays), ``chain`` (finding the stage directories a fuse directory was
made from), ``robustness`` (modality ablation and noise), ``plots`` (deterministic PNGs) and
``html`` (one self-contained page). matplotlib and scikit-learn are imported inside functions.
"""
