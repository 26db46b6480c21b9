"""The block description given to models: built from fusion.json, saved as ranges + layouts."""

from __future__ import annotations

import numpy as np

from mmcli.blocks import Blocks, as_blocks

ENTRIES = [{"column": "image", "start": 0, "stop": 192, "layout": "image", "shape": [8, 8, 3]},
           {"column": "text", "start": 192, "stop": 199, "layout": "tokens", "shape": [7],
            "vocab": 13},
           {"column": "value", "start": 199, "stop": 200}]


def test_from_fusion_keeps_what_models_save():
    norms = [(np.zeros(b["stop"] - b["start"]), np.ones(b["stop"] - b["start"]))
             for b in ENTRIES]
    blocks = Blocks.from_fusion(ENTRIES, norms)
    assert blocks.ranges == [(0, 192), (192, 199), (199, 200)]
    assert blocks.width == 200 and len(blocks) == 3
    # the saved layouts are fusion.json's entries without the range, keys in the same order
    assert blocks.layouts == [{k: v for k, v in e.items() if k not in ("start", "stop")}
                              for e in ENTRIES]
    assert [list(e) for e in blocks.layouts] == [["column", "layout", "shape"],
                                                 ["column", "layout", "shape", "vocab"],
                                                 ["column"]]
    assert [b.layout for b in blocks] == ["image", "tokens", None]
    assert blocks.norms is not None and len(blocks.norms) == 3
    again = Blocks.from_ranges(blocks.ranges, blocks.layouts)
    assert again == blocks and again.norms is None  # norms are for training only


def test_subset_rebases_the_ranges():
    blocks = Blocks.from_fusion(ENTRIES)
    part = blocks.subset([0, 2])
    assert part.ranges == [(0, 192), (192, 193)]
    assert [b.column for b in part] == ["image", "value"]


def test_bare_ranges():
    blocks = as_blocks([(0, 2), (2, 5)])
    assert blocks.ranges == [(0, 2), (2, 5)] and blocks.layouts is None and blocks.norms is None
    assert as_blocks(None) is None and as_blocks(blocks) is blocks
