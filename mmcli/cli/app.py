"""The mmcli command line: commands registered explicitly, in pipeline order."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mmcli import __version__
from mmcli.cli import console, evaluate, extract, fuse, predict, preprocess, run, show, train

app = typer.Typer(
    name="mmcli",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help: typer's rich help imports rich.markdown and markdown-it (80 ms of the 0.25 s
    # start-up budget, docs/performance.md); the docstrings are plain text anyway
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"mmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print nothing but errors.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also print details, e.g. every item left out.")] = False,
    log_format: Annotated[str, typer.Option(
        "--log-format", envvar="MMCLI_LOG_FORMAT",
        help="text (rich on a terminal, plain lines otherwise) or json (one JSON object per "
        "line on stderr, for log collectors).")] = "text",
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 6 (partial success) when items were left out.")] = False,
) -> None:
    """Batch multimodal machine learning: preprocess -> extract -> fuse -> train -> eval, and
    predict on new data. Every stage reads and writes a directory.

    Global options go before the command: mmcli --log-format json --strict preprocess ...
    """
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r} is not one of text, json",
                                 param_hint="--log-format")
    console.configure(quiet=quiet, log_format=log_format, verbose=verbose, strict=strict)
    ctx.call_on_close(console.reset)  # nothing of this invocation outlives it


app.command("preprocess")(preprocess.command)
app.command("extract")(extract.command)
app.command("fuse")(fuse.command)
app.command("train")(train.command)
app.command("eval")(evaluate.command)
app.command("predict")(predict.command)
app.command("run")(run.command)
app.command("show")(show.command)


def main() -> None:
    # numpy's and scipy's OpenBLAS with one thread in the stage's own process, as in its
    # workers (mmcli.parallel): the main process's fits and products are small, and a thread
    # pool per product made them 2-6x slower on the 2-core machine, more when something else
    # ran (parallel.one_thread, docs/performance.md). Set before numpy loads; a value
    # the user set is kept. torch's threads are its own.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    app()
