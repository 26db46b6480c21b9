"""What ``mmcli extract --list`` and ``--show-config`` print, read from the registry.

Each extractor's docstring holds its summary, an ``Output dimension:`` line and a
``Parameters:`` section with one ``name: meaning`` line per field of its ``Params``.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from mmcli.extractors.base import EXTRACTORS
from mmcli.kinds import get_kind, kind_names


@dataclass
class Param:
    name: str
    default: object
    help: str


@dataclass
class ExtractorInfo:
    name: str
    kind: str
    summary: str
    dimension: str
    params: list[Param]
    #: the docstring's description paragraphs (without the two sections)
    description: str


def describe(name: str) -> ExtractorInfo:
    """Name, kind, summary, output dimension and parameters (with defaults) of one extractor."""
    cls = EXTRACTORS.get(name)
    doc = inspect.cleandoc(cls.__doc__ or "").replace("``", "`")
    body, dimension, helps = [], "", {}
    section = None
    for line in doc.splitlines():
        if line.startswith("Output dimension:"):
            section, dimension = "dim", line.split(":", 1)[1].strip()
        elif line.strip() == "Parameters:":
            section = "params"
        elif section == "params" and line.strip():
            key, _, text = line.strip().partition(":")
            helps[key.strip()] = text.strip()
        elif section == "dim" and line.strip():
            dimension += " " + line.strip()
        elif section is None:
            body.append(line)
    description = "\n".join(body).strip()
    summary = " ".join(description.split("\n\n")[0].split())
    params = [Param(f.name, _default(f), helps.get(f.name, ""))
              for f in dataclasses.fields(cls.Params)]
    return ExtractorInfo(name, EXTRACTORS.tags(name)["kind"], summary, dimension, params,
                         description)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def all_extractors() -> list[ExtractorInfo]:
    """Every registered extractor, grouped by kind in pipeline order, then by name."""
    return [describe(n) for kind in kind_names() for n in EXTRACTORS.names(kind=kind)]


def default_extractors() -> dict[str, list[str]]:
    from mmcli.config import ExtractConfig

    config = ExtractConfig()
    return {kind: list(getattr(config, kind)) for kind in kind_names()}


def format_list() -> str:
    """The text of ``mmcli extract --list``: every extractor by kind, defaults marked."""
    import textwrap

    defaults = default_extractors()
    lines: list[str] = []
    for kind in kind_names():
        lines.append(f"{kind} (default: {', '.join(defaults[kind])})")
        if get_kind(kind).extractors_note:
            lines += textwrap.wrap(get_kind(kind).extractors_note, 94, initial_indent="  ",
                                   subsequent_indent="  ")
        for info in (i for i in all_extractors() if i.kind == kind):
            lines.append(f"  {info.name}")
            lines += textwrap.wrap(info.summary.replace("`", ""), 92, initial_indent="      ",
                                   subsequent_indent="      ")
            lines.append(f"      dimension: {info.dimension.replace('`', '')}")
            for p in info.params:
                lines.append(f"      {p.name} = {_yaml_scalar(p.default)}  {p.help}".rstrip())
        lines.append("")
    lines.append("Choose per kind in the config, e.g. extract: {image: [color_hist, hog]}; "
                 "print one's defaults as YAML with mmcli extract --show-config NAME.")
    lines.append("NAME(auto), e.g. frames(auto), uses the extractor only where it suits the "
                 "train data (its description says when); decided at fit and kept.")
    return "\n".join(lines)


def _yaml_scalar(value) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text


def default_config_yaml(name: str) -> str:
    """An editable config snippet selecting ``name`` with every parameter at its default."""
    info = describe(name)
    import textwrap

    lines = textwrap.wrap(f"{info.name}: {info.summary.replace('`', '')}", 96,
                          initial_indent="# ", subsequent_indent="# ")
    lines += [f"# output dimension: {info.dimension.replace('`', '')}", "extract:",
              f"  {info.kind}: [{info.name}]", "  params:", f"    {info.name}:"]
    if not info.params:
        lines[-1] += " {}"
    for p in info.params:
        if p.name == "seed":  # a fixed seed here would override the config's seed
            lines.append("      # seed: the config's seed unless set here")
            continue
        value = _yaml_scalar(p.default)
        if value == "''":
            value = '""'
        lines.append(f"      {p.name}: {value}" + (f"  # {p.help}" if p.help else ""))
    return "\n".join(lines) + "\n"


def markdown_reference() -> str:
    """The extractor reference of docs/extractors.md (one section per extractor)."""
    out = []
    for info in all_extractors():
        out += [f"### `{info.name}` ({info.kind})", "", info.description, "",
                f"Output dimension: {info.dimension}", "",
                "| parameter | default | meaning |", "|---|---|---|"]
        out += [f"| `{p.name}` | `{_yaml_scalar(p.default)}` | {p.help} |" for p in info.params]
        out.append("")
    return "\n".join(out)
