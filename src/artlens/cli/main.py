"""``artlens`` command: parses arguments, calls the library, prints results.

Errors meant for users (:class:`~artlens.errors.ArtlensError`) are printed as one line on stderr
with their own exit code; warnings as ``notice:`` lines.
"""

from __future__ import annotations

import sys
import warnings

import typer

from artlens import __version__
from artlens.cli import beneath as beneath_cmd
from artlens.cli import canvas as canvas_cmd
from artlens.cli import catalog as catalog_cmd
from artlens.cli import classify as classify_cmd
from artlens.cli import collect as collect_cmd
from artlens.cli import demo as demo_cmd
from artlens.cli import encoders as encoders_cmd
from artlens.cli import paintings as paintings_cmd
from artlens.cli import search as search_cmd
from artlens.cli import serve as serve_cmd
from artlens.cli import synth as synth_cmd
from artlens.cli import threads as threads_cmd
from artlens.cli import verify as verify_cmd
from artlens.errors import ArtlensError

app = typer.Typer(
    name="artlens",
    help="Tools for technical art history: canvas thread counting, painting comparison, looking beneath.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(threads_cmd.app, name="threads")
app.add_typer(synth_cmd.app, name="synth")
app.add_typer(canvas_cmd.app, name="canvas")
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(collect_cmd.app, name="collect")
app.add_typer(paintings_cmd.app, name="paintings")
app.add_typer(beneath_cmd.app, name="beneath")
app.add_typer(classify_cmd.app, name="classify")
app.command("demo")(demo_cmd.demo)
app.command("index")(search_cmd.index)
app.command("search")(search_cmd.search)
app.command("map")(search_cmd.map_)
app.command("verify")(verify_cmd.verify)
app.command("serve")(serve_cmd.serve)
paintings_cmd.app.command("train-verifier")(verify_cmd.train_verifier)
paintings_cmd.app.command("train-encoder")(encoders_cmd.train_encoder)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"artlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the artlens version and exit."),
) -> None:
    """artlens command-line interface."""


def _notice(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"notice: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``artlens`` script."""
    warnings.showwarning = _notice
    try:
        app(args=argv, prog_name="artlens")
    except ArtlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
