"""One command tree (``paintings verify|search|index|map|classify|...``, older top-level names as hidden
aliases), choices listed in ``--help``, one ``--devices`` parser, global ``-v/-q``, and library errors
shown with the flag of the parameter they name."""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.cli import choices
from artlens.cli.common import command_flags, error_message, flag_for, option_names, parse_devices
from artlens.errors import InputNotFoundError, InvalidImageError, InvalidParameterError, UnreadableInputError

PAINTINGS = ["import", "verify", "index", "search", "map", "classify", "train-verifier", "train-encoder"]


def test_paintings_group_holds_every_paintings_command(cli) -> None:
    code, out, _ = cli("paintings", "--help")
    assert code == 0
    for name in PAINTINGS:
        assert f" {name} " in out, name
    for args in (["paintings", "classify", "train"], ["paintings", "classify", "predict"],
                 ["paintings", "verify"], ["paintings", "train-verifier"], ["paintings", "map"]):
        code, out, _ = cli(*args, "--help")
        assert code == 0 and "Usage" in out, args


def test_old_names_are_hidden_aliases_with_the_same_options(cli) -> None:
    code, root, _ = cli("--help")
    assert code == 0
    listed = set(re.findall(r"^│ ([a-z-]+) ", root.split("Commands")[1], flags=re.M))
    assert {"threads", "paintings", "serve"} <= listed
    for alias in ("verify", "index", "search", "map", "classify"):
        assert alias not in listed, alias  # hidden from the list...
        code, old, _ = cli(alias, "--help")  # ...but still there,
        code2, new, _ = cli("paintings", alias, "--help")
        assert code == code2 == 0
        assert _flags(old) == _flags(new), alias  # same options (classify: same subcommands)
        assert len(_flags(old)) > 2 if alias != "classify" else "predict" in old and "predict" in new
    assert "older names" in root


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text))


def test_group_commands_are_regular() -> None:
    import typer

    from artlens.cli.main import app

    root = typer.main.get_command(app)
    groups = {name for name, c in root.commands.items() if hasattr(c, "commands") and not c.hidden}
    assert groups == {"threads", "canvas", "paintings", "beneath", "catalog", "collect", "synth"}
    assert {"serve", "demo"} <= set(root.commands)


def test_paintings_search_end_to_end(cli, tmp_path: Path) -> None:
    coll = tmp_path / "coll"
    coll.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(coll / f"p{i}.png")
    idx = tmp_path / "idx"
    code, out, err = cli("paintings", "index", coll, "--index", idx, "--embedder", "colour-histogram", "--json",
                         "--no-catalog")
    assert code == 0, err
    assert json.loads(out)["images"] == 4
    code, out, err = cli("paintings", "search", coll / "p2.png", "--index", idx, "-k", "2", "--json", "--no-catalog")
    assert code == 0, err
    assert Path(json.loads(out)["results"][0]["path"]).name == "p2.png"
    code, out, err = cli("-q", "paintings", "search", coll / "p2.png", "--index", idx, "-k", "2", "--no-catalog")
    assert code == 0 and out == "", out  # -q: no prose
    code, out, err = cli("-q", "paintings", "search", coll / "p2.png", "--index", idx, "-k", "2", "--json",
                         "--no-catalog")
    assert code == 0 and json.loads(out)["results"], err  # ... but --json output always


def test_help_lists_the_choices(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # room for the metavars
    for args, listing in [(["threads", "count"], "[spectral|cnn|both]"), (["threads", "count"], "[local|ray]"),
                          (["paintings", "index"], "[auto|flat|hnsw|ivf|pq]"), (["paintings", "index"], "[fp32|bf16]"),
                          (["paintings", "classify", "train"], "[two_branch|global|patch]"),
                          (["beneath", "compare"], "[pixel|gat|gcn|residual]"),
                          (["catalog", "export"], "[csv|parquet]"), (["canvas", "match"], "[auto|cpu|cuda|cuda:N]")]:
        code, out, _ = cli(*args, "--help")
        assert code == 0 and listing in out, (args, listing)


def test_invalid_choice_is_one_line_exit_7(cli, tmp_path: Path) -> None:
    code, _, err = cli("threads", "count", tmp_path / "x.tif", "--out", tmp_path / "o", "--method", "fft")
    assert code == 7 and err.strip() == "error: --method must be spectral, cnn or both, got 'fft'"
    code, _, err = cli("paintings", "train-verifier", "--data", tmp_path, "--out", tmp_path / "r", "--kind", "x")
    assert code == 7 and "--kind must be metric or siamese" in err and "Traceback" not in err
    code, _, err = cli("canvas", "compare", tmp_path / "a.tif", tmp_path / "b.tif", "--aggregation", "max")
    assert code == 7 and "--aggregation must be mean, trimmed or median, got 'max'" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()  # refused before any work


def test_cli_choices_match_the_library() -> None:
    from artlens.beneath.compare import METHODS as BENEATH_METHODS
    from artlens.beneath.compare import OTHER_MODALITIES
    from artlens.beneath.graphs import POLARITIES, SEGMENTATIONS
    from artlens.beneath.registration import METHODS as REGISTRATIONS
    from artlens.canvas.clusters import LINKAGES
    from artlens.canvas.threads.run import METHODS as COUNT_METHODS
    from artlens.catalog.export import FORMATS
    from artlens.catalog.schema import TABLES
    from artlens.engine import ENGINES
    from artlens.paintings.search import INDEX_TYPES

    def values(enum: type) -> set[str]:
        return {c.value for c in enum}

    assert values(choices.CountMethod) == set(COUNT_METHODS)
    assert values(choices.Engine) == set(ENGINES)
    assert values(choices.BeneathMethod) == set(BENEATH_METHODS)
    assert values(choices.Modality) == set(OTHER_MODALITIES)
    assert values(choices.Polarity) == set(POLARITIES)
    assert values(choices.Segmentation) == set(SEGMENTATIONS)
    assert values(choices.Registration) == set(REGISTRATIONS)
    assert values(choices.ExportFormat) == set(FORMATS.values())
    assert values(choices.CatalogTable) == set(TABLES)
    assert values(choices.IndexType) == set(INDEX_TYPES)
    assert values(choices.Linkage) == set(LINKAGES)


def test_one_devices_parser(cli, tmp_path: Path) -> None:
    assert parse_devices("1") == 1 and parse_devices("4") == 4
    assert parse_devices("auto") == "auto" and parse_devices("-1") == "-1" and parse_devices("0,1") == "0,1"
    with pytest.raises(InvalidParameterError, match="--devices"):
        parse_devices("two")
    for args in (["threads", "train"], ["canvas", "train"], ["beneath", "train"]):
        code, _, err = cli(*args, "--out", tmp_path / "r", "--devices", "gpu0")
        assert code == 7 and "--devices must be" in err, (args, err)


def test_errors_name_the_flag_of_their_parameter() -> None:
    assert flag_for("window_cm") == "--window-cm" and flag_for("max_angle_deg") == "--max-angle"
    err = InvalidImageError("window_cm 1 cm is 200 px but the plate is 100 px; use window_cm 0.50 or less",
                            param="window_cm")
    assert error_message(err) == "--window-cm 1 cm is 200 px but the plate is 100 px; use --window-cm 0.50 or less"
    err = InvalidParameterError("band needs 0 < min < max", param="band")
    assert error_message(err) == "--band needs 0 < min < max"
    assert error_message(InvalidParameterError("unknown method 'x'", param="method")) == "--method: unknown method 'x'"
    assert error_message(InvalidParameterError("--page 3 does not exist", param="page")) == "--page 3 does not exist"
    assert error_message(InvalidParameterError("no parameter")) == "no parameter"
    # the running command's own flag comes first (classify train's label_column is --label)
    assert error_message(InvalidParameterError("label_column 'x' unknown", param="label_column"),
                         {"label_column": "--label"}) == "--label 'x' unknown"


def test_backticked_parameters_and_functions_become_flags_and_commands() -> None:
    # a library message writes what it advises in backticks; the CLI says it with flags and commands
    err = InvalidParameterError("idx was built by another embedder: pass the same `embedder`, or start over with "
                                "`rebuild=True`", param="embedder")
    index_flags = {"embedder": "--embedder", "rebuild": "--rebuild"}  # artlens index's own options
    assert error_message(err, index_flags) == ("idx was built by another embedder: pass the same --embedder, or "
                                               "start over with --rebuild")
    err = InvalidParameterError("umap is missing (or use `method='tsne'`)", param="method")
    assert error_message(err) == "umap is missing (or use --method tsne)"
    err = InvalidParameterError("`date_from` 1900 is after `date_to` 1800", param="date_from")
    assert error_message(err, {"date_from": "--date-from", "date_to": "--date-to"}) == \
        "--date-from 1900 is after --date-to 1800"
    # another command's option (from `options`) and a library function with a command
    err = UnreadableInputError("idx: damaged; rebuild it with `build_index` (`rebuild=True`)")
    assert error_message(err, {}, {"rebuild"}) == ("idx: damaged; rebuild it with "
                                                   "`artlens index COLLECTION --index DIR` (--rebuild)")
    # names that are no parameter of any command stay as they are
    assert error_message(InvalidParameterError("takes `a` and no `b`")) == "takes `a` and no `b`"


def test_command_flags_follow_the_arguments() -> None:
    import typer

    from artlens.cli.main import app

    root = typer.main.get_command(app)
    flags = command_flags(root, ["-q", "paintings", "classify", "train", "--data", "x"])
    assert flags["label"] == "--label" and flags["feature_pooling"] == "--features"
    assert command_flags(root, ["threads", "count", "p.tif"])["max_angle"] == "--max-angle"
    names = option_names(root)  # every command's options, for the backticked names of library messages
    assert {"rebuild", "date_from", "drop_rare", "max_angle"} <= names and not {"a", "b"} & names


def test_errors_keep_their_param_through_pickling() -> None:
    err = pickle.loads(pickle.dumps(InputNotFoundError("x.tif: no such file", param="plate")))
    assert err.param == "plate" and err.exit_code == 3 and isinstance(err, FileNotFoundError)
    assert InvalidParameterError("plain").param is None


def test_verbose_and_quiet(cli, tmp_path: Path) -> None:
    code, _, err = cli("-v", "-q", "catalog", "list")
    assert code == 7 and "not both" in err
    code, out, _ = cli("-q", "--version")
    assert code == 0 and out.startswith("artlens ")
    assert logging.getLogger("artlens").level == logging.NOTSET  # each in-process run is undone
