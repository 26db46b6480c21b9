"""The modality-kind contract: everything mmcli does that depends on what a column holds.

A kind (image, audio, text, numeric, categorical, video) is one subclass of :class:`Kind` in
one module of :mod:`mmcli.kinds`, registered with ``@KINDS.register("name")``. The stages never
test a kind's name; they call its object (:func:`mmcli.kinds.get_kind`):

* **detection**: :meth:`Kind.detector` claims a column from its non-empty cells, streamed
  (kinds are asked in ``order``; text, the fallback, takes whatever is left);
  :meth:`Kind.sniff` recognises encoded bytes (a Parquet binary column) by their leading
  bytes;
* **decoding and validation** with the kind's limits: :meth:`Kind.load` for media files
  (``media = True``), :meth:`Kind.parse` for cells read as they are; both raise
  :class:`~mmcli.media.MediaError` with the one-line reason recorded in ``failures.csv``;
* **storage** in the preprocess output: :meth:`Kind.arrays` (media: the ``data/<col>*.npy``
  arrays, fixed-shape or ragged with offsets), ``stored`` (``values``: in ``items.jsonl``,
  ``numbers``: a scaled float array), and :meth:`Kind.read` (what extractors get);
* **missing**: :meth:`Kind.missing_value` (what is stored for a cell that is absent) and
  :meth:`Kind.is_missing` (whether a raw cell is absent);
* **robustness noise**: ``perturbations`` (name -> description) and :meth:`Kind.perturb`;
* **augmentation** of its structured blocks in training: ``layout``, ``augmentations`` and
  :meth:`Kind.augment`;
* **defaults**: ``default_extractors`` (``extract.<kind>``), ``encoder`` (what ``encoder:
  auto`` picks for a block of its ``layout``), and :meth:`Kind.build_extractor`.

Kinds hold no state: one instance per kind serves every column and process.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mmcli.registry import Registry

KINDS: Registry[type[Kind]] = Registry("modality kind")


class Detector:
    """Decides whether a column is of one kind from its cells, seen once, a block at a time:
    :meth:`add` gets every distinct non-empty stripped cell of a block with its count (a
    column of a million cells is never held whole)."""

    def add(self, value: str, count: int) -> None:
        pass

    def claims(self, n: int) -> bool:
        """Whether the column, of ``n`` non-empty cells in all, is of this kind."""
        return False


class SuffixDetector(Detector):
    """At least 90% of the cells end in one of ``extensions`` (media paths and URLs)."""

    def __init__(self, extensions: frozenset[str]):
        self.extensions, self.hits = extensions, 0

    def add(self, value: str, count: int) -> None:
        if self.extensions and "." in value and suffix(value) in self.extensions:
            self.hits += count

    def claims(self, n: int) -> bool:
        return n > 0 and self.hits >= 0.9 * n


def suffix(value: str) -> str:
    """``PurePath(value).suffix.lower()`` without making a path (detection reads every cell)."""
    name = next((part for part in reversed(value.split("/")) if part and part != "."), "")
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


class Kind:
    name: ClassVar[str]
    #: listing and detection order (``extract --list``, docs, column detection)
    order: ClassVar[int] = 50
    #: detection asks this kind last: it claims what no other kind does (text)
    fallback: ClassVar[bool] = False
    #: cells are media files (paths, URLs or encoded bytes) decoded by :meth:`load`
    media: ClassVar[bool] = False
    #: file suffixes of this kind's media (lower case, with the dot)
    extensions: ClassVar[frozenset[str]] = frozenset()
    #: (leading bytes, bytes 8-12 or None, file suffix) of encoded media (see :meth:`sniff`)
    magic: ClassVar[tuple] = ()
    #: how preprocess stores a decoded value: "arrays" (media, see :meth:`arrays`), "numbers"
    #: (a float array scaled with train statistics) or "values" (strings in items.jsonl)
    stored: ClassVar[str] = "values"
    #: robustness perturbations: name -> how severity s in [0, 1] is applied
    perturbations: ClassVar[dict[str, str]] = {}
    #: the structured row layout its extractors can give (models' encoders and augmentation)
    layout: ClassVar[str | None] = None
    #: what a ``layout`` block holds, and the extractor that gives it (for messages)
    layout_what: ClassVar[str] = ""
    layout_extractor: ClassVar[str] = ""
    #: the encoder ``encoder: auto`` picks for a block of ``layout``
    encoder: ClassVar[str] = "mlp"
    #: train.params.augment keys that act on blocks of ``layout``
    augmentations: ClassVar[tuple[str, ...]] = ()
    #: the default of ``extract.<kind>``
    default_extractors: ClassVar[tuple[str, ...]] = ()
    #: the preprocess settings that decide how a media file decodes (equal settings let an
    #: incremental run reuse an earlier output's arrays)
    decode_settings: ClassVar[tuple[str, ...]] = ()

    #: ``extract --list``: what ``extract.<kind>`` accepts when it has no extractors of its own
    extractors_note: ClassVar[str] = ""

    def require(self) -> None:
        """Raise UsageError, saying what to install, when a library this kind decodes with is
        missing (asked before any item is decoded)."""

    # --- detection ----------------------------------------------------------------------
    def detector(self) -> Detector:
        """A fresh :class:`Detector` of this kind (by default: 90% of the cells have one of
        ``extensions``)."""
        return SuffixDetector(self.extensions)

    def sniff(self, data: bytes) -> str | None:
        """The file suffix of encoded bytes of this kind, from their leading bytes, else None."""
        for head, tag, suffix in self.magic:
            if data.startswith(head) and (tag is None or data[8:12] == tag):
                return suffix
        return None

    # --- decoding -----------------------------------------------------------------------
    def load(self, path, spec: dict) -> Any:
        """Decode one local media file under the preprocess settings ``spec``; raises
        :class:`~mmcli.media.MediaError` with the reason."""
        raise NotImplementedError(f"{self.name} cells are not media files")

    def parse(self, cell: str, spec: dict) -> Any:
        """The value of a cell read as it is (not a media file); raises MediaError."""
        return cell.strip()

    # --- storage ------------------------------------------------------------------------
    def arrays(self, spec: dict) -> dict[str, tuple[Any, tuple | None]]:
        """Media: array name suffix -> (dtype, shape of one item); a shape of None is a ragged
        array (items of any length, concatenated, with ``<name>.offsets.npy``)."""
        return {}

    def parts(self, value) -> tuple:
        """A decoded media value split into one array per entry of :meth:`arrays`."""
        return (value,)

    def join(self, parts: tuple) -> Any:
        """The inverse of :meth:`parts` (a value read back from stored arrays)."""
        return parts[0]

    def read(self, data, col: str, index) -> Any:
        """What extractors get for items ``index`` of column ``col`` of a
        :class:`~mmcli.dataset.PreprocessedData`."""
        return data.values(col, index)

    # --- missing ------------------------------------------------------------------------
    def is_missing(self, cell) -> bool:
        """Whether a raw manifest cell is absent (empty)."""
        return not (cell.strip() if isinstance(cell, str) else cell)

    def missing_value(self, spec: dict) -> Any:
        """The decoded value stored for an absent cell of a kept row, shaped like any decoded
        value (so arrays stay aligned with items); extractors never see it as data."""
        return ""

    # --- robustness and augmentation ----------------------------------------------------
    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        """A corrupted copy of a batch of preprocessed values (``read``'s type)."""
        raise ValueError(f"no perturbation {name!r} for {self.name}")

    def augment(self, raw, shape, params, rng):
        """Augment a (n, width) torch batch of ``layout`` rows (un-normalised) by
        ``params`` (:class:`~mmcli.models.augment.AugmentParams`)."""
        return raw

    # --- extractors ---------------------------------------------------------------------
    def check_train(self, col: str, train_data) -> None:
        """Refuse (DataError) a column whose train data its extractors would learn nothing
        from."""

    def build_extractor(self, name: str, params: dict | None):
        """The extractor a config entry of ``extract.<kind>`` names."""
        from mmcli.extractors.base import build_extractor

        return build_extractor(name, self.name, params)

    def load_extractor(self, state: dict, arrays: dict, files: dict):
        """A fitted extractor of this kind's column from its saved state (see
        :func:`mmcli.stages.extract.save_plan`)."""
        from mmcli.extractors import EXTRACTORS

        return EXTRACTORS.get(state["name"]).from_state(state, arrays, files)

    def extractor_names(self) -> list[str]:
        """The extractor names ``extract.<kind>`` accepts (for messages and listings)."""
        from mmcli.extractors import EXTRACTORS

        return EXTRACTORS.names(kind=self.name)

