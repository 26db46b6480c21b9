"""Fusion methods, one registry keyed by name (``concat``, ``product``, ``sum``, ``tensor``)."""

from mmcli.fusion.fixed import FUSIONS, Fusion

__all__ = ["FUSIONS", "Fusion"]
