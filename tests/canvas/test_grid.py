"""One window grid (canvas/threads/grid.py) for every thread counter, and the modules around it."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from artlens.canvas.threads import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM, SpectralParams, WindowGrid, count_threads
from artlens.canvas.threads.grid import check_window
from artlens.errors import InvalidImageError, InvalidParameterError

THREADS = Path(__file__).resolve().parents[2] / "src" / "artlens" / "canvas" / "threads"


def test_grid_by_hand():
    # 550 x 700 px at 200 px/cm: 200 px windows every 100 px; (550 - 200) // 100 + 1 = 4 rows, the 50 px
    # left over split 25 / 25, (700 - 200) // 100 + 1 = 6 columns with nothing left over
    g = WindowGrid.over((550, 700), 200.0, 1.0, 0.5)
    assert (g.window_px, g.step_px, g.map_shape, g.count, g.y0, g.x0) == (200, 100, (4, 6), 24, 25, 0)
    assert g.tops.tolist() == [25, 125, 225, 325] and g.lefts.tolist() == [0, 100, 200, 300, 400, 500]
    assert g.y_cm.tolist() == pytest.approx([0.625, 1.125, 1.625, 2.125])
    assert g.x_cm.tolist() == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    boxes = g.boxes()
    assert boxes.shape == (4, 6, 4) and tuple(boxes[3, 5]) == g.box(3, 5) == (325, 500, 525, 700)
    assert g.parameters() == {"window_cm": 1.0, "step_cm": 0.5, "window_px": 200, "step_px": 100}
    assert (DEFAULT_WINDOW_CM, DEFAULT_STEP_CM) == (1.0, 0.5)
    assert WindowGrid.over((550, 700), 200.0) == g  # the defaults


@pytest.mark.parametrize("window,step", [(0.0, 0.5), (1.0, 0.0), (-1.0, 0.5), (float("nan"), 0.5),
                                         (float("inf"), 0.5), ("1", 0.5)])
def test_window_and_step_are_checked_once(window, step):
    for check in (lambda: check_window(window, step), lambda: WindowGrid.over((400, 400), 200.0, window, step),
                  lambda: SpectralParams(window_cm=window, step_cm=step).validate()):
        with pytest.raises(InvalidParameterError, match="must be a positive number of cm") as exc:
            check()
        assert exc.value.param in ("window_cm", "step_cm")


def test_plate_smaller_than_the_window_names_the_parameter():
    with pytest.raises(InvalidImageError, match="smaller than the 1.5 cm window; use window_cm 0.50 or less") as exc:
        WindowGrid.over((100, 400), 200.0, 1.5)
    assert exc.value.param == "window_cm"
    with pytest.raises(InvalidImageError, match="smaller than the model's 1 cm window$"):
        WindowGrid.over((100, 400), 200.0, 1.0, fixed_window=True)


def test_counters_report_the_grid():
    y = np.arange(550)[:, None] + np.zeros((1, 700))
    img = np.cos(2 * np.pi * 12.0 * y / 200.0)
    g = WindowGrid.over(img.shape, 200.0, 1.0, 0.5)
    r = count_threads(img, "spectral", px_per_cm=200.0)
    assert r.horizontal.density.shape == g.map_shape
    assert np.array_equal(r.x_cm, g.x_cm) and np.array_equal(r.y_cm, g.y_cm)
    assert {k: r.parameters[k] for k in ("window_cm", "step_cm", "window_px", "step_px")} == g.parameters()


def _imports(path: Path) -> set[str]:
    """Modules of artlens.canvas.threads that ``path`` imports, at any level (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("artlens.canvas.threads."):
            out.add(node.module.rsplit(".", 1)[1])
    return out


def test_no_import_cycle_among_the_thread_modules():
    graph = {p.stem: _imports(p) for p in THREADS.glob("*.py") if p.stem != "__init__"}
    assert "cnn" not in graph["phase"] and "phase" not in graph["preprocess"]

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [m for m in graph if m in reach(m)] == []
