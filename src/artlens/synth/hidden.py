"""Synthetic hidden layers with ground truth, rendered by Kubelka-Munk.

A scene is a stack of paint layers on a white ground: a *hidden* layer (a carbon-black underdrawing
of thin strokes, or filled shapes of an earlier composition), then *visible* paint patches of
pigments that absorb in the visible but are nearly transparent in the near infrared, then optional
*decoy* strokes of black painted on top. Each layer's spectral reflectance follows from the one below
by the Kubelka-Munk finite-layer formula; the spectra are then seen by a simple camera: an RGB image
(Gaussian sensitivities) and an infrared band (mean reflectance over 900-1000 nm). Because the visible
paint hides the drawing in RGB but lets NIR light through, the drawing is faint in RGB and dark in IR,
as in infrared reflectography; the decoys are dark in both.

Pigment optical constants come from the Wiersma tables (:func:`load_pigments`: a folder given as an
argument, or the shared data folder named by ``$ARTLENS_SHARED_DATA``; never looked for from the working
directory), else from a built-in set of smooth analytic curves that are *approximate, not measured*
(:func:`builtin_pigments`).

Units: wavelengths in nm; K and S per unit thickness, in the arbitrary unit of the pigment set
(the Wiersma tables scale titanium white to S = 1); thickness in the reciprocal unit, so that K·X and
S·X are optical depths. Reflectances are dimensionless, 0..1.

References:
    Kubelka, P. and Munk, F. (1931). Ein Beitrag zur Optik der Farbanstriche. Z. Techn. Physik 12,
    593-601.
    Kubelka, P. (1948). New contributions to the optics of intensely light-scattering materials.
    Part I. J. Opt. Soc. Am. 38(5), 448-457.
    Duncan, D. R. (1940). The colour of pigment mixtures. Proc. Phys. Soc. 52, 390-401.
    van Asperen de Boer, J. R. J. (1968). Infrared reflectography: a method for the examination of
    paintings. Applied Optics 7(9), 1711-1714.
    Wiersma, R. et al., painting_tools (TU Delft), pigment measurements ``oilpaint``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError

SHARED_DATA_ENV = "ARTLENS_SHARED_DATA"
"""Environment variable naming the shared data folder (the one holding ``multispectral/``, e.g.
``ARTLENS_SHARED_DATA=../shared/data``). It is the only place :func:`load_pigments` looks for the measured
tables when no folder is given; the measured tables are not packaged (CC BY-NC-SA)."""

WIERSMA_SUBPATH = Path("multispectral") / "pigment_spectra_wiersma" / "oilpaint"
SCENE_KINDS = ("underdrawing", "composition", "mixed")
_S_FLOOR = 1e-4  # smallest scattering coefficient kept from measured tables (negative values are noise)
_S_TINY = 1e-12  # stands in for S = 0 in the KM formulas (gives the pure-absorber limit)


# -- Kubelka-Munk ------------------------------------------------------------------------------------
def _nonneg(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidParameterError(f"{name} must be finite and >= 0")
    return arr


def km_mix(concentrations: Any, K: Any, S: Any) -> tuple[np.ndarray, np.ndarray]:
    """Absorption and scattering of a pigment mixture: concentration-weighted sums (Duncan 1940).

    Args:
        concentrations: ``(..., P)`` amounts of the ``P`` pigments, >= 0; normalised to sum to 1
            (volume fractions).
        K: ``(P, L)`` absorption coefficients of the pure pigments.
        S: ``(P, L)`` scattering coefficients of the pure pigments.

    Returns:
        ``(K_mix, S_mix)``, each ``(..., L)``: ``K_mix = sum_i c_i K_i``, ``S_mix = sum_i c_i S_i``.

    Raises:
        InvalidParameterError: negative or all-zero concentrations, mismatched shapes.

    Example:
        >>> km_mix([1, 3], [[2.0], [0.0]], [[1.0], [1.0]])[0]
        array([0.5])
    """
    c = _nonneg("concentrations", concentrations)
    K, S = _nonneg("K", K), _nonneg("S", S)
    if K.ndim != 2 or K.shape != S.shape or c.shape[-1:] != K.shape[:1]:
        raise InvalidParameterError(
            f"km_mix needs concentrations (..., P) and K, S (P, L); got {c.shape}, {K.shape}, {S.shape}"
        )
    total = c.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        raise InvalidParameterError("pigment concentrations must not all be zero")
    c = c / total
    return c @ K, c @ S


def km_reflectance_infinite(K: Any, S: Any) -> np.ndarray:
    """Reflectance of an opaque (infinitely thick) layer: ``R_inf = 1 + K/S - sqrt((K/S)^2 + 2 K/S)``.

    Computed as ``1 / (1 + K/S + sqrt((K/S)^2 + 2 K/S))`` (the same value, without cancellation).

    Args:
        K: absorption coefficient(s), >= 0.
        S: scattering coefficient(s), >= 0 (``S = 0`` gives ``R_inf = 0`` unless ``K = 0``).

    Returns:
        ``R_inf`` broadcast over ``K`` and ``S``, in ``[0, 1]``; 1 where ``K = 0``.

    References:
        Kubelka and Munk (1931).

    Example:
        >>> round(float(km_reflectance_infinite(1.0, 1.0)), 6)  # 2 - sqrt(3)
        0.267949
    """
    K, S = _nonneg("K", K), _nonneg("S", S)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(K == 0, 0.0, K / np.maximum(S, _S_TINY))
    return 1.0 / (1.0 + q + np.sqrt(q * (q + 2.0)))


def km_reflectance_layer(K: Any, S: Any, thickness: Any, R_background: Any) -> np.ndarray:
    """Reflectance of a paint layer of finite thickness over a background (Kubelka 1948).

    ``R = (1 - R_g (a - b coth(b S X))) / (a - R_g + b coth(b S X))`` with ``a = 1 + K/S`` and
    ``b = sqrt(a^2 - 1)``. It is evaluated as ``(u - R_g (a u - 1)) / ((a - R_g) u + 1)`` with
    ``u = tanh(b S X) / b`` (multiply numerator and denominator by ``tanh / b``), which stays finite
    at ``X = 0`` (gives ``R_g``), for ``K = 0`` (``u = S X``: ``R = (S X (1 - R_g) + R_g) /
    (S X (1 - R_g) + 1)``) and for ``S -> 0`` (``R = R_g exp(-2 K X)``), and tends to ``R_inf`` as
    ``X -> inf``.

    Args:
        K: absorption coefficient(s) of the layer, >= 0 (per unit thickness).
        S: scattering coefficient(s), >= 0 (per unit thickness).
        thickness: layer thickness ``X`` >= 0 (reciprocal unit of K and S).
        R_background: reflectance ``R_g`` of what lies beneath, in ``[0, 1]``.

    Returns:
        Reflectance broadcast over all arguments.

    Raises:
        InvalidParameterError: negative or non-finite inputs, ``R_g`` above 1.

    References:
        Kubelka, P. (1948). J. Opt. Soc. Am. 38(5), 448-457, eq. for a layer on a background.

    Example:
        >>> round(float(km_reflectance_layer(0.0, 1.0, 1.0, 0.0)), 6)  # S X / (S X + 1)
        0.5
    """
    K, S, X = _nonneg("K", K), _nonneg("S", S), _nonneg("thickness", thickness)
    Rg = _nonneg("R_background", R_background)
    if (Rg > 1).any():
        raise InvalidParameterError("R_background must lie in [0, 1]")
    S = np.maximum(S, _S_TINY)
    q = K / S
    a = 1.0 + q
    b = np.sqrt(q * (q + 2.0))
    small = b < 1e-8
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.where(small, S * X, np.tanh(b * S * X) / np.where(small, 1.0, b))
    return (u - Rg * (a * u - 1.0)) / ((a - Rg) * u + 1.0)


# -- pigment sets --------------------------------------------------------------------------------------
@dataclass
class PigmentSet:
    """Optical constants of a set of pigments on one wavelength grid.

    Attributes:
        names: pigment names, in row order.
        wavelengths_nm: ``(L,)`` increasing wavelengths (nm).
        K: ``(P, L)`` absorption coefficients (per unit thickness), >= 0.
        S: ``(P, L)`` scattering coefficients (per unit thickness), > 0.
        source: folder the tables came from, or ``"built-in"``.
        measured: ``True`` for measured tables, ``False`` for the built-in approximate curves.
        notes: what was done while reading (clipped values, conversions).
    """

    names: list[str]
    wavelengths_nm: np.ndarray
    K: np.ndarray
    S: np.ndarray
    source: str = "built-in"
    measured: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wavelengths_nm = np.asarray(self.wavelengths_nm, dtype=np.float64)
        self.K = np.asarray(self.K, dtype=np.float64)
        self.S = np.asarray(self.S, dtype=np.float64)
        p, n_wl = len(self.names), self.wavelengths_nm.size
        if self.K.shape != (p, n_wl) or self.S.shape != (p, n_wl):
            raise InvalidParameterError(
                f"pigment tables must be ({p}, {n_wl}); got K {self.K.shape}, S {self.S.shape}"
            )
        if n_wl < 2 or (np.diff(self.wavelengths_nm) <= 0).any():
            raise InvalidParameterError("pigment wavelengths must be at least two, strictly increasing")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Row of a pigment: exact name (case-insensitive), else the only name containing ``name``.

        Raises:
            InvalidParameterError: no match or an ambiguous one; the message lists the names.
        """
        low = [n.lower() for n in self.names]
        key = name.lower()
        if key in low:
            return low.index(key)
        hits = [i for i, n in enumerate(low) if key in n]
        if len(hits) == 1:
            return hits[0]
        what = "ambiguous" if hits else "unknown"
        raise InvalidParameterError(f"{what} pigment {name!r}; pigments: {', '.join(self.names)}")

    def find(self, *keywords: str) -> str | None:
        """First pigment whose name contains one of ``keywords`` (tried in order), or ``None``."""
        for key in keywords:
            for n in self.names:
                if key.lower() in n.lower():
                    return n
        return None

    def mix(self, recipe: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """``(K, S)`` ``(L,)`` of a mixture given as ``{pigment name: amount}`` (:func:`km_mix`)."""
        c = np.zeros(len(self))
        for name, amount in recipe.items():
            c[self.index(name)] += amount
        return km_mix(c, self.K, self.S)

    def resample(self, wavelengths_nm: Sequence[float] | np.ndarray) -> PigmentSet:
        """The set on another wavelength grid (linear interpolation).

        Raises:
            InvalidParameterError: the grid reaches outside the tables' range by more than 5 nm.
        """
        wl = np.asarray(wavelengths_nm, dtype=np.float64)
        lo, hi = self.wavelengths_nm[0], self.wavelengths_nm[-1]
        if wl.min() < lo - 5 or wl.max() > hi + 5:
            raise InvalidParameterError(
                f"pigment tables cover {lo:g}-{hi:g} nm; cannot evaluate them at {wl.min():g}-{wl.max():g} nm"
            )
        K = np.stack([np.interp(wl, self.wavelengths_nm, k) for k in self.K])
        S = np.stack([np.interp(wl, self.wavelengths_nm, s) for s in self.S])
        return PigmentSet(list(self.names), wl, K, S, self.source, self.measured, list(self.notes))


def _smooth_step(wl: np.ndarray, edge: float, width: float) -> np.ndarray:
    """0 well below ``edge`` nm, 1 well above (logistic, ``width`` nm)."""
    return 1.0 / (1.0 + np.exp(-(wl - edge) / width))


def _bump(wl: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((wl - centre) / sigma) ** 2)


def builtin_pigments(wavelengths_nm: Sequence[float] | np.ndarray | None = None) -> PigmentSet:
    """A small pigment set of smooth analytic curves, APPROXIMATE AND NOT MEASURED.

    Authored for artlens so that synthetic scenes work without the measured tables. The curves only
    mimic the qualitative behaviour that infrared reflectography relies on:

    - *Lead white*: low K (a little violet absorption), high S falling as ``lambda^-1.5`` (lead white
      in oil gets more transparent towards the infrared).
    - *Carbon black*: high, nearly flat K (about 3) from 400 to 1000 nm, low S.
    - *Yellow ochre*, *Vermilion (approx.)*, *Ultramarine (approx.)*, *Green earth*: absorb in their
      complementary visible band, nearly transparent (K <= 0.05) at 800-1000 nm, with scattering that
      falls towards the infrared.
    - *Raw umber*: brown, with absorption that persists in the near infrared (it hides drawings there too).

    Args:
        wavelengths_nm: grid (nm); default 400-1000 nm in 5 nm steps.

    Returns:
        A :class:`PigmentSet` with ``measured=False`` and ``source="built-in"``.

    Units:
        K and S per unit thickness, scaled like the Wiersma tables (white S about 1 at 550 nm).
    """
    wl = np.arange(400.0, 1000.0 + 1e-9, 5.0) if wavelengths_nm is None else np.asarray(wavelengths_nm, float)
    r = 550.0 / wl
    curves = {
        "Lead white": (0.004 + 0.12 * np.exp(-(wl - 400.0) / 20.0), 1.0 * r**1.5),
        "Carbon black": (3.0 + 0.2 * (wl - 400.0) / 600.0, 0.08 + 0.0 * wl),
        "Yellow ochre": (0.03 + 1.3 * (1.0 - _smooth_step(wl, 515.0, 18.0)) + 0.05 * _bump(wl, 900.0, 60.0),
                         0.55 * r**2.0),
        "Vermilion (approx.)": (0.02 + 8.0 * (1.0 - _smooth_step(wl, 580.0, 12.0)), 0.9 * (600.0 / wl) ** 3.0),
        "Ultramarine (approx.)": (0.02 + 1.6 * _bump(wl, 600.0, 55.0) + 0.4 * _smooth_step(wl, 520.0, 20.0)
                                  * (1.0 - _smooth_step(wl, 720.0, 20.0)), 0.35 * r**2.5),
        "Green earth": (0.03 + 0.7 * _bump(wl, 430.0, 45.0) + 0.9 * _bump(wl, 660.0, 55.0), 0.3 * r**2.0),
        "Raw umber": (0.25 + 0.6 * r, 0.06 + 0.0 * wl),
    }
    names = list(curves)
    K = np.stack([np.broadcast_to(curves[n][0], wl.shape) for n in names])
    S = np.stack([np.broadcast_to(curves[n][1], wl.shape) for n in names])
    return PigmentSet(names, wl, K, S, "built-in", False,
                      ["built-in analytic K/S curves: approximate, not measured"])


def default_pigment_folder() -> Path | None:
    """Where the Wiersma ``oilpaint`` tables are, or ``None``.

    ``$ARTLENS_SHARED_DATA/multispectral/pigment_spectra_wiersma/oilpaint`` when the variable
    (:data:`SHARED_DATA_ENV`) is set and that folder exists; ``None`` otherwise. Nothing is looked for
    from the working directory or the installed package's location.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if not env:
        return None
    cand = Path(env).expanduser() / WIERSMA_SUBPATH
    return cand if cand.is_dir() else None


def load_pigments(folder: str | os.PathLike[str] | None = None) -> PigmentSet:
    """Pigment optical constants from Wiersma-format tables, or the built-in approximate set.

    Format (painting_tools ``measurements/pigments``): ``spectra.txt`` holds the wavelengths (nm),
    whitespace separated; each ``*.rs`` file holds one pigment per line: ``"name"`` then tab-separated
    numbers, either ``2 L`` values (``L`` absorption K followed by ``L`` scattering S) or ``L``
    reflectances (converted with ``S = 1``, ``K = (1 - R)^2 / (2 R)``). Negative values (measurement
    noise, e.g. Jaune de reseda beyond 750 nm) are clipped to 0 for K and to 1e-4 for S, with a note.

    Args:
        folder: a folder with ``spectra.txt`` and ``*.rs``; ``None`` uses :func:`default_pigment_folder`
            and, when that finds nothing, the built-in set (:func:`builtin_pigments`) with a notice.

    Returns:
        A :class:`PigmentSet`.

    Raises:
        InputNotFoundError: an explicit folder, or its ``spectra.txt``/``*.rs``, does not exist.
        UnreadableInputError: a table cannot be parsed (the message names file and line).

    References:
        Wiersma, R. et al., painting_tools (TU Delft), ``PigmentDatabase``.
    """
    if folder is None:
        found = default_pigment_folder()
        if found is None:
            warnings.warn(
                f"measured pigment spectra not found (set {SHARED_DATA_ENV} to the shared data folder holding "
                f"{WIERSMA_SUBPATH.as_posix()}, or pass the folder); "
                "using the built-in approximate pigment set (analytic curves, not measured)",
                UserWarning, stacklevel=2)
            return builtin_pigments()
        folder = found
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputNotFoundError(f"{root}: no such pigment folder")
    spectra = root / "spectra.txt"
    tables = sorted(root.glob("*.rs"))
    if not spectra.is_file():
        raise InputNotFoundError(f"{root}: no spectra.txt (wavelength list)")
    if not tables:
        raise InputNotFoundError(f"{root}: no *.rs pigment tables")
    try:
        wl = np.array([float(v) for v in spectra.read_text().split()])
    except ValueError as exc:
        raise UnreadableInputError(f"{spectra.name}: not a list of wavelengths ({exc})") from exc
    n_wl = wl.size
    if n_wl < 2 or (np.diff(wl) <= 0).any():
        raise UnreadableInputError(f"{spectra.name}: wavelengths must be at least two and increasing")

    names: list[str] = []
    Ks: list[np.ndarray] = []
    Ss: list[np.ndarray] = []
    notes: list[str] = []
    for table in tables:
        for lineno, line in enumerate(table.read_text(errors="replace").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, values = _parse_row(line, table.name, lineno)
            if values.size == 2 * n_wl:
                k, s = values[:n_wl], values[n_wl:]
            elif values.size == n_wl:
                refl = np.clip(values, 1e-4, 1.0)
                k, s = (1.0 - refl) ** 2 / (2.0 * refl), np.ones(n_wl)
                notes.append(f"{name}: reflectance row converted to K/S with S = 1")
            else:
                raise UnreadableInputError(
                    f"{table.name} line {lineno} ({name}): {values.size} values, expected {n_wl} or {2 * n_wl}"
                )
            bad = (k < 0) | (s < _S_FLOOR)
            if bad.any():
                notes.append(f"{name}: {int(bad.sum())} negative/zero K or S values at "
                             f"{wl[bad].min():.0f}-{wl[bad].max():.0f} nm clipped")
            names.append(name)
            Ks.append(np.maximum(k, 0.0))
            Ss.append(np.maximum(s, _S_FLOOR))
    if not names:
        raise UnreadableInputError(f"{root}: the *.rs tables hold no pigments")
    return PigmentSet(names, wl, np.stack(Ks), np.stack(Ss), str(root), True, notes)


_ROW = re.compile(r'^\s*"([^"]*)"\s*(.*)$')


def _parse_row(line: str, fname: str, lineno: int) -> tuple[str, np.ndarray]:
    m = _ROW.match(line)
    if m:
        name, rest = m.group(1).strip(), m.group(2)
    else:
        name, _, rest = line.partition("\t")
        name = name.strip()
    fields = [v for v in re.split(r"[\s,;]+", rest.strip()) if v]
    try:
        values = np.array([float(v) for v in fields])
    except ValueError as exc:
        raise UnreadableInputError(f"{fname} line {lineno} ({name}): not a number ({exc})") from exc
    if not np.isfinite(values).all():
        raise UnreadableInputError(f"{fname} line {lineno} ({name}): NaN or infinite values")
    return name or f"pigment {lineno}", values


# -- camera ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    """A simple camera that turns spectral reflectance into an RGB image and an IR band.

    The RGB sensitivities are Gaussians (not CIE colour matching functions), each normalised to unit
    sum over the wavelength grid, so a flat reflectance ``r`` gives ``(r, r, r)``: a white-balanced
    camera. The IR band is the mean reflectance over ``ir_band_nm`` (a silicon camera behind a long-pass
    filter; InGaAs reflectography reaches further, to 1700 nm, beyond the pigment tables).

    Attributes:
        rgb_centres_nm: centres of the R, G, B sensitivities (nm).
        rgb_widths_nm: their standard deviations (nm).
        ir_band_nm: ``(low, high)`` limits of the IR band (nm).
    """

    rgb_centres_nm: tuple[float, float, float] = (600.0, 540.0, 455.0)
    rgb_widths_nm: tuple[float, float, float] = (30.0, 30.0, 25.0)
    ir_band_nm: tuple[float, float] = (900.0, 1000.0)

    def weights(self, wavelengths_nm: Sequence[float] | np.ndarray) -> np.ndarray:
        """``(L, 4)`` weights of the R, G, B and IR channels (each column sums to 1).

        Raises:
            InvalidParameterError: the grid misses a channel (e.g. does not reach the IR band).
        """
        wl = np.asarray(wavelengths_nm, dtype=np.float64)
        cols = [_bump(wl, c, s) for c, s in zip(self.rgb_centres_nm, self.rgb_widths_nm, strict=True)]
        lo, hi = self.ir_band_nm
        cols.append(((wl >= lo) & (wl <= hi)).astype(np.float64))
        w = np.stack(cols, axis=1)
        sums = w.sum(axis=0)
        if (sums < 1e-6).any() or not (wl.min() <= lo and wl.max() >= hi - 10):
            raise InvalidParameterError(
                f"wavelengths {wl.min():g}-{wl.max():g} nm do not cover the camera's channels "
                f"(RGB {self.rgb_centres_nm} nm, IR {lo:g}-{hi:g} nm)"
            )
        return w / sums


def render_views(reflectance: np.ndarray, wavelengths_nm: Sequence[float] | np.ndarray,
                 camera: Camera | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear RGB and IR views of spectral reflectance.

    Args:
        reflectance: ``(..., L)`` reflectance spectra (e.g. ``(H, W, L)``).
        wavelengths_nm: ``(L,)`` grid (nm).
        camera: sensitivities; default :class:`Camera`.

    Returns:
        ``(rgb, ir)``: ``(..., 3)`` and ``(...)`` linear reflectances in ``[0, 1]``.
    """
    w = (camera or Camera()).weights(wavelengths_nm)
    views = np.asarray(reflectance, dtype=np.float64) @ w
    return views[..., :3], views[..., 3]


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function (IEC 61966-2-1) of linear values in ``[0, 1]``."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def mask_contrast(image: np.ndarray, mask: np.ndarray, *, ring_px: int = 4, gap_px: int = 1,
                  exclude: np.ndarray | None = None, labels: np.ndarray | None = None,
                  min_pixels: int = 20) -> float:
    """Signed Michelson contrast of a region against a ring around it: ``(m_ring - m_in) / (m_ring + m_in)``.

    Positive when the region is darker than its surroundings. Used to check that a hidden drawing is
    faint in RGB and dark in IR. With ``labels`` (e.g. :attr:`HiddenScene.patch_map`) the region is
    compared with the ring *within each label* and the contrasts are averaged, weighted by region
    size, so that differences between paints next to each other do not count as contrast.

    Args:
        image: ``(H, W)`` grey image, or ``(H, W, 3)`` colour (BT.601 luminance is used).
        mask: ``(H, W)`` bool region.
        ring_px: width of the surrounding ring (pixels).
        gap_px: pixels skipped between region and ring (blurred edges).
        exclude: ``(H, W)`` bool pixels left out of both region and ring (e.g. decoys).
        labels: ``(H, W)`` int regions within which to compare.
        min_pixels: labels whose region or ring has fewer pixels are skipped.

    Returns:
        The contrast, in ``[-1, 1]``.

    Raises:
        InvalidParameterError: empty region or ring.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    mask = np.asarray(mask, dtype=bool)
    near = ndimage.binary_dilation(mask, iterations=gap_px) if gap_px > 0 else mask
    ring = ndimage.binary_dilation(mask, iterations=gap_px + ring_px) & ~near
    inside = mask.copy()
    if exclude is not None:
        ex = np.asarray(exclude, dtype=bool)
        ex = ndimage.binary_dilation(ex, iterations=gap_px) if gap_px > 0 else ex
        inside &= ~ex
        ring &= ~ex
    groups = [(inside, ring)] if labels is None else [
        (inside & (labels == v), ring & (labels == v)) for v in np.unique(labels[inside])]
    total_w, acc = 0, 0.0
    for reg, rng_ in groups:
        n = int(reg.sum())
        if n < (min_pixels if labels is not None else 1) or rng_.sum() < (min_pixels if labels is not None else 1):
            continue
        m_in, m_ring = img[reg].mean(), img[rng_].mean()
        acc += n * ((m_ring - m_in) / (m_ring + m_in) if m_in + m_ring > 0 else 0.0)
        total_w += n
    if total_w == 0:
        raise InvalidParameterError("mask_contrast needs a non-empty region and ring")
    return float(acc / total_w)


# -- scenes ------------------------------------------------------------------------------------------
ROLE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "white": ("lead white", "titanium white", "white"),
    "black": ("carbon black", "bone black", "ivory black", "lamp black", "black"),
    "ochre": ("yellow ochre", "ochre"),
    "red": ("vermilion", "red lake", "red"),
    "blue": ("ultramarine", "indigo", "azurite", "lapis", "blue"),
    "green": ("green earth", "green"),
    "yellow": ("reseda", "yellow lake", "lead-tin", "yellow"),
    "umber": ("raw umber", "umber"),
}
"""How scene roles find pigments in a set: the first name containing a keyword, keywords tried in order."""

PAINT_RECIPES: dict[str, dict[str, float]] = {
    "ochre": {"ochre": 0.7, "white": 0.3},
    "red": {"red": 0.7, "ochre": 0.15, "white": 0.15},
    "rose": {"red": 0.6, "blue": 0.15, "white": 0.25},
    "blue": {"blue": 0.6, "white": 0.4},
    "violet-grey": {"blue": 0.3, "red": 0.3, "white": 0.4},
    "green": {"green": 0.7, "ochre": 0.3},
    "olive": {"blue": 0.3, "yellow": 0.4, "white": 0.3},
    "brown": {"ochre": 0.5, "red": 0.3, "blue": 0.2},
    "dark": {"blue": 0.4, "red": 0.3, "ochre": 0.3},
    "grey-green": {"blue": 0.35, "ochre": 0.35, "white": 0.3},
    "pale": {"blue": 0.2, "red": 0.2, "white": 0.6},
    "umber": {"umber": 0.6, "ochre": 0.4},
}
"""Candidate visible paints (role -> fraction). A scene keeps those that hide the hidden layer in RGB at a
thickness where it still shows in IR (see :func:`make_hidden_scene`)."""


@dataclass
class HiddenScene:
    """A synthetic painting with a hidden layer, and its ground truth.

    Attributes:
        visible_rgb: ``(H, W, 3)`` ``uint8`` sRGB-encoded colour image.
        ir: ``(H, W)`` ``uint16`` infrared band (linear reflectance x 65535).
        mask: ``(H, W)`` bool, where hidden content is and is not covered by a decoy.
        decoy_mask: ``(H, W)`` bool, black strokes painted on top (dark in RGB and IR).
        hidden_mask: ``(H, W)`` bool, the whole hidden layer (including parts under decoys).
        patch_map: ``(H, W)`` ``int`` index of the visible paint (into ``parameters["paints"]``).
        spectra: reflectance spectra of the layers: ``wavelengths_nm``, ``ground``, ``hidden/line`` and/or
            ``hidden/shape`` (hidden material on the ground), ``hidden`` (the first of them),
            ``paint/<name>`` and ``paint_over_hidden/<name>`` (each paint at its hiding thickness over
            the ground and over ``hidden``).
        parameters: JSON-serialisable description (seed, kind, pigments, paints with thickness and
            predicted contrasts, rejected paints, camera).
        reflectance: ``(H, W, L)`` ``float32`` spectral cube when requested, else ``None``.
    """

    visible_rgb: np.ndarray
    ir: np.ndarray
    mask: np.ndarray
    decoy_mask: np.ndarray
    hidden_mask: np.ndarray
    patch_map: np.ndarray
    spectra: dict[str, np.ndarray]
    parameters: dict[str, Any]
    reflectance: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ir.shape[0]), int(self.ir.shape[1])


def _paint_contrasts(K: np.ndarray, S: np.ndarray, X: float, under: Sequence[np.ndarray], ground: np.ndarray,
                     W: np.ndarray) -> np.ndarray:
    """Michelson contrast (R, G, B, IR) between paint over the ground and over each hidden material;
    the largest over materials, shape ``(4,)``."""
    over_ground = km_reflectance_layer(K, S, X, ground) @ W
    worst = np.zeros(4)
    for r in under:
        over = km_reflectance_layer(K, S, X, r) @ W
        worst = np.maximum(worst, np.abs(over_ground - over) / np.maximum(over_ground + over, 1e-12))
    return worst


def _hiding_thickness(K: np.ndarray, S: np.ndarray, under: Sequence[np.ndarray], ground: np.ndarray,
                      W: np.ndarray, target: float, max_thickness: float) -> float | None:
    """Smallest thickness at which every RGB channel's contrast is at most ``target`` (bisection), or
    ``None`` when even ``max_thickness`` does not hide the layer. Contrast falls with thickness."""
    def visible(x: float) -> float:
        return float(_paint_contrasts(K, S, x, under, ground, W)[:3].max())

    if visible(max_thickness) > target:
        return None
    lo, hi = 0.0, max_thickness
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if visible(mid) > target else (lo, mid)
    return hi


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _curve_points(rng: np.random.Generator, shape: tuple[int, int], length: float) -> np.ndarray:
    """Points (row, col) along a random cubic Bezier curve of about ``length`` pixels."""
    h, w = shape
    start = rng.uniform([0.05 * h, 0.05 * w], [0.95 * h, 0.95 * w])
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([direction[1], -direction[0]])
    end = start + length * direction
    c1 = start + length / 3 * direction + rng.normal(0, 0.25 * length) * normal
    c2 = start + 2 * length / 3 * direction + rng.normal(0, 0.25 * length) * normal
    t = np.linspace(0.0, 1.0, max(8, int(3 * length)))[:, None]
    pts = (1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * end
    return pts


def _stroke_coverage(pts: np.ndarray, shape: tuple[int, int], width: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) of a stroke of ``width`` px along ``pts``."""
    h, w = shape
    rows = np.clip(np.round(pts[:, 0]).astype(int), 0, h - 1)
    cols = np.clip(np.round(pts[:, 1]).astype(int), 0, w - 1)
    inside = (pts[:, 0] >= -0.5) & (pts[:, 0] < h - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] < w - 0.5)
    seed = np.ones(shape, dtype=bool)
    seed[rows[inside], cols[inside]] = False
    if seed.all():
        return np.zeros(shape)
    dist = ndimage.distance_transform_edt(seed)
    return np.clip(width / 2.0 + 0.5 - dist, 0.0, 1.0)


def _underdrawing(rng: np.random.Generator, shape: tuple[int, int], scale: float,
                  width_px: tuple[float, float] | None = None) -> np.ndarray:
    """Coverage of a line drawing: long contour strokes and a few groups of short hatching lines.

    ``width_px`` (``(low, high)`` stroke widths in pixels) replaces the default widths (contours
    1.6-3.0 px, hatching 1.4 px, times ``scale``) and adds more, denser hatching."""
    cov = np.zeros(shape)
    for _ in range(int(rng.integers(7, 11))):
        pts = _curve_points(rng, shape, rng.uniform(0.25, 0.6) * min(shape))
        strength = rng.uniform(0.75, 1.0)  # drawn before the width: the order of earlier versions
        width = rng.uniform(1.6, 3.0) * scale if width_px is None else rng.uniform(*width_px)
        cov = np.maximum(cov, strength * _stroke_coverage(pts, shape, width))
    groups = (1, 3) if width_px is None else (2, 6)
    for _ in range(int(rng.integers(*groups))):  # hatching: parallel short strokes
        centre = rng.uniform(0.2, 0.8, 2) * shape
        angle = rng.uniform(0, np.pi)
        d, n = np.array([np.sin(angle), np.cos(angle)]), np.array([np.cos(angle), -np.sin(angle)])
        length, gap = rng.uniform(0.08, 0.15) * min(shape), 5.0 * scale
        width = 1.4 * scale
        if width_px is not None:
            width = rng.uniform(*width_px)
            gap = width + rng.uniform(2.0, 6.0)
        for k in range(int(rng.integers(4, 7))):
            a = centre + (k - 3) * gap * n
            t = np.linspace(0.0, 1.0, max(8, int(3 * length)))[:, None]
            pts = a - 0.5 * length * d + t * length * d
            cov = np.maximum(cov, 0.85 * _stroke_coverage(pts, shape, width))
    return cov


def _composition(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Coverage of filled shapes (ellipses and polygons) of an earlier composition."""
    from skimage.draw import ellipse, polygon

    h, w = shape
    filled = np.zeros(shape)
    for i in range(int(rng.integers(2, 5))):
        if i % 2 == 0:
            r, c = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            rr, cc = ellipse(r, c, rng.uniform(0.06, 0.16) * h, rng.uniform(0.06, 0.16) * w, shape=shape,
                             rotation=rng.uniform(-np.pi, np.pi))
        else:
            centre = rng.uniform(0.2, 0.8, 2) * shape
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = rng.uniform(0.05, 0.15, n) * min(shape)
            rr, cc = polygon(centre[0] + rad * np.sin(ang), centre[1] + rad * np.cos(ang), shape=shape)
        filled[rr, cc] = 1.0
    return np.clip(ndimage.gaussian_filter(filled, 0.8), 0.0, 1.0)


SHAPE_STYLES = ("classic", "varied")
"""Hidden shapes of :func:`make_hidden_scene`: ``"classic"`` (ellipses and polygons) or ``"varied"``."""


def _varied_composition(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Coverage of an earlier composition drawn from a wider family than :func:`_composition`: each of
    2-5 elements is an ellipse, a polygon, a rotated rectangle, a ring, a blob (thresholded smooth
    noise) or a broad brush stroke (6-20 px), of 3-30 % of the side; the edges are blurred by 0-1.5 px."""
    from skimage.draw import ellipse, polygon

    h, w = shape
    m = min(shape)
    filled = np.zeros(shape)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(int(rng.integers(2, 6))):
        what = int(rng.integers(0, 6))
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        size = rng.uniform(0.03, 0.3) * m
        if what == 0:
            rr, cc = ellipse(cy, cx, size, size * rng.uniform(0.3, 1.0), shape=shape,
                             rotation=rng.uniform(-np.pi, np.pi))
            filled[rr, cc] = 1.0
        elif what == 1:
            n = int(rng.integers(3, 9))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = size * rng.uniform(0.4, 1.0, n)
            rr, cc = polygon(cy + rad * np.sin(ang), cx + rad * np.cos(ang), shape=shape)
            filled[rr, cc] = 1.0
        elif what == 2:
            a = rng.uniform(0, np.pi)
            u = (yy - cy) * np.cos(a) + (xx - cx) * np.sin(a)
            v = -(yy - cy) * np.sin(a) + (xx - cx) * np.cos(a)
            filled[(np.abs(u) < size) & (np.abs(v) < size * rng.uniform(0.2, 1.0))] = 1.0
        elif what == 3:
            r = np.hypot(yy - cy, xx - cx)
            filled[(r < size) & (r > size * rng.uniform(0.4, 0.85))] = 1.0
        elif what == 4:
            field = _smooth_noise(rng, shape, rng.uniform(0.02, 0.06) * m)
            blob = (field > rng.uniform(0.8, 1.6)) & (np.hypot(yy - cy, xx - cx) < 2 * size)
            filled[blob] = 1.0
        else:
            pts = _curve_points(rng, shape, rng.uniform(0.2, 0.6) * m)
            filled = np.maximum(filled, _stroke_coverage(pts, shape, rng.uniform(6.0, 20.0)))
    sigma = rng.uniform(0.0, 1.5)
    return np.clip(ndimage.gaussian_filter(filled, sigma) if sigma > 0.1 else filled, 0.0, 1.0)


def _patches(rng: np.random.Generator, shape: tuple[int, int], n: int, scale: float) -> np.ndarray:
    """Label map of ``n`` irregular paint patches (Voronoi cells with wobbly borders)."""
    h, w = shape
    seeds = rng.uniform([0, 0], [h, w], size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    best = np.full(shape, np.inf)
    labels = np.zeros(shape, dtype=np.int32)
    for i, (sy, sx) in enumerate(seeds):
        d = np.hypot(yy - sy, xx - sx) + 6.0 * scale * _smooth_noise(rng, shape, 10.0 * scale)
        closer = d < best
        best[closer], labels[closer] = d[closer], i
    return labels


def make_hidden_scene(
    size: tuple[int, int] = (256, 256),
    *,
    kind: str = "underdrawing",
    decoys: bool = True,
    seed: int = 0,
    pigments: PigmentSet | str | os.PathLike[str] | None = None,
    camera: Camera | None = None,
    n_patches: int = 8,
    vis_contrast: float = 0.02,
    min_ir_contrast: float = 0.15,
    max_thickness: float = 40.0,
    noise: float = 0.005,
    blur_px: float = 0.6,
    wavelength_step_nm: float = 10.0,
    return_reflectance: bool = False,
    line_width_px: tuple[float, float] | None = None,
    line_pigment: str | None = None,
    line_thickness: float = 1.0,
    shape_style: str = "classic",
    shape_thickness: float = 1.5,
    decoy_width_px: tuple[float, float] | None = None,
    paint_variation: float = 0.0,
    ir_gain: float = 0.0,
    ir_blur_px: float | None = None,
    ir_shift_px: tuple[float, float] = (0.0, 0.0),
) -> HiddenScene:
    """Render a synthetic painting with a hidden layer visible in IR but not in RGB.

    Layers, bottom to top, each applied to the spectrum beneath by :func:`km_reflectance_layer`:

    1. ground: opaque white (``R_inf`` of the set's white);
    2. hidden layer (``kind``): ``"underdrawing"`` thin carbon-black strokes (thickness 1) and hatching;
       ``"composition"`` filled shapes of a dark earth (umber + black, thickness 1.5); ``"mixed"`` both;
    3. visible paint: ``n_patches`` irregular patches, each one of the :data:`PAINT_RECIPES` that hides
       the hidden layer, in every RGB channel, to a Michelson contrast of at most ``vis_contrast``
       (its thickness is the smallest that does, found by bisection, times 1.05-1.4 brush texture)
       while the IR contrast at that thickness is at least ``min_ir_contrast``. Paints failing either
       test (e.g. ochre or umber, which also hide in IR) are rejected and listed in ``parameters``;
    4. decoys (``decoys=True``): black strokes on top, dark in RGB and IR.

    The keyword arguments after ``return_reflectance`` widen the family (their defaults render the
    scenes of earlier artlens versions, seed for seed): stroke widths, the drawing's pigment and
    thickness, the style and thickness of hidden shapes, decoy widths, paint that varies smoothly
    within a patch, uneven IR illumination, a blurrier and misregistered IR camera. Their random
    draws come from a second generator seeded by ``(seed, 1)``. :func:`make_varied_hidden_scene` draws
    all of them at random.

    The spectra are seen by ``camera`` (linear RGB and IR), blurred by ``blur_px``, sRGB-encoded (RGB),
    given Gaussian noise of standard deviation ``noise`` (fraction of full range) and quantised.

    Args:
        size: ``(H, W)`` in pixels, each 32..4096.
        kind: ``"underdrawing"``, ``"composition"`` or ``"mixed"``.
        decoys: paint black decoy strokes on top.
        seed: random seed; the same arguments and seed give the same scene.
        pigments: a :class:`PigmentSet`, a folder for :func:`load_pigments`, or ``None`` (the measured
            tables under ``$ARTLENS_SHARED_DATA`` when set, else the built-in approximate set with a notice).
        camera: RGB/IR sensitivities, default :class:`Camera`.
        n_patches: number of visible paint patches.
        vis_contrast: largest RGB-channel Michelson contrast of the hidden layer through the paint.
        min_ir_contrast: smallest IR Michelson contrast for a paint to be used.
        max_thickness: thickest visible paint layer considered (units of 1/K).
        noise: noise standard deviation (fraction of full range).
        blur_px: Gaussian blur (pixels) of the rendered views.
        wavelength_step_nm: spectral sampling of the rendering, within 400-1000 nm.
        return_reflectance: keep the ``(H, W, L)`` spectral cube in the result.
        line_width_px: ``(low, high)`` widths of the underdrawing's strokes, px (default 1.6-3.0 px
            contours and 1.4 px hatching, times ``min(size) / 256``); also more and denser hatching.
        line_pigment: pigment of the underdrawing (a name in the set; default its black).
        line_thickness: thickness of the underdrawing's layer (default 1).
        shape_style: :data:`SHAPE_STYLES`: ``"classic"`` (ellipses and polygons) or ``"varied"``
            (also rectangles, rings, blobs, broad strokes, 3-30 % of the side).
        shape_thickness: thickness of the hidden shapes' layer (default 1.5).
        decoy_width_px: ``(low, high)`` widths of the decoys, px (default 3-6 px times the scale).
        paint_variation: up to this fraction of a second paint is mixed into each patch, varying
            smoothly over the patch (0: flat paints).
        ir_gain: amplitude of a smooth multiplicative variation of the IR view (uneven illumination;
            0.1 gives about ±10 %).
        ir_blur_px: blur of the IR view (default ``blur_px``).
        ir_shift_px: ``(dy, dx)`` shift of the IR view against the visible one, px (misregistration;
            the masks stay on the visible grid).

    Returns:
        A :class:`HiddenScene`.

    Raises:
        InvalidParameterError: bad size, kind or ranges; or a pigment set with fewer than two paints
            that can hide the layer in RGB and show it in IR, or without white and black.

    Units:
        Wavelengths nm; thickness in units of 1/K of the pigment set; reflectance 0..1.

    References:
        Kubelka (1948); van Asperen de Boer (1968).

    Example:
        >>> scene = make_hidden_scene((64, 64), seed=1, pigments=builtin_pigments())
        >>> scene.visible_rgb.shape, scene.ir.dtype.name, bool(scene.mask.any())
        ((64, 64, 3), 'uint16', True)
    """
    h, w = _check_size(size)
    if kind not in SCENE_KINDS:
        raise InvalidParameterError(f"unknown scene kind {kind!r}; expected one of {', '.join(SCENE_KINDS)}")
    if not 1 <= n_patches <= 64:
        raise InvalidParameterError("n_patches must lie in 1..64")
    if not (0 < vis_contrast < 1 and 0 <= min_ir_contrast < 1 and max_thickness > 0):
        raise InvalidParameterError("vis_contrast, min_ir_contrast must lie in (0, 1) and max_thickness be > 0")
    if not (0 <= noise <= 0.2 and 0 <= blur_px <= 10 and 1 <= wavelength_step_nm <= 50):
        raise InvalidParameterError("noise must lie in [0, 0.2], blur_px in [0, 10], wavelength_step_nm in [1, 50]")
    if shape_style not in SHAPE_STYLES:
        raise InvalidParameterError(f"unknown shape style {shape_style!r}; expected one of {', '.join(SHAPE_STYLES)}")
    for name, rng_ in (("line_width_px", line_width_px), ("decoy_width_px", decoy_width_px)):
        if rng_ is not None and not (len(rng_) == 2 and 0.5 <= rng_[0] <= rng_[1] <= 64):
            raise InvalidParameterError(f"{name} must be (low, high) with 0.5 <= low <= high <= 64")
    if not (0 < line_thickness <= 20 and 0 < shape_thickness <= 20 and 0 <= paint_variation <= 1
            and 0 <= ir_gain <= 0.5 and (ir_blur_px is None or 0 <= ir_blur_px <= 10)
            and len(ir_shift_px) == 2 and max(abs(float(v)) for v in ir_shift_px) <= 16):
        raise InvalidParameterError("line/shape thickness must lie in (0, 20], paint_variation in [0, 1], ir_gain in "
                                    "[0, 0.5], ir_blur_px in [0, 10], ir_shift_px within ±16 px")
    camera = camera or Camera()
    if pigments is None or isinstance(pigments, (str, os.PathLike)):
        pigments = load_pigments(pigments)

    lo = max(400.0, float(np.ceil(pigments.wavelengths_nm[0])))
    hi = min(1000.0, float(np.floor(pigments.wavelengths_nm[-1])))
    wl = np.arange(lo, hi + 1e-9, wavelength_step_nm)
    ps = pigments.resample(wl)
    W = camera.weights(wl)
    roles = {role: ps.find(*keys) for role, keys in ROLE_KEYWORDS.items()}
    if roles["white"] is None or roles["black"] is None:
        raise InvalidParameterError(f"the pigment set needs a white and a black; it has {', '.join(ps.names)}")

    # hidden materials over the ground
    ground = km_reflectance_infinite(*ps.mix({roles["white"]: 1.0}))
    line_ks = ps.mix({(line_pigment or roles["black"]): 1.0})
    line_x = float(line_thickness)
    shape_recipe = {roles["umber"]: 0.7, roles["black"]: 0.3} if roles["umber"] else {roles["black"]: 1.0}
    shape_ks = ps.mix(shape_recipe)
    shape_x = float(shape_thickness)
    hidden_spectra: dict[str, np.ndarray] = {}
    if kind in ("underdrawing", "mixed"):
        hidden_spectra["hidden/line"] = km_reflectance_layer(*line_ks, line_x, ground)
    if kind in ("composition", "mixed"):
        hidden_spectra["hidden/shape"] = km_reflectance_layer(*shape_ks, shape_x, ground)
    under = list(hidden_spectra.values())

    # visible paints that hide the hidden layer in RGB and not in IR
    paints: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    paint_ks: list[tuple[np.ndarray, np.ndarray]] = []
    spectra: dict[str, np.ndarray] = {"wavelengths_nm": wl, "ground": ground, "hidden": under[0], **hidden_spectra}
    seen: set[tuple[tuple[str, float], ...]] = set()
    present = {role: pname for role, pname in roles.items() if pname is not None}
    for name, recipe in PAINT_RECIPES.items():
        if any(r not in present for r in recipe):
            rejected[name] = "pigment missing from the set"
            continue
        mix: dict[str, float] = {}
        for role, frac in recipe.items():
            mix[present[role]] = mix.get(present[role], 0.0) + frac
        key = tuple(sorted(mix.items()))
        if key in seen:
            continue
        seen.add(key)
        K, S = ps.mix(mix)
        x_need = _hiding_thickness(K, S, under, ground, W, vis_contrast, max_thickness)
        if x_need is None:
            rejected[name] = f"does not hide the hidden layer in RGB within thickness {max_thickness:g}"
            continue
        c = _paint_contrasts(K, S, x_need, under, ground, W)
        if c[3] < min_ir_contrast:
            rejected[name] = f"hides the hidden layer in IR too (IR contrast {c[3]:.3f} < {min_ir_contrast:g})"
            continue
        paints.append({"name": name, "recipe": {k: round(v, 4) for k, v in mix.items()},
                       "thickness": round(float(x_need), 4), "rgb_contrast": [round(float(v), 4) for v in c[:3]],
                       "ir_contrast": round(float(c[3]), 4)})
        paint_ks.append((K, S))
        spectra[f"paint/{name}"] = km_reflectance_layer(K, S, x_need, ground)
        spectra[f"paint_over_hidden/{name}"] = km_reflectance_layer(K, S, x_need, under[0])
    if len(paints) < 2:
        raise InvalidParameterError(
            f"pigment set {ps.source!r} has fewer than two paints that hide the hidden layer in RGB and show it in "
            f"IR ({'; '.join(f'{k}: {v}' for k, v in rejected.items())}); raise vis_contrast or lower min_ir_contrast"
        )

    # geometry
    rng = np.random.default_rng(seed)
    rng2 = np.random.default_rng((seed, 1))  # draws of the widening options only
    scale = min(h, w) / 256.0
    shape = (h, w)
    line_cov = (_underdrawing(rng, shape, scale, line_width_px) if kind in ("underdrawing", "mixed")
                else np.zeros(shape))
    shape_cov = np.zeros(shape)
    if kind in ("composition", "mixed"):
        shape_cov = _composition(rng, shape) if shape_style == "classic" else _varied_composition(rng2, shape)
    labels = _patches(rng, shape, n_patches, scale)
    choice = rng.integers(0, len(paints), size=n_patches)
    if n_patches >= len(paints):  # use every paint at least once
        choice[: len(paints)] = rng.permutation(len(paints))
    patch_map = choice[labels]
    brush = _smooth_noise(rng, shape, (1.5 * scale, 12.0 * scale))  # elongated brush texture
    texture = np.clip(0.5 + 0.25 * brush, 0.0, 1.0)
    thickness = np.array([p["thickness"] for p in paints])[patch_map] * (1.05 + 0.35 * texture)
    decoy_cov = np.zeros(shape)
    if decoys:
        for _ in range(int(rng.integers(3, 6))):
            pts = _curve_points(rng, shape, rng.uniform(0.1, 0.3) * min(shape))
            width = rng.uniform(3.0, 6.0) * scale if decoy_width_px is None else rng.uniform(*decoy_width_px)
            decoy_cov = np.maximum(decoy_cov, _stroke_coverage(pts, shape, width))
    decoy_x = 1.5

    # render spectra, chunk by chunk
    Kp = np.stack([k for k, _ in paint_ks])
    Sp = np.stack([s for _, s in paint_ks])
    n_pix, n_wl = h * w, wl.size
    views: np.ndarray = np.empty((n_pix, 4))  # (pixels, RGB + IR), reshaped to (H, W, 4) below
    cube = np.empty((n_pix, n_wl), dtype=np.float32) if return_reflectance else None
    mix_t = np.zeros(shape)
    patch_map2 = patch_map
    if paint_variation > 0:  # a second paint mixed in, smoothly varying within each patch
        patch_map2 = rng2.integers(0, len(paints), size=n_patches)[labels]
        field = _smooth_noise(rng2, shape, rng2.uniform(6.0, 24.0) * scale)
        mix_t = paint_variation * np.clip(0.5 + 0.35 * field, 0.0, 1.0)
        x2 = np.array([p["thickness"] for p in paints])[patch_map2] * (1.05 + 0.35 * texture)
        thickness = np.maximum(thickness, x2)  # thick enough for either paint to hide the layer
    flat = {k: v.reshape(-1) for k, v in
            {"line": line_cov, "shape": shape_cov, "decoy": decoy_cov, "x": thickness, "p": patch_map,
             "p2": patch_map2, "t": mix_t}.items()}
    step = max(1, 2**20 // n_wl)
    for a in range(0, n_pix, step):
        b = min(n_pix, a + step)
        R = np.broadcast_to(ground, (b - a, n_wl)).copy()
        cov = flat["shape"][a:b, None]
        if cov.any():
            R += cov * (km_reflectance_layer(*shape_ks, shape_x, R) - R)
        cov = flat["line"][a:b, None]
        if cov.any():
            R += cov * (km_reflectance_layer(*line_ks, line_x, R) - R)
        p = flat["p"][a:b]
        if paint_variation > 0:
            p2, t = flat["p2"][a:b], flat["t"][a:b, None]
            R = km_reflectance_layer((1 - t) * Kp[p] + t * Kp[p2], (1 - t) * Sp[p] + t * Sp[p2],
                                     flat["x"][a:b, None], R)
        else:
            R = km_reflectance_layer(Kp[p], Sp[p], flat["x"][a:b, None], R)
        cov = flat["decoy"][a:b, None]
        if cov.any():
            R += cov * (km_reflectance_layer(*line_ks, decoy_x, R) - R)
        views[a:b] = R @ W
        if cube is not None:
            cube[a:b] = R
    views = views.reshape(h, w, 4)

    # camera: blur, encode, noise, quantise
    if ir_gain > 0:  # uneven illumination of the IR camera
        views[..., 3] *= 1.0 + ir_gain * np.clip(_smooth_noise(rng2, shape, rng2.uniform(0.15, 0.5) * min(h, w)),
                                                 -2.5, 2.5) / 2.5
    if ir_blur_px is not None and ir_blur_px != blur_px:
        if blur_px > 0:
            views[..., :3] = ndimage.gaussian_filter(views[..., :3], (blur_px, blur_px, 0), mode="reflect")
        if ir_blur_px > 0:
            views[..., 3] = ndimage.gaussian_filter(views[..., 3], ir_blur_px, mode="reflect")
    elif blur_px > 0:
        views = ndimage.gaussian_filter(views, (blur_px, blur_px, 0), mode="reflect")
    if any(float(v) != 0.0 for v in ir_shift_px):  # misregistration: IR content moves against the masks
        views[..., 3] = ndimage.shift(views[..., 3], [float(v) for v in ir_shift_px], order=1, mode="nearest")
    rgb = linear_to_srgb(views[..., :3]) + noise * rng.standard_normal((h, w, 3))
    ir = views[..., 3] + noise * rng.standard_normal((h, w))
    visible_rgb = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    ir16 = np.round(np.clip(ir, 0, 1) * 65535).astype(np.uint16)

    hidden_mask = np.maximum(line_cov, shape_cov) >= 0.5
    decoy_mask = decoy_cov >= 0.5
    mask = hidden_mask & ~decoy_mask
    parameters: dict[str, Any] = {
        "generator": "artlens.synth.hidden.make_hidden_scene",
        "size": [h, w], "kind": kind, "decoys": decoys, "seed": seed, "n_patches": n_patches,
        "vis_contrast": vis_contrast, "min_ir_contrast": min_ir_contrast, "max_thickness": max_thickness,
        "noise": noise, "blur_px": blur_px,
        "widening": {"line_width_px": None if line_width_px is None else [float(v) for v in line_width_px],
                     "line_pigment": line_pigment or roles["black"], "line_thickness": line_x,
                     "shape_style": shape_style, "shape_thickness": shape_x,
                     "decoy_width_px": None if decoy_width_px is None else [float(v) for v in decoy_width_px],
                     "paint_variation": paint_variation, "ir_gain": ir_gain,
                     "ir_blur_px": blur_px if ir_blur_px is None else ir_blur_px,
                     "ir_shift_px": [float(v) for v in ir_shift_px]},
        "wavelengths_nm": [float(wl[0]), float(wl[-1]), float(wavelength_step_nm)],
        "pigments": {"source": ps.source, "measured": ps.measured, "names": list(ps.names), "notes": list(ps.notes)},
        "roles": roles,
        "hidden": {"line": {"recipe": {(line_pigment or roles["black"]): 1.0}, "thickness": line_x},
                   "shape": {"recipe": shape_recipe, "thickness": shape_x}},
        "decoy": {"recipe": {roles["black"]: 1.0}, "thickness": decoy_x},
        "paints": paints,
        "rejected_paints": rejected,
        "camera": {"rgb_centres_nm": list(camera.rgb_centres_nm), "rgb_widths_nm": list(camera.rgb_widths_nm),
                   "ir_band_nm": list(camera.ir_band_nm)},
        "mask_fraction": float(mask.mean()), "decoy_fraction": float(decoy_mask.mean()),
    }
    return HiddenScene(visible_rgb, ir16, mask, decoy_mask, hidden_mask, patch_map.astype(np.int32), spectra,
                       parameters, None if cube is None else cube.reshape(h, w, n_wl))


def jitter_pigment_set(pigments: PigmentSet, rng: np.random.Generator, jitter: float = 0.35,
                       nir_absorption: float = 0.6) -> PigmentSet:
    """A random variant of a pigment set (built-in or measured).

    Each pigment's K and S are multiplied by ``exp(a + b t)`` with ``t = (wavelength - 700) / 300`` and
    ``a, b ~ N(0, jitter)`` (independently for K and S); every pigment but the blacks gets an extra
    absorption ``c * sigmoid((wavelength - 750) / 40)`` with ``c ~ U(0, nir_absorption)`` (a paint darker
    in the near infrared than its colour suggests). The same recipe as
    :func:`artlens.train.beneath.jitter_pigments`, for any set.
    """
    wl = pigments.wavelengths_nm
    t = (wl - 700.0) / 300.0
    nir = 1.0 / (1.0 + np.exp(-(wl - 750.0) / 40.0))
    K, S = pigments.K.copy(), pigments.S.copy()
    for p, name in enumerate(pigments.names):
        K[p] *= np.exp(rng.normal(0, jitter) + rng.normal(0, jitter) * t)
        S[p] *= np.exp(rng.normal(0, jitter) + rng.normal(0, jitter) * t)
        if "black" not in name.lower():
            K[p] += rng.uniform(0, nir_absorption) * nir
    return PigmentSet(list(pigments.names), wl, K, S, f"{pigments.source} (jittered)", pigments.measured,
                      [*pigments.notes, f"randomised: jitter {jitter:g}, NIR absorption up to {nir_absorption:g}"])


def make_varied_hidden_scene(size: tuple[int, int] = (256, 256), *, kind: str = "underdrawing", seed: int = 0,
                             pigments: PigmentSet | str | os.PathLike[str] | None = None,
                             jitter: float = 0.25, nir_absorption: float = 0.4) -> HiddenScene:
    """A scene of :func:`make_hidden_scene` with every widening option drawn at random.

    Meant to test detectors beyond the classic family: thin drawings (strokes 0.8-3.5 px, denser
    hatching, faint to strong: layer thickness 0.3-1.5), varied hidden shapes (70 % of scenes),
    decoys 1-8 px wide (85 % of scenes), paint varying within patches, 4-24 patches, uneven IR
    illumination (up to ±15 %), an IR camera up to twice as blurred as the RGB one, misregistration up to
    1.5 px (half of the scenes), noise 0.2-2 %, RGB hiding contrast 0.01-0.05, a randomised IR band
    (800-1000 nm), and the pigment set jittered (:func:`jitter_pigment_set`, ``jitter``,
    ``nir_absorption``; halved on each of up to 6 redraws when too few paints hide the layer).

    Args:
        size: ``(H, W)`` px.
        kind: :data:`SCENE_KINDS`.
        seed: seed of every draw.
        pigments: base set (a :class:`PigmentSet`, a folder, or ``None`` for :func:`load_pigments`).
        jitter: pigment K/S jitter (0 keeps the set).
        nir_absorption: largest extra NIR absorption of the paints.

    Returns:
        A :class:`HiddenScene`; ``parameters["widening"]`` records the draws.

    Raises:
        InvalidParameterError: no usable scene after 6 draws.
    """
    if pigments is None or isinstance(pigments, (str, os.PathLike)):
        pigments = load_pigments(pigments)
    rng = np.random.default_rng((seed, 2, SCENE_KINDS.index(kind) if kind in SCENE_KINDS else 9))
    for attempt in range(6):
        damp = 0.5**attempt
        ps = jitter_pigment_set(pigments, rng, jitter * damp, nir_absorption * damp) if jitter > 0 else pigments
        lo = float(rng.choice([800.0, 850.0, 900.0]))
        camera = Camera(ir_band_nm=(lo, min(1000.0, lo + float(rng.choice([100.0, 150.0, 200.0])))))
        w_lo = rng.uniform(0.8, 2.0)
        blur = rng.uniform(0.3, 1.0)
        shift = rng.uniform(-1.5, 1.5, 2) if rng.uniform() < 0.5 else np.zeros(2)
        try:
            return make_hidden_scene(
                size, kind=kind, seed=int(rng.integers(1 << 31)), pigments=ps, camera=camera, decoys=bool(
                    rng.uniform() < 0.85), n_patches=int(rng.integers(4, 25)),
                vis_contrast=float(rng.uniform(0.01, 0.05)), min_ir_contrast=float(rng.uniform(0.05, 0.2)),
                noise=float(np.exp(rng.uniform(np.log(0.002), np.log(0.02)))), blur_px=float(blur),
                wavelength_step_nm=20.0, line_width_px=(float(w_lo), float(w_lo + rng.uniform(0.0, 1.5))),
                line_thickness=float(np.exp(rng.uniform(np.log(0.3), np.log(1.5)))),
                shape_style="varied" if rng.uniform() < 0.7 else "classic",
                shape_thickness=float(rng.uniform(0.5, 2.0)),
                decoy_width_px=(float(rng.uniform(1.0, 3.0)), float(rng.uniform(3.0, 8.0))),
                paint_variation=float(rng.uniform(0.0, 0.6)), ir_gain=float(rng.uniform(0.0, 0.15)),
                ir_blur_px=float(blur * rng.uniform(1.0, 2.0)), ir_shift_px=(float(shift[0]), float(shift[1])))
        except InvalidParameterError:
            continue
    raise InvalidParameterError(f"could not draw a usable varied scene for seed {seed}")


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"size must be (height, width), got {size!r}") from None
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise InvalidParameterError(f"size must lie in 32..4096 pixels per side, got {h}x{w}")
    return h, w
