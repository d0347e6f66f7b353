"""What every command shares: output (prose, JSON, progress) under the global ``-v/-q``, the
``--device`` and ``--devices`` options and their one parser, choice options listed in ``--help``,
and the one-line form of an :class:`~artlens.errors.ArtlensError` with parameters shown as flags.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import typer

from artlens.devices import DEVICE_HELP, is_rank_zero
from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError

# --- global verbosity (-v / -q on the root command) --------------------------------------------------

_state = {"verbosity": 0}
"""0: normal; 1 and 2: ``-v`` / ``-vv``; -1: ``-q`` (only ``--json`` output and errors)."""


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records of ``artlens.*`` on whatever ``sys.stderr`` is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def set_verbosity(verbose: int, quiet: bool) -> None:
    """Apply the root command's ``-v`` (repeatable) and ``-q``: the level of the ``artlens.*``
    loggers (WARNING by default, INFO with ``-v``, DEBUG with ``-vv``, ERROR with ``-q``) and whether
    prose, progress and ``notice:`` lines are printed."""
    if verbose and quiet:
        raise InvalidParameterError("give -v/--verbose or -q/--quiet, not both")
    level = -1 if quiet else min(verbose, 2)
    _state["verbosity"] = level
    logger = logging.getLogger("artlens")
    logger.setLevel({-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}[level])
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def reset_verbosity() -> None:
    """Undo :func:`set_verbosity` (the CLI's handler and level), for callers that run many commands in
    one process."""
    _state["verbosity"] = 0
    logger = logging.getLogger("artlens")
    logger.setLevel(logging.NOTSET)
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)


def quiet() -> bool:
    """True under ``-q``."""
    return _state["verbosity"] < 0


def echo(message: str = "", *, err: bool = False) -> None:
    """Prose for people (results in words, where files went, hints): not printed under ``-q``, nor by the
    further processes of a multi-device (DDP) training run (:func:`artlens.devices.is_rank_zero`)."""
    if not quiet() and is_rank_zero():
        typer.echo(message, err=err)


def echo_json(obj: object, **kwargs: Any) -> None:
    """Machine-readable output (``--json``): printed whatever ``-q`` says, by rank 0 only in a DDP run."""
    if is_rank_zero():
        typer.echo(json.dumps(obj, **kwargs))


def notice(message: str) -> None:
    """A ``notice:`` line on stderr (not under ``-q``)."""
    if not quiet():
        print(f"notice: {message}", file=sys.stderr)


def show_progress(as_json: bool = False) -> bool:
    """Whether to draw progress bars: on a terminal, without ``--json`` and without ``-q``."""
    return not as_json and not quiet() and sys.stderr.isatty()


# --- the summary of a resumable batch command ------------------------------------------------------------


class BatchSummary(Protocol):
    """What :func:`echo_batch_summary` reads of a batch command's report (``count_plates``, ``predict_folder``,
    ``compare_pairs``, ``verify_pairs_batch``)."""

    total: int
    new: int
    done_before: int
    skipped: int
    skipped_before: int
    skipped_csv: str | None


def echo_batch_summary(report: BatchSummary, *, noun: str, again: str, results: tuple[str, str],
                       duplicate: str | None = None, notes: Sequence[str] = ()) -> None:
    """Print a resumable batch command's summary (:func:`echo`: not under ``-q``).

    ``N NOUN: a new, b done before, c skipped``, then ``(d skipped before; --retry-skipped AGAIN)`` when some
    were, and ``, e DUPLICATE (one row serves both)`` when ``duplicate`` is given and the report counts any
    (its ``duplicates``); then the ``notes`` lines, ``NAME: PATH`` of ``results`` and ``skipped: PATH`` when
    ``skipped.csv`` lists any item.

    Example:
        >>> from types import SimpleNamespace as R
        >>> echo_batch_summary(R(total=4, new=1, done_before=2, skipped=1, skipped_before=1, duplicates=0,
        ...                      skipped_csv=None), noun="plates", again="counts them again",
        ...                    results=("plates", "out/plates.csv"))
        4 plates: 1 new, 2 done before, 1 skipped (1 skipped before; --retry-skipped counts them again)
        plates: out/plates.csv
    """
    line = f"{report.total} {noun}: {report.new} new, {report.done_before} done before, {report.skipped} skipped"
    if report.skipped_before:
        line += f" ({report.skipped_before} skipped before; --retry-skipped {again})"
    duplicates = getattr(report, "duplicates", 0)
    if duplicate and duplicates:
        line += f", {duplicates} {duplicate} (one row serves both)"
    echo(line)
    for note in notes:
        echo(note)
    echo(f"{results[0]}: {results[1]}")
    if report.skipped_csv:
        echo(f"skipped: {report.skipped_csv}")


# --- --device and --devices ----------------------------------------------------------------------------


def device_option(what: str = "") -> Any:
    """The ``--device auto|cpu|cuda|cuda:N`` option of an inference command (checked by
    :func:`artlens.devices.resolve_device`); ``what`` says which part uses it, e.g. ``"Siamese fabric
    models"``."""
    return typer.Option("auto", "--device", metavar="[auto|cpu|cuda|cuda:N]",
                        help=DEVICE_HELP + (f" ({what})." if what else ""))


_DEVICES = re.compile(r"^(auto|-1|\d+|\d+(,\d+)*,?)$")

DEVICES_HELP = ("Devices to train on: a number (>1 trains with DDP), 'auto', -1 (all) or a list of GPU "
                "indices such as 0,1.")


def devices_option(default: str = "1") -> Any:
    """The ``--devices`` option of a training command (parsed by :func:`parse_devices`)."""
    return typer.Option(default, "--devices", metavar="[N|auto|-1|I,J]", help=DEVICES_HELP)


def parse_devices(text: str) -> int | str:
    """``--devices`` as Lightning takes it: a count as an int (``"2"`` -> 2), anything else (``"auto"``,
    ``"-1"``, ``"0,1"``) as the string.

    Example:
        >>> parse_devices("2"), parse_devices("auto"), parse_devices("0,1")
        (2, 'auto', '0,1')
    """
    spec = text.strip().lower()
    if not _DEVICES.match(spec):
        raise InvalidParameterError(f"--devices must be a number, auto, -1 or GPU indices like 0,1; got {text!r}",
                                    param="devices")
    return int(spec) if spec.isdigit() else spec


def ddp_strategy(devices: int | str) -> str:
    """``"ddp"`` for more than one device given as a count, else ``"auto"`` (Lightning chooses)."""
    return "ddp" if isinstance(devices, int) and devices > 1 else "auto"


# --- choices -----------------------------------------------------------------------------------------


def _listing(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def choice_option(default: str | None, *flags: str, choices: type[StrEnum], help: str,  # noqa: A002
                  checked_by_library: bool = False) -> Any:
    """An option whose valid values are the members of ``choices``: ``--help`` lists them, and any
    other value is refused before any work with ``FLAG must be A, B or C, got 'X'`` (exit code 7).

    With ``checked_by_library`` the value is passed on unchecked, because the library function it goes
    to refuses it itself (with its own message); ``--help`` still lists the choices. The command
    receives the plain string (``None`` for an optional option left out)."""
    values = [c.value for c in choices]
    flag = next((f for f in flags if f.startswith("--")), flags[0])

    def check(value: str | None) -> str | None:
        if value is None or checked_by_library:
            return value
        value = str(value)
        if value not in values:
            raise InvalidParameterError(f"{flag} must be {_listing(values)}, got {value!r}")
        return value

    return typer.Option(default, *flags, metavar="[" + "|".join(values) + "]", callback=check, help=help)


# --- errors: parameters shown as flags ------------------------------------------------------------------

PARAM_FLAGS: dict[str, str] = {
    "max_angle_deg": "--max-angle",
    "n_permutations": "--permutations",
    "n_patches": "--patches",
    "n_tiles": "--tiles",
    "max_epochs": "--epochs",
    "images_dir": "--images",
    "other_modality": "--modality",
    "use_catalog": "--no-catalog",
    "page_index": "--page",
    "timeout_s": "--timeout",
    "backoff_s": "--backoff",
    "index_dir": "--index",
    "feature_pooling": "--features",
    "references": "--reference",
}
"""Library parameter names whose command-line flag is not ``--`` + the name with ``-`` for ``_``
(and that the command at hand does not name itself: its own options come first)."""


def flag_for(param: str, command_flags: dict[str, str] | None = None) -> str:
    """The flag that sets library parameter ``param``: the running command's own option of that name,
    else :data:`PARAM_FLAGS`, else ``--`` + the name with dashes.

    Example:
        >>> flag_for("window_cm"), flag_for("max_angle_deg")
        ('--window-cm', '--max-angle')
    """
    if command_flags and param in command_flags:
        return command_flags[param]
    return PARAM_FLAGS.get(param) or "--" + param.replace("_", "-")


LIBRARY_COMMANDS: dict[str, str] = {
    "build_index": "artlens index COLLECTION --index DIR",
    "train_verifier": "artlens paintings train-verifier",
}
"""Library functions that a message may name in backticks (`` `build_index` ``), and the command that
does the same on the command line."""

_QUOTED = re.compile(r"`([A-Za-z_]\w*)(?:=([^`]*))?`")
"""A name in backticks, with an optional ``=value``: `` `rebuild=True` ``, `` `method='tsne'` ``."""


def _flag_setting(flag: str, value: str | None) -> str | None:
    """``name=value`` on the command line: ``--flag`` (True), ``--flag value``; None where a flag
    cannot say it (False)."""
    if value is None or value == "True":
        return flag
    if value in ("False", "None"):
        return None
    return flag + " " + value.strip().strip("'\"")


def error_message(exc: BaseException, command_flags: dict[str, str] | None = None,
                  options: Iterable[str] = ()) -> str:
    """The one-line message of ``exc`` for the command line: an error about a parameter
    (:attr:`ArtlensError.param`) names the flag that sets it. The parameter's name is replaced by the
    flag where the message uses it as a name (it contains ``_`` or starts the message); otherwise the
    flag is put in front. A parameter whose name is a plain word (``page``, ``method``) is replaced only
    where it starts the message.

    Library messages write the parameters and functions they advise on in backticks
    (`` `rebuild=True` ``, `` `out` ``, `` `build_index` ``): a parameter known here (the error's own,
    one of the running command's ``command_flags``, :data:`PARAM_FLAGS`, or one of ``options``, the
    option names of any artlens command) becomes its flag (``--rebuild``; ``--method tsne`` for
    `` `method='tsne'` ``), a function of :data:`LIBRARY_COMMANDS` its command; other backticked text
    is left as it is.

    Example:
        >>> error_message(InvalidParameterError("window_cm is only 3 px at 200 px/cm", param="window_cm"))
        '--window-cm is only 3 px at 200 px/cm'
        >>> error_message(InvalidParameterError("unknown method 'x'", param="method"))
        "--method: unknown method 'x'"
        >>> error_message(InvalidParameterError("idx holds other vectors; start over with `rebuild=True`",
        ...                                     param="rebuild"))
        'idx holds other vectors; start over with --rebuild'
    """
    message = " ".join(str(exc).split("\n")) if str(exc) else type(exc).__name__
    param = getattr(exc, "param", None)
    known = {param, *(command_flags or {}), *PARAM_FLAGS, *options}

    def quoted(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if value is None and name in LIBRARY_COMMANDS:
            return f"`{LIBRARY_COMMANDS[name]}`"
        if name not in known:
            return m.group(0)
        return _flag_setting(flag_for(name, command_flags), value) or m.group(0)

    message = _QUOTED.sub(quoted, message)
    if not param:
        return message
    flag = flag_for(param, command_flags)
    if flag in message:
        return message
    name = re.compile(rf"(?<![\w-]){re.escape(param)}(?![\w-])")
    if "_" in param and name.search(message):  # an identifier: every mention is the parameter
        return name.sub(flag, message)
    if message.startswith(param) and name.match(message):  # a plain word: only as the sentence's subject
        return flag + message[len(param):]
    return f"{flag}: {message}"


def option_names(command: Any) -> set[str]:
    """The parameter names of every option of ``command`` and of its subcommands, at any depth."""
    names = {p.name for p in getattr(command, "params", [])
             if getattr(p, "param_type_name", "") == "option" and p.name}
    for sub in (getattr(command, "commands", None) or {}).values():
        names |= option_names(sub)
    return names


def command_flags(command: Any, args: Iterable[str]) -> dict[str, str]:
    """Parameter name -> long flag of the (sub)command that ``args`` invoke on the click ``command``."""
    cmd = command
    for token in args:
        commands = getattr(cmd, "commands", None)
        if commands is None:
            break
        if token.startswith("-"):
            continue
        if token not in commands:
            break
        cmd = commands[token]
    flags: dict[str, str] = {}
    for p in getattr(cmd, "params", []):
        opts = [o for o in getattr(p, "opts", []) if o.startswith("--")]
        if getattr(p, "param_type_name", "") == "option" and opts and p.name:
            flags[p.name] = opts[0]
    return flags


# --- files -------------------------------------------------------------------------------------------------


def read_pairs_csv(path: Path) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` from a CSV with columns ``a,b``; relative paths resolve against the CSV's folder
    (or the working directory when they exist there)."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableInputError(f"{path}: not a readable CSV ({exc})") from None
    if rows and not {"a", "b"} <= set(rows[0]):
        raise InvalidParameterError(f"{path}: needs columns 'a' and 'b'")

    def where(p: str) -> str:
        q = Path(p)
        return str(q if q.is_absolute() or q.exists() else path.parent / q)

    return [(where(r["a"] or ""), where(r["b"] or "")) for r in rows]


__all__ = ["DEVICES_HELP", "PARAM_FLAGS", "BatchSummary", "choice_option", "command_flags",
           "ddp_strategy", "device_option", "devices_option", "echo", "echo_batch_summary", "echo_json",
           "error_message", "flag_for",
           "notice", "parse_devices", "quiet", "read_pairs_csv", "reset_verbosity", "set_verbosity", "show_progress"]
