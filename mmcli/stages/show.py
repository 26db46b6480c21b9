"""show: what a stage directory is, where it came from, and whether it is intact and current.

:func:`describe` reads one stage directory: its stage, schema and mmcli version, resolved
config, sizes and item counts, its lineage (the ``inputs`` of its ``meta.json`` followed back to
the manifest while the recorded paths exist), whether every file still has the hash it was
written with, and whether it is up to date with its inputs (the check ``mmcli run`` makes:
:func:`mmcli.stages.run.why_stale`). :func:`describe_pipeline` does it for every stage of a
pipeline file, with the status ``mmcli run --dry-run`` would give.

Paths in ``meta.json`` are recorded as they were given, relative to the directory the stage ran
in; they are looked up from the current directory, then from the folders above the stage
directory (so ``mmcli show /abs/runs/x/model`` finds ``runs/x/fused`` from anywhere). The
up-to-date check runs from that folder, briefly made the current directory, because the input
record holds paths as the stage saw them.

Nothing here writes or locks anything.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from pathlib import Path

from mmcli import artifacts, storage
from mmcli.errors import ArtifactError, MmcliError


def describe(path: Path, lineage: bool = True, status: bool = True) -> dict:
    """A JSON-ready description of the stage directory ``path``.

    Raises :class:`ArtifactError` when ``path`` is no readable stage directory (missing, no or
    a corrupt ``meta.json``, an unknown schema); a directory whose files were modified is
    described, with ``intact`` false and ``problem`` naming the file.
    """
    path = Path(path)
    meta = _read_meta(path)
    stage = meta["stage"]
    info: dict = {
        "path": str(path),
        "stage": stage,
        "schema_version": meta["schema_version"],
        "mmcli_version": meta.get("versions", {}).get("mmcli"),
        "created": None,  # not recorded: a timestamp would break byte-identical outputs
        "written": _mtime(path / artifacts.META),
        "seed": meta.get("seed"),
        "config": meta.get("config", {}),
        "summary": meta.get("summary", {}),
        **_sizes(path, meta),
    }
    try:
        opened = artifacts.open_stage(path, stage, "mmcli show")
        info.update(intact=True, problem=None)
    except ArtifactError as exc:
        opened = None
        info.update(intact=False, problem=exc.message)
    if status:
        info.update(_status(path, meta, opened))
    if lineage:
        info["lineage"] = _lineage(path, meta, seen=set())
    return info


def describe_pipeline(path: Path) -> dict:
    """:func:`describe` for every stage directory of the pipeline file ``path``, with the
    action and reason of ``mmcli run --dry-run``."""
    from mmcli.stages.run import run_pipeline

    stages = []
    for plan in run_pipeline(Path(path), dry_run=True):
        entry: dict = {"stage": plan.stage, "path": str(plan.out),
                       "up_to_date": plan.action == "skipped", "reason": plan.reason,
                       "exists": (plan.out / artifacts.META).is_file()}
        if entry["exists"]:
            try:
                entry.update(describe(plan.out, lineage=False, status=False))
            except ArtifactError as exc:
                entry.update(intact=False, problem=exc.message)
        stages.append(entry)
    return {"pipeline": str(path), "stages": stages,
            "up_to_date": all(s["up_to_date"] for s in stages)}


def _read_meta(path: Path) -> dict:
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a directory",
                            "mmcli show needs a stage directory (or a pipeline file)")
    meta_path = path / artifacts.META
    if not meta_path.is_file():
        raise ArtifactError(f"{meta_path} is missing, so {path} is not a complete mmcli stage "
                            "directory", "re-run the stage that makes it")
    meta = artifacts.read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("stage") not in artifacts.MAKES \
            or "schema_version" not in meta:
        raise ArtifactError(f"{meta_path} is not an mmcli metadata record",
                            "re-run the stage that makes it")
    if meta["schema_version"] != artifacts.SCHEMA_VERSION:
        raise ArtifactError(
            f"{meta_path} has schema version {meta['schema_version']!r}; this mmcli reads "
            f"version {artifacts.SCHEMA_VERSION}",
            f"re-create it with this mmcli: `{artifacts.MAKES[meta['stage']]}`")
    return meta


def _mtime(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sizes(path: Path, meta: dict) -> dict:
    """Files and bytes of the recorded outputs, and the rows of the item tables."""
    outputs = meta.get("outputs", {})
    size = sum((path / rel).stat().st_size for rel in outputs if (path / rel).is_file())
    counts = {}
    for name in ("items.jsonl", "predictions.csv", "failures.csv"):
        if name in outputs and (path / name).is_file():
            with open(path / name, "rb") as f:
                lines = sum(1 for line in f if line.strip())
            counts[name] = lines - (name.endswith(".csv") and lines > 0)
    return {"files": len(outputs) + 1, "bytes": size + (path / artifacts.META).stat().st_size,
            "rows": counts}


def locate(recorded: str, stage_dir: Path) -> Path | str:
    """Where an input recorded in ``stage_dir``'s meta.json is now (see the module notes)."""
    if storage.is_url(recorded) or recorded == "media":
        return recorded
    p = Path(recorded)
    if p.is_absolute() or p.exists():
        return p
    for folder in Path(stage_dir).resolve().parents:
        if (folder / p).exists():
            return folder / p
    return p


def _status(path: Path, meta: dict, opened: artifacts.StageDir | None) -> dict:
    """Up to date with its inputs, by ``mmcli run``'s own check, and why not.

    The input record holds paths as the stage saw them (the media digest too), so the check
    runs from the folder the stage ran in when the recorded paths lead there.
    """
    from mmcli.stages.run import inputs_now, why_stale

    path = Path(path).absolute()
    with _working_dir(_ran_in(path, meta)):
        try:
            now = inputs_now(meta["stage"], meta)
            error = None
        except MmcliError as exc:
            now, error = None, exc

        def inputs() -> dict:
            if error is not None:
                raise error
            return now

        reason = why_stale(meta["stage"], path, meta.get("config", {}), inputs, old=opened)
    return {"up_to_date": reason is None, "reason": reason or "up to date",
            "inputs_now": now}


def _ran_in(path: Path, meta: dict) -> Path:
    """The folder the stage most likely ran in: the current one, or the first folder above
    ``path`` from which its relative input paths exist."""
    relative = [Path(k) for k in meta.get("inputs", {})
                if k != "media" and not storage.is_url(k) and not Path(k).is_absolute()]
    for folder in (Path.cwd(), *Path(path).resolve().parents):
        if all((folder / p).exists() for p in relative):
            return folder
    return Path.cwd()


@contextmanager
def _working_dir(folder: Path):
    """Run a block from ``folder`` (a no-op when it is the current directory)."""
    before = Path.cwd()
    if folder == before:
        yield
        return
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _lineage(path: Path, meta: dict, seen: set) -> list[dict]:
    """The recorded inputs of ``meta``, each with its own inputs while they exist."""
    nodes = []
    for key, digest in sorted(meta.get("inputs", {}).items()):
        node: dict = {"input": key, "sha256": digest}
        where = locate(key, path)
        if key == "media":
            node["kind"] = "media"  # a digest of every media file's path, size and mtime
        elif storage.is_url(where):
            node["kind"] = "url"
        elif (Path(where) / artifacts.META).is_file():
            node.update(kind="stage", found=str(where))
            now = artifacts.sha256_file(Path(where) / artifacts.META)
            node["changed"] = now != digest
            try:
                parent = _read_meta(Path(where))
                node["stage"] = parent["stage"]
                if str(Path(where).resolve()) in seen:
                    node["inputs"] = "shown above"
                else:
                    seen.add(str(Path(where).resolve()))
                    node["inputs"] = _lineage(Path(where), parent, seen)
            except ArtifactError as exc:
                node["problem"] = exc.message
        elif Path(where).exists():  # a manifest file, or a folder of Parquet files
            from mmcli.manifest import manifest_digest

            node.update(kind="manifest", found=str(where),
                        changed=manifest_digest(Path(where)) != digest)
        else:
            node.update(kind="missing")
        nodes.append(node)
    return nodes


def render(info: dict) -> str:
    """The text ``mmcli show DIR`` prints."""
    import yaml

    lines = [f"{info['path']}: {_a(info['stage'])} directory (schema {info['schema_version']}, "
             f"mmcli {info['mmcli_version']}, seed {info['seed']})",
             f"  written:    {info['written']} (meta.json's modification time; no creation "
             "time is recorded)",
             f"  size:       {info['files']} files, {_bytes(info['bytes'])}"]
    rows = ", ".join(f"{n} {name}" for name, n in info["rows"].items())
    if rows:
        lines.append(f"  rows:       {rows}")
    summary = _flat_summary(info["summary"])
    if summary:
        lines.append(f"  summary:    {summary}")
    lines.append("  intact:     " + ("yes (every file has its recorded sha256)"
                                     if info["intact"] else f"NO: {info['problem']}"))
    if "up_to_date" in info:
        lines.append("  up to date: " + ("yes" if info["up_to_date"]
                                         else f"no ({info['reason']})"))
    lines.append("  config:")
    text = yaml.safe_dump(info["config"], sort_keys=True, default_flow_style=None).rstrip()
    lines += [f"    {line}" for line in text.splitlines()] if info["config"] else ["    {}"]
    if "lineage" in info:
        lines.append("  lineage:")
        lines += _tree(info["lineage"], "    ")
    return "\n".join(lines)


def render_pipeline(info: dict) -> str:
    """The text ``mmcli show PIPELINE.yaml`` prints: one line per stage."""
    lines = [f"{'stage':<11}{'status':<42}{'items':>7}{'size':>10}  directory"]
    for s in info["stages"]:
        status = "up to date" if s["up_to_date"] else f"would run ({s['reason']})"
        rows = s.get("rows", {})
        items = rows.get("items.jsonl", rows.get("predictions.csv", ""))
        size = _bytes(s["bytes"]) if "bytes" in s else "-"
        lines.append(f"{s['stage']:<11}{status[:41]:<42}{items!s:>7}{size:>10}  {s['path']}")
    return "\n".join(lines)


def _tree(nodes: list, indent: str) -> list[str]:
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        branch, more = ("└─ ", "   ") if last else ("├─ ", "│  ")
        kind = node["kind"]
        if kind == "stage":
            state = "changed since" if node["changed"] else "as recorded"
            text = f"{node['input']}  ({node.get('stage', '?')} directory, {state})"
        elif kind == "manifest":
            state = "changed since" if node["changed"] else "as recorded"
            text = f"{node['input']}  (manifest, {state})"
        elif kind == "media":
            text = "media  (digest of the media files' paths, sizes and times)"
        elif kind == "url":
            text = f"{node['input']}  (remote, not followed)"
        else:
            text = f"{node['input']}  (not found)"
        if node.get("problem"):
            text += f": {node['problem']}"
        lines.append(indent + branch + text)
        if node.get("inputs") == "shown above":
            lines.append(indent + more + "└─ (inputs shown above)")
        elif node.get("inputs"):
            lines += _tree(node["inputs"], indent + more)
    return lines


def _flat_summary(summary: dict) -> str:
    parts = []
    for key, value in sorted(summary.items()):
        if isinstance(value, (int, float, str, bool)):
            parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
        elif isinstance(value, dict) and value and all(
                isinstance(v, (int, float, str)) for v in value.values()):
            parts.append(f"{key}=" + "/".join(f"{k}:{v}" for k, v in value.items()))
    return ", ".join(parts)


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _a(stage: str) -> str:
    return f"an '{stage}'" if stage[0] in "aeiou" else f"a '{stage}'"
