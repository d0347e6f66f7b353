"""``artlens`` command: parses arguments, calls the library, prints results.

The command tree, one group per domain, each group assembled in its own module::

    artlens threads   count | train | sample | import-labels        (cli/threads.py)
    artlens canvas    compare | match | train                       (cli/canvas.py)
    artlens paintings import | verify | search | index | map | classify ... |
                      train-verifier | train-encoder                (cli/paintings.py)
    artlens beneath   compare | train                               (cli/beneath.py)
    artlens catalog   list | export                                 (cli/catalog.py)
    artlens collect   met | aic | artsy | wikiart                   (cli/collect.py)
    artlens synth     plate                                         (cli/synth.py)
    artlens serve | demo                                            (cli/serve.py, cli/demo.py)

The older top-level names ``verify``, ``index``, ``search``, ``map`` and ``classify`` still work,
with the same options, as hidden aliases of their ``paintings`` commands.

Errors meant for users (:class:`~artlens.errors.ArtlensError`) are printed as one line on stderr
with their own exit code, an error about a library parameter naming the flag that sets it
(:func:`artlens.cli.common.error_message`); warnings as ``notice:`` lines. ``-v``/``-q`` on the
root command set the level of the ``artlens.*`` loggers and, with ``-q``, silence prose, progress
and notices (never ``--json`` output or errors).
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

import typer

from artlens import __version__
from artlens.cli import beneath as beneath_cmd
from artlens.cli import canvas as canvas_cmd
from artlens.cli import catalog as catalog_cmd
from artlens.cli import collect as collect_cmd
from artlens.cli import demo as demo_cmd
from artlens.cli import paintings as paintings_cmd
from artlens.cli import serve as serve_cmd
from artlens.cli import synth as synth_cmd
from artlens.cli import threads as threads_cmd
from artlens.cli.common import command_flags, error_message, option_names, quiet, reset_verbosity, set_verbosity
from artlens.errors import ArtlensError, MissingExtraError
from artlens.extras import missing_extra

app = typer.Typer(
    name="artlens",
    help="Tools for technical art history: canvas thread counting, painting comparison, looking beneath.",
    epilog="The older names 'artlens verify', 'index', 'search', 'map' and 'classify' still work: they are "
           "'artlens paintings verify', 'paintings index', ... under another name.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(threads_cmd.app, name="threads")
app.add_typer(canvas_cmd.app, name="canvas")
app.add_typer(paintings_cmd.app, name="paintings")
app.add_typer(beneath_cmd.app, name="beneath")
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(collect_cmd.app, name="collect")
app.add_typer(synth_cmd.app, name="synth")
app.command("serve")(serve_cmd.serve)
app.command("demo")(demo_cmd.demo)

# aliases: the top-level names that came before the 'paintings' group, same functions and options
for _name, _command in paintings_cmd.ALIASES.items():
    app.command(_name, hidden=True)(_command)
app.add_typer(paintings_cmd.classify_app, name="classify", hidden=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"artlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the artlens version and exit."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True,
                                help="More log messages from artlens (-v: info, -vv: debug)."),
    quiet_: bool = typer.Option(False, "-q", "--quiet",
                                help="Only --json output and errors: no prose, progress or notices."),
) -> None:
    """artlens command-line interface."""
    set_verbosity(verbose, quiet_)


def _notice(message: Warning | str, category: type[Warning], filename: str, lineno: int,
            file: TextIO | None = None, line: str | None = None) -> None:
    if not quiet():
        print(f"notice: {message}", file=sys.stderr)


def _flags(argv: list[str] | None) -> tuple[dict[str, str], set[str]]:
    """Parameter -> flag of the command that ``argv`` runs, and the option names of every command
    (for :func:`error_message`)."""
    try:
        root = typer.main.get_command(app)
        return command_flags(root, sys.argv[1:] if argv is None else argv), option_names(root)
    except Exception:  # noqa: BLE001  (a best effort for a message: never hide the error itself)
        return {}, set()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``artlens`` script."""
    warnings.showwarning = _notice
    try:
        app(args=argv, prog_name="artlens")
    except ArtlensError as exc:
        flags, options = _flags(argv) if exc.param or "`" in str(exc) else ({}, set())
        print(f"error: {error_message(exc, flags, options)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:  # an optional part of artlens that is not installed
        message = missing_extra(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(MissingExtraError.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        reset_verbosity()  # in-process callers (tests) start each run afresh


if __name__ == "__main__":
    main()
