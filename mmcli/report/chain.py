"""Follow ``meta.json`` inputs back along a chain: fuse -> extract -> preprocess.

A stage records its input directory as the path it was given (relative to where it ran) with
the sha256 of that directory's ``meta.json``. The report needs the earlier stages (their configs,
preprocess's ``failures.csv``, the preprocessed data for noise robustness); an earlier stage that
cannot be found, or that was re-made since, is reported as a note instead of failing the eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmcli import artifacts
from mmcli.errors import ArtifactError


@dataclass
class Chain:
    """The stage directories behind one fuse directory; ``None`` where not reachable."""

    fuse: artifacts.StageDir
    extract: artifacts.StageDir | None = None
    preprocess: artifacts.StageDir | None = None
    notes: list[str] = field(default_factory=list)


def input_of(stage: artifacts.StageDir, expected: str, notes: list[str]) -> \
        artifacts.StageDir | None:
    """The ``expected`` stage directory that ``stage`` was made from, checked by hash."""
    inputs = stage.meta.get("inputs") or {}
    for recorded, digest in inputs.items():
        # as recorded (relative to where the stage ran), else a sibling of the stage directory
        for candidate in dict.fromkeys([Path(recorded), stage.path.parent / Path(recorded).name]):
            if not (candidate / artifacts.META).is_file():
                continue
            try:
                found = artifacts.open_stage(candidate, expected, "mmcli eval")
            except ArtifactError as exc:
                notes.append(f"{candidate}: {exc.message}")
                return None
            if found.meta_hash() != digest:
                notes.append(f"{candidate} was re-made after {stage.path} was made from it, "
                             "so it is not used")
                return None
            return found
        notes.append(f"the {expected} directory {recorded} that {stage.path} was made from "
                     "was not found")
        return None
    notes.append(f"{stage.path}/meta.json names no input")
    return None


def find_chain(fuse: artifacts.StageDir) -> Chain:
    chain = Chain(fuse)
    chain.extract = input_of(fuse, "extract", chain.notes)
    if chain.extract is not None:
        chain.preprocess = input_of(chain.extract, "preprocess", chain.notes)
    return chain
