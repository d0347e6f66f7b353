"""The result of counting threads over a plate: per-window maps in physical units."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PLATE_SYSTEMATIC_SD = {"spectral": (0.04, 0.004), "cnn": (0.04, 0.004)}
"""Per method, ``(absolute threads/cm, relative)`` standard deviation of a plate mean's error that
window-to-window scatter does not show (bias from the plate edges, angles, the method itself); set
so that the 90 % interval covers 90 % of artlens' own synthetic plates (family A,
``benchmarks/bench_threads_families.py``), and measured out of family there."""

DIRECTIONS = ("horizontal", "vertical")
"""Thread directions (DESIGN.md): ``horizontal`` threads run left-right in the displayed image and
are counted along the vertical axis; ``vertical`` threads run top-bottom, counted along x."""


@dataclass
class DirectionMaps:
    """Per-window maps of one thread direction, each of shape ``(ny, nx)``.

    Attributes:
        density: threads/cm; NaN where no peak was found in the search band.
        angle: degrees, deviation of the threads from their axis, counter-clockwise positive.
        confidence: 0..1, ``1 - background / peak`` of the spectral peak (its prominence).
        outlier: True where the window disagrees with its neighbours or has too weak a peak;
            such windows are kept in the maps and in ``windows.csv`` but left out of the summary.
        corrected: True where a window's peak was the k-th harmonic of the plate's fundamental
            and its density was divided by k (spectral counter only).
        check: True where a second method disagrees with this one beyond the cross-check tolerance
            (set by :func:`artlens.canvas.threads.run.cross_check`): "check here".
        alternative: a half / third / double / triple of the plate's density that enough windows
            found but was not chosen (spectral counter): ``{"threads_per_cm", "windows", "relation"}``.
        disputed: ``{"method", "interval_90"}`` of a second method that disagrees with this one on the
            plate (set by :func:`artlens.canvas.threads.run.cross_check`); the plate interval then
            reaches over that method's interval too, because nothing says which of the two is right.
    """

    density: np.ndarray
    angle: np.ndarray
    confidence: np.ndarray
    outlier: np.ndarray
    corrected: np.ndarray | None = None
    check: np.ndarray | None = None
    alternative: dict[str, Any] | None = None
    disputed: dict[str, Any] | None = None

    def stats(self) -> dict[str, Any]:
        """Summary over the valid (finite, not outlier) windows."""
        ok = np.isfinite(self.density) & ~self.outlier
        d = self.density[ok]
        a = self.angle[ok]

        def _f(x: float) -> float | None:
            return None if not math.isfinite(x) else round(float(x), 4)

        dens: dict[str, float | None]
        ang: dict[str, float | None]
        if d.size == 0:
            dens = {"mean": None, "std": None, "median": None}
            ang = {"mean": None, "std": None}
        else:
            dens = {"mean": _f(d.mean()), "std": _f(d.std()), "median": _f(np.median(d))}
            ang = {"mean": _f(a.mean()), "std": _f(a.std())}
        out: dict[str, Any] = {
            "threads_per_cm": dens,
            "angle_deg": ang,
            "valid_windows": int(ok.sum()),
            "outlier_windows": int((self.outlier & np.isfinite(self.density)).sum()),
            "no_peak_windows": int((~np.isfinite(self.density)).sum()),
            "confidence_mean": _f(self.confidence[ok].mean()) if d.size else None,
        }
        if self.corrected is not None:
            out["harmonic_windows_corrected"] = int(self.corrected.sum())
            out["harmonic_alternative"] = self.alternative
        return out


@dataclass
class ThreadCountResult:
    """Thread densities and angles on a grid of windows over one plate.

    Window ``(i, j)`` is centred at ``(y_cm[i], x_cm[j])`` cm from the plate's top-left corner and
    is ``window_cm`` wide. ``horizontal`` and ``vertical`` follow :data:`DIRECTIONS`.
    """

    method: str
    px_per_cm: float
    window_cm: float
    step_cm: float
    x_cm: np.ndarray
    y_cm: np.ndarray
    horizontal: DirectionMaps
    vertical: DirectionMaps
    plate_shape_px: tuple[int, int]
    parameters: dict[str, Any] = field(default_factory=dict)
    model_checksum: str | None = None

    @property
    def n_windows(self) -> int:
        return int(self.x_cm.size * self.y_cm.size)

    def direction(self, name: str) -> DirectionMaps:
        if name not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {name!r}")
        return self.horizontal if name == "horizontal" else self.vertical

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` contract of DESIGN.md, plus provenance fields."""
        from artlens import __version__

        return {
            "method": self.method,
            "artlens_version": __version__,
            "px_per_cm": float(self.px_per_cm),
            "window_cm": float(self.window_cm),
            "step_cm": float(self.step_cm),
            "windows": self.n_windows,
            "plate_cm": [
                round(self.plate_shape_px[0] / self.px_per_cm, 4),
                round(self.plate_shape_px[1] / self.px_per_cm, 4),
            ],
            "horizontal": self.horizontal.stats() | self._interval_record("horizontal"),
            "vertical": self.vertical.stats() | self._interval_record("vertical"),
            "parameters": self.parameters,
            "model_checksum": self.model_checksum,
        }

    def plate_interval(self, direction: str, level: float = 0.9) -> list[float] | None:
        """Interval of the plate-mean density, threads/cm, meant to hold the truth ``level`` of the time.

        Half-width ``z * sqrt(se**2 + a**2 + (r * mean)**2)``: ``se`` the standard error of the mean
        over the valid windows, counting overlapping windows as ``(step / window)**2`` of a window
        each; ``(a, r)`` the method's :data:`PLATE_SYSTEMATIC_SD`. None without valid windows. Where a
        second method disagrees on the plate (``disputed``, at the default level only), the interval
        is widened to cover that method's interval as well.
        """
        from statistics import NormalDist

        m = self.direction(direction)
        d = m.density[np.isfinite(m.density) & ~m.outlier]
        if d.size == 0:
            return None
        n_eff = max(1.0, d.size * min(1.0, (self.step_cm / self.window_cm) ** 2))
        se = float(d.std(ddof=1)) / math.sqrt(n_eff) if d.size > 1 else 0.0
        a, r = PLATE_SYSTEMATIC_SD.get(self.method, PLATE_SYSTEMATIC_SD["cnn"])
        mean = float(d.mean())
        half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt(se**2 + a**2 + (r * mean) ** 2)
        lo, hi = mean - half, mean + half
        other = (m.disputed or {}).get("interval_90")
        if other is not None and level == 0.9:
            lo, hi = min(lo, float(other[0])), max(hi, float(other[1]))
        return [round(lo, 4), round(hi, 4)]

    def _interval_record(self, direction: str) -> dict[str, Any]:
        """``interval_90`` and, where a second method disputes the plate, why it is wide."""
        out: dict[str, Any] = {"interval_90": self.plate_interval(direction)}
        disputed = self.direction(direction).disputed
        if disputed is not None and disputed.get("interval_90") is not None:
            out["interval_90_note"] = (f"widened to cover the {disputed['method']} counter's interval "
                                       f"{disputed['interval_90']}: the two methods disagree on this plate")
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One record per window, in cm coordinates (the ``windows.csv`` rows)."""
        out = []
        for i, yc in enumerate(self.y_cm):
            for j, xc in enumerate(self.x_cm):
                row: dict[str, Any] = {"row": i, "col": j, "x_cm": round(float(xc), 4), "y_cm": round(float(yc), 4)}
                for name in DIRECTIONS:
                    m = self.direction(name)
                    short = name[0]  # h / v
                    d = m.density[i, j]
                    row[f"{short}_threads_per_cm"] = "" if not np.isfinite(d) else round(float(d), 4)
                    a = m.angle[i, j]
                    row[f"{short}_angle_deg"] = "" if not np.isfinite(a) else round(float(a), 3)
                    row[f"{short}_confidence"] = round(float(m.confidence[i, j]), 4)
                    row[f"{short}_outlier"] = int(bool(m.outlier[i, j]))
                    if m.check is not None:
                        row[f"{short}_check"] = int(bool(m.check[i, j]))
                out.append(row)
        return out

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        rows = self.rows()
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def write_summary(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        data = self.summary()
        if extra:
            data.update(extra)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path
