"""Canvas comparison over a collection: both methods, every pair, each plate counted and described once.

:class:`CanvasComparer` opens, counts (spectral maps, 1 cm windows every 0.25 cm by default) and --
when a fabric model is given -- describes each plate (yarn statistics, or Siamese patch embeddings)
the first time it is needed and keeps the result in memory, so scoring N plates pairwise costs N counts
and N descriptions plus N(N-1)/2 cheap comparisons (density alignment and the fabric comparison of the
cached descriptions). :func:`match_collection` runs all pairs of a folder or catalog, clusters likely
roll-mates and writes the report.

**Same-roll probability** (even prior odds, ``prior=0.5``)::

    logit P = logit(prior) + log BF_density + logit_fabric

- ``BF_density`` is the Sellke-Bayarri-Berger bound on the Bayes factor that a p-value ``q`` can
  carry, ``1 / (-e q ln q)`` for ``q < 1/e`` and 1 otherwise: an *upper bound* on the evidence of
  the density alignment (q = 0.001 gives at most 0.98, q = 0.05 at most 0.71, q ≥ 0.37 gives 0.5).
  Density matching can only raise the probability: pieces of one roll that share no threads look
  like pieces of different rolls, so a poor alignment is no evidence against a common roll.
- ``logit_fabric`` is the fabric model's logit (yarn statistics by default, or a Siamese model) after
  the Platt scaling fitted on held-out canvas pairs with balanced classes
  (:func:`artlens.models.calibration.fit_platt`), i.e. a log-likelihood ratio.

The two are added as independent evidence (naive Bayes), which overstates the certainty when both
see the same shared threads. The output lists the methods that ran (``"methods"``), keeps each one's
own result (``"density_match"``, ``"fabric"``) and says in ``"agreement"`` (and a note) when density
matching finds shared threads but the fabric score says different rolls
(:func:`evidence_agreement`): nothing is averaged silently. Without a fabric model the probability
comes from density matching alone and the output says so (``"fabric": null`` and a note).

References:
    T. Sellke, M. J. Bayarri, J. O. Berger, "Calibration of p values for testing precise null
    hypotheses", The American Statistician 55(1), 62-71, 2001.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD, check_clustering, cluster_plates
from artlens.canvas.matching import DensityMatch, match_density_maps
from artlens.canvas.threads import SpectralParams, ThreadCountResult, count_threads_spectral
from artlens.errors import ArtlensError, InputNotFoundError, InvalidParameterError, MissingResolutionError
from artlens.io.scan import PLATE_SUFFIXES, scan_images

if TYPE_CHECKING:
    from artlens.canvas.fabric import CanvasEmbedding, FabricModel, YarnModel

__all__ = ["PLATE_SUFFIXES", "CanvasComparer", "CanvasEntry", "combine_evidence",
           "density_bayes_factor", "evidence_agreement", "list_plates", "match_collection"]

MATCH_PARAMS = SpectralParams(step_cm=0.25)
"""Spectral maps for matching: the default 1 cm windows (``DEFAULT_WINDOW_CM``) every 0.25 cm (see
docs/canvas-matching.md, Limits)."""


def density_bayes_factor(p_value: float | None) -> float:
    """Upper bound of the Bayes factor for "same roll" carried by a density-match p-value.

    Example:
        >>> round(density_bayes_factor(0.001), 1), density_bayes_factor(0.5)
        (53.3, 1.0)
    """
    if p_value is None or not math.isfinite(p_value) or p_value >= 1 / math.e:
        return 1.0
    q = max(p_value, 1e-12)
    return 1.0 / (-math.e * q * math.log(q))


def combine_evidence(density_p: float | None, siamese_logit: float | None, prior: float = 0.5) -> float:
    """Same-roll probability from the density p-value and the calibrated Siamese logit (either may be
    ``None``); see the module docstring."""
    z = math.log(prior / (1 - prior)) + math.log(density_bayes_factor(density_p)) + (siamese_logit or 0.0)
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def evidence_agreement(density_p: float | None, fabric_score: float | None, fabric_method: str | None = None,
                       *, n_permutations: int | None = None, density_alpha: float = 0.01, fabric_low: float = 0.2,
                       fabric_high: float = 0.8) -> dict[str, Any]:
    """What each method says on its own, and whether they contradict each other.

    Density matching says "shared threads" when its p-value is below ``density_alpha`` (or is the
    smallest that ``n_permutations`` surrogates can give, ``1 / (n + 1)``, when that is larger) and
    otherwise nothing (pieces of one roll that share no threads look unrelated: no evidence either way). The
    fabric score says "same roll" at or above ``fabric_high``, "different rolls" at or below
    ``fabric_low``, else "undecided". They *disagree* when density matching finds shared threads and the
    fabric score says different rolls; the combined probability then lies between the two (both are
    added as independent evidence), and ``note`` says so in words.

    Returns:
        ``{"density": verdict | None, "fabric": verdict | None, "disagree": bool, "note": str | None}``.

    Example:
        >>> evidence_agreement(0.001, 0.05)["disagree"], evidence_agreement(0.5, 0.05)["disagree"]
        (True, False)
    """
    alpha = density_alpha if not n_permutations else max(density_alpha, 1.0 / (n_permutations + 1) + 1e-12)
    dens = None if density_p is None else ("shared threads" if density_p < alpha else "no shared threads")
    fab = None
    if fabric_score is not None:
        fab = ("same roll" if fabric_score >= fabric_high else
               "different rolls" if fabric_score <= fabric_low else "undecided")
    disagree = dens == "shared threads" and fab == "different rolls"
    note = None
    if disagree:
        note = (f"density matching and the fabric score disagree: the density profiles align (p = {density_p:.3g}, "
                f"shared threads) but the {fabric_method or 'fabric'} score says different rolls "
                f"({fabric_score:.2f}); the same-roll probability adds both as independent evidence, so it lies "
                "between them; look at the alignment figure before trusting either")
    return {"density": dens, "fabric": fab, "disagree": bool(disagree), "note": note}


@dataclass
class CanvasEntry:
    """One plate, opened, counted and (with a fabric model) embedded once."""

    path: Path
    name: str
    px_per_cm: float | None = None
    px_per_cm_source: str | None = None
    sha256: str | None = None
    shape: tuple[int, int] | None = None
    counts: ThreadCountResult | None = None
    count_error: str | None = None
    embedding: CanvasEmbedding | None = None
    embed_error: str | None = None
    error: ArtlensError | None = None
    notes: list[str] = field(default_factory=list)


class CanvasComparer:
    """Compare plates pairwise with density matching and (optionally) a fabric model (yarn statistics or
    Siamese, :func:`artlens.canvas.fabric.load_fabric_model`), caching each plate's thread count and
    fabric description.

    Args:
        fabric_model: a loaded :class:`~artlens.canvas.fabric.YarnModel` or
            :class:`~artlens.canvas.fabric.FabricModel`, or ``None`` for density only.
        px_per_cm: resolution override for every plate (px/cm).
        params: spectral counting parameters for the density maps.
        n_permutations: surrogates of the density-match p-value.
        n_patches, aggregation, n_boot: Siamese patches per plate, aggregation, bootstrap replicates.
        prior: prior probability of "same roll" for :func:`combine_evidence`.
        seed: seed of the surrogates, patch positions and bootstrap.

    Example:
        >>> cmp = CanvasComparer(None, n_permutations=199)  # doctest: +SKIP
        >>> cmp.compare("A.tif", "B.tif")["same_roll_probability"]  # doctest: +SKIP
        0.97
    """

    def __init__(self, fabric_model: FabricModel | YarnModel | None = None, *, px_per_cm: float | None = None,
                 params: SpectralParams = MATCH_PARAMS, n_permutations: int = 999, n_patches: int | None = None,
                 aggregation: str | None = None, n_boot: int = 1000, prior: float = 0.5, seed: int = 0):
        if not 0 < prior < 1:
            raise InvalidParameterError(f"prior must lie strictly between 0 and 1, got {prior}")
        self.model, self.px_per_cm, self.params = fabric_model, px_per_cm, params
        self.n_permutations, self.n_patches, self.aggregation = n_permutations, n_patches, aggregation
        self.n_boot, self.prior, self.seed = n_boot, prior, seed
        self._cache: dict[str, CanvasEntry] = {}
        self._warned: set[tuple[float, float]] = set()
        self.counts_computed = 0
        self.embeddings_computed = 0

    def entry(self, path: str | os.PathLike[str]) -> CanvasEntry:
        """The cached entry of a plate; opened, counted and embedded on first use. A plate that cannot
        be read gives an entry with ``error`` set (and is not retried)."""
        from artlens.io import open_plate

        p = Path(path).expanduser()
        key = str(p.resolve())
        if key in self._cache:
            return self._cache[key]
        e = CanvasEntry(p, p.name)
        self._cache[key] = e
        try:
            with open_plate(p, self.px_per_cm, require_resolution=True) as plate:
                e.px_per_cm, e.px_per_cm_source = plate.require_px_per_cm(), plate.px_per_cm_source
                e.sha256, e.shape = plate.sha256, plate.shape
                params = self.params
                nyquist = 0.5 * e.px_per_cm
                if params.band[1] >= nyquist:  # a coarse plate: search below its Nyquist limit
                    params = replace(params, band=(params.band[0], 0.9 * nyquist))
                    e.notes.append(f"{e.name}: density band limited to {0.9 * nyquist:g} threads/cm "
                                   f"(Nyquist limit at {e.px_per_cm:g} px/cm)")
                try:
                    e.counts = count_threads_spectral(plate, params)
                    self.counts_computed += 1
                except ArtlensError as exc:
                    e.count_error = str(exc)
                if self.model is not None:
                    try:
                        e.embedding = self.model.describe(plate, n_patches=self.n_patches, seed=self.seed,
                                                          name=p.name)
                        self.embeddings_computed += 1
                    except ArtlensError as exc:
                        e.embed_error = str(exc)
        except ArtlensError as exc:
            e.error = exc
        return e

    def settings(self) -> dict[str, Any]:
        """What rebuilds this comparer in another process (:meth:`from_settings`): the fabric model's
        folder and every setting, JSON-ready."""
        return {"fabric_model": None if self.model is None else str(self.model.path), "px_per_cm": self.px_per_cm,
                "params": asdict(self.params), "n_permutations": self.n_permutations, "n_patches": self.n_patches,
                "aggregation": self.aggregation, "n_boot": self.n_boot, "prior": self.prior, "seed": self.seed}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> CanvasComparer:
        """A comparer from :meth:`settings` (loads the fabric model)."""
        model = None
        if settings["fabric_model"] is not None:
            from artlens.canvas.fabric import load_fabric_model

            model = load_fabric_model(settings["fabric_model"], device=settings.get("device", "cpu"))
        fields: dict[str, Any] = {k: tuple(v) if k == "band" else v for k, v in settings["params"].items()}
        params = SpectralParams(**fields)
        return cls(model, px_per_cm=settings["px_per_cm"], params=params, n_permutations=settings["n_permutations"],
                   n_patches=settings["n_patches"], aggregation=settings["aggregation"], n_boot=settings["n_boot"],
                   prior=settings["prior"], seed=settings["seed"])

    def add_entry(self, entry: CanvasEntry) -> None:
        """Put an entry made elsewhere (another worker's :meth:`entry`) in the cache."""
        self._cache[str(Path(entry.path).expanduser().resolve())] = entry

    def compare(self, a: str | os.PathLike[str], b: str | os.PathLike[str], *, keep_match: bool = False,
                skip_density: str | None = None) -> dict[str, Any]:
        """Compare two plates; raises the plate's :class:`ArtlensError` when one cannot be read.

        ``skip_density``: leave density matching out and give this reason in the notes (the
        collection prefilter, :func:`density_prefilter`); the probability then comes from the fabric
        score alone, as density matching can only raise it.

        Returns:
            ``{"a", "b", "same_roll_probability", "evidence", "methods", "prior",
            "density_match": DensityMatch.to_dict() | None, "fabric": {"method", "score", "logit", ...} | None,
            "siamese": the fabric result when the model is a Siamese one (else None),
            "agreement": evidence_agreement(...), "notes": [...]}`` (plus ``"_match"``, the
            :class:`DensityMatch`, when ``keep_match``).
        """
        ea, eb = self.entry(a), self.entry(b)
        for e in (ea, eb):
            if e.error is not None:
                raise e.error
        pa, pb = ea.px_per_cm, eb.px_per_cm
        if pa is None or pb is None:  # set on every entry read without error (open_plate requires it)
            raise MissingResolutionError(f"{ea.name if pa is None else eb.name}: no resolution (px/cm)")
        notes: list[str] = [*ea.notes, *eb.notes]
        if abs(pa - pb) > 1e-6 * max(pa, pb):
            msg = (f"{ea.name} ({pa:g} px/cm) and {eb.name} ({pb:g} px/cm) differ in "
                   "resolution: density profiles are resampled to a common grid in cm and patches to the "
                   "model's px/cm")
            notes.append(msg)
            key = (min(pa, pb), max(pa, pb))
            if key not in self._warned:
                self._warned.add(key)
                warnings.warn(msg, UserWarning, stacklevel=2)
        match: DensityMatch | None = None
        if skip_density is not None:
            notes.append(f"density matching skipped: {skip_density}")
        elif ea.counts is None or eb.counts is None:
            notes.append("density matching skipped: " + "; ".join(x for x in (ea.count_error, eb.count_error) if x))
        else:
            try:
                match = match_density_maps(ea.counts, eb.counts, n_permutations=self.n_permutations, seed=self.seed)
            except InvalidParameterError as exc:
                notes.append(f"density matching not possible: {exc}")
        fabric = None
        logit = None
        if self.model is None:
            notes.append("no fabric model: the same-roll probability comes from density matching alone "
                         "(an upper bound from its p-value; never below 0.5, since pieces of one roll that share "
                         "no threads look unrelated)")
        elif ea.embedding is None or eb.embedding is None:
            notes.append(f"fabric score ({self.model.method}) skipped: "
                         + "; ".join(x for x in (ea.embed_error, eb.embed_error) if x))
        else:
            fabric = self.model.compare(ea.embedding, eb.embedding, aggregation=self.aggregation,
                                        n_boot=self.n_boot, seed=self.seed)
            notes += fabric.pop("notes", [])
            if not fabric["calibrated"]:
                notes.append("the fabric model has no fitted calibration: its score is sigmoid(logit)")
            cal = self.model.calibration
            logit = cal["a"] * fabric["logit"] + cal["b"]
        density = match.to_dict() if match is not None else None
        q = density["p_value"] if density is not None else None
        kind = self.model.kind if self.model is not None else None
        methods = [m for m, used in (("density", density is not None),
                                     (fabric["method"] if fabric else "", fabric is not None)) if used]
        used = (["density"] if density is not None else []) + ([kind] if fabric is not None and kind else [])
        evidence = "+".join(used) or "none"  # a fabric result implies a model, hence a kind
        agreement = evidence_agreement(q, fabric["score"] if fabric else None, fabric["method"] if fabric else None,
                                       n_permutations=density["n_permutations"] if density else None)
        if agreement["disagree"]:
            notes.append(agreement["note"])
        out = {
            "a": str(a), "b": str(b),
            "same_roll_probability": round(combine_evidence(q, logit, self.prior), 6),
            "evidence": evidence,
            "methods": methods,
            "prior": self.prior,
            "density_match": density,
            "fabric": fabric,
            "siamese": fabric if kind == "siamese" else None,
            "agreement": agreement,
            "notes": notes,
        }
        if keep_match:
            out["_match"] = match
        return out


def list_plates(source: str | os.PathLike[str]) -> list[Path]:
    """Plates of a folder (by suffix, sorted) or of a catalog database (its images, oldest first)."""
    p = Path(source).expanduser()
    if p.is_dir():
        return scan_images(p, recursive=False, suffixes=PLATE_SUFFIXES)
    if p.is_file():
        from artlens.catalog import Catalog

        with Catalog(p) as cat:
            return [Path(r["path"]) for r in cat.images() if r.get("modality", "xray") == "xray"]
    raise InputNotFoundError(f"{p}: no such folder or catalog")


def _fmt(x: Any, nd: int = 3) -> str:
    return "" if x is None else (f"{x:.{nd}g}" if isinstance(x, float) else str(x))


PAIR_COLUMNS = ["a", "b", "same_roll_probability", "evidence", "density_correlation", "density_p_value",
                "offset_x_cm", "offset_y_cm", "orientation", "fabric_method", "fabric_score", "fabric_ci95_lo",
                "fabric_ci95_hi", "siamese_score", "siamese_pairs", "disagree", "density_prefilter", "notes",
                "a_sha256", "b_sha256", "key"]
"""Columns of ``pairs.csv``; ``density_prefilter`` is ``candidate`` (density matching ran), ``skipped``
(the prefilter left it out) or ``off``."""

PREFILTER_THREADS_PER_CM = 1.0
"""Default prefilter tolerance: density matching runs on a pair only when the plates' median densities
agree within this (threads/cm) in both directions, for one of the two ways of pairing the directions."""


def density_stats(entry: CanvasEntry) -> tuple[float, float] | None:
    """Median valid density (threads/cm) of the horizontal and vertical threads of a counted plate."""
    from artlens.canvas.matching import _valid_density

    if entry.counts is None:
        return None
    out = []
    for d in ("horizontal", "vertical"):
        v = _valid_density(entry.counts.direction(d))
        v = v[np.isfinite(v)]
        if v.size == 0:
            return None
        out.append(float(np.median(v)))
    return out[0], out[1]


def density_prefilter(a: tuple[float, float] | None, b: tuple[float, float] | None,
                      tolerance: float | None) -> tuple[bool, float | None]:
    """Whether two plates could share threads: ``(candidate, difference)``.

    Pieces of one roll share its threads, so their densities agree: on the benchmark collections
    (BENCHMARKS.md, issue 20) same-roll pieces cut far apart differed by up to 0.8 threads/cm, as the
    warp's spacing drifts across a roll's width; a plate may be rotated, so the directions are
    paired both ways and the closer pairing counts. ``difference`` is the larger of the two direction
    differences for that pairing (threads/cm). Without statistics, or with ``tolerance=None``, every
    pair is a candidate.

    Example:
        >>> density_prefilter((12.0, 15.0), (15.2, 12.1), 0.75)
        (True, 0.2)
        >>> density_prefilter((12.0, 15.0), (13.0, 15.0), 0.75)[0]
        False
    """
    if a is None or b is None:
        return True, None
    diff = min(max(abs(a[0] - b[0]), abs(a[1] - b[1])), max(abs(a[0] - b[1]), abs(a[1] - b[0])))
    diff = round(diff, 4)
    return (tolerance is None or diff <= tolerance), diff


def _make_describer(settings: dict[str, Any]):  # noqa: ANN202 -- engine worker factory
    cmp = CanvasComparer.from_settings(settings)
    return lambda path: cmp.entry(path)


def _make_pair_scorer(settings: dict[str, Any] | None, entries: list[CanvasEntry],
                      comparer: CanvasComparer | None = None):  # noqa: ANN202 -- engine worker factory
    """The per-chunk function: score ``[(i, j, skip_reason | None, key), ...]`` from the cached entries."""
    cmp = comparer if comparer is not None else CanvasComparer.from_settings(settings or {})
    for e in entries:
        cmp.add_entry(e)

    def score(chunk: list[tuple[int, int, str | None, str]]) -> list[dict[str, Any]]:
        rows = []
        for i, j, skip, key in chunk:
            ea, eb = entries[i], entries[j]
            r = cmp.compare(ea.path, eb.path, skip_density=skip)
            d, f = r["density_match"], r["fabric"]
            rows.append({"a": ea.name, "b": eb.name, "same_roll_probability": r["same_roll_probability"],
                         "evidence": r["evidence"],
                         "density_correlation": d and d["correlation"], "density_p_value": d and d["p_value"],
                         "offset_x_cm": d and d["offset_cm"][0], "offset_y_cm": d and d["offset_cm"][1],
                         "orientation": d and d["orientation"], "fabric_method": f and f["method"],
                         "fabric_score": f and f["score"],
                         "fabric_ci95_lo": f and f.get("ci95") and f["ci95"][0],
                         "fabric_ci95_hi": f and f.get("ci95") and f["ci95"][1],
                         "siamese_score": f["score"] if f and f["method"] == "siamese" else None,
                         "siamese_pairs": f and f.get("pairs"), "disagree": r["agreement"]["disagree"],
                         "density_prefilter": "skipped" if skip else "candidate",
                         "notes": " | ".join(r["notes"]), "a_sha256": ea.sha256, "b_sha256": eb.sha256, "key": key})
        return rows

    return score


_FLOAT_COLUMNS = ("same_roll_probability", "density_correlation", "density_p_value", "offset_x_cm", "offset_y_cm",
                  "fabric_score", "fabric_ci95_lo", "fabric_ci95_hi", "siamese_score", "siamese_pairs")


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A ``pairs.csv`` row read back: numbers as floats, empty cells as None."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v == "":
            out[k] = None
        elif k in _FLOAT_COLUMNS:
            out[k] = float(v)
        elif k == "disagree":
            out[k] = v == "True"
        else:
            out[k] = v
    return out


def match_collection(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                     comparer: CanvasComparer, *, threshold: float = CLUSTER_THRESHOLD,
                     linkage: str = CLUSTER_LINKAGE,
                     catalog: str | os.PathLike[str] | None = None, use_catalog: bool = True,
                     max_evidence_figures: int = 12, prefilter: float | None = PREFILTER_THREADS_PER_CM,
                     engine: str = "local", workers: int = 1, ray_address: str | None = None,
                     device: str = "cpu", pairs_per_task: int = 25) -> dict[str, Any]:
    """All pairs of the plates of a folder or catalog: ``pairs.csv``, ``clusters.json``,
    ``similarity.png``, ``report.html`` in ``out_dir``, and one analysis per plate in the catalog.

    Each plate is counted and described once (on the engine: ``engine``, ``workers``, ``ray_address``,
    :func:`artlens.engine.run_items`); pairs are then scored from those cached results in chunks of
    ``pairs_per_task``. Density-map alignment (the costly part, ~0.2-0.6 s a pair) runs only on the pairs
    that :func:`density_prefilter` keeps (``prefilter`` threads/cm; ``None`` runs it on every pair); the
    others get the fabric score alone and say so in their notes. Each pair's row is appended to
    ``pairs.csv`` as it is scored, keyed by both plates' SHA-256 and the comparer's settings, so a killed
    match resumes and a rerun only redraws the outputs.

    Returns:
        The content of ``clusters.json`` plus ``files`` (paths written) and ``new_pairs`` (pairs scored
        by this call).
    """
    import functools

    from artlens import __version__
    from artlens.engine import Item, ResultLedger, item_key, run_items
    from artlens.report.figures import save_figure
    from artlens.report.matching import similarity_matrix_figure, write_match_report

    if prefilter is not None and not prefilter > 0:
        raise InvalidParameterError(f"prefilter must be positive (threads/cm), got {prefilter}", param="prefilter")
    check_clustering(threshold, linkage)
    paths = list_plates(source) if isinstance(source, str | os.PathLike) else [Path(p) for p in source]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = comparer.settings() | {"device": device}  # the device workers load a Siamese model on
    in_process = engine == "local" and workers == 1
    if in_process:
        entries = [comparer.entry(p) for p in paths]
    else:
        by_path: dict[str, CanvasEntry] = {}
        items = [Item(str(k), p.name, str(p)) for k, p in enumerate(paths)]
        for o in run_items(items, functools.partial(_make_describer, settings), engine=engine, workers=workers,
                           ray_address=ray_address):
            e = o.result if o.ok else CanvasEntry(Path(o.item.payload), o.item.label,
                                                  error=ArtlensError(o.error or "unknown error"))
            by_path[o.item.key] = e
            comparer.add_entry(e)
        entries = [by_path[str(k)] for k in range(len(paths))]
    ok = [e for e in entries if e.error is None]
    skipped = [{"plate": str(e.path), "error": str(e.error)} for e in entries if e.error is not None]
    for s in skipped:
        warnings.warn(f"skipped {s['plate']}: {s['error']}", UserWarning, stacklevel=2)
    if len(ok) < 2:
        raise InvalidParameterError(f"{source}: fewer than 2 readable plates to compare ({len(ok)} of {len(entries)})")
    n = len(ok)
    names = [e.name for e in ok]
    if len(set(names)) < n:
        raise InvalidParameterError("plates must have distinct file names (pairs.csv and the report name them)")
    model_sha = None if comparer.model is None else comparer.model.config.get("sha256")
    pair_settings = {k: v for k, v in settings.items() if k not in ("fabric_model", "device")}
    stats = [density_stats(e) for e in ok]

    ledger = ResultLedger(out / "pairs.csv", PAIR_COLUMNS, sort_key=lambda r: (r["a"], r["b"]))
    todo: list[tuple[int, int, str | None, str]] = []
    keys: dict[tuple[int, int], str] = {}
    n_candidates = 0
    for i in range(n):
        for j in range(i + 1, n):
            keys[i, j] = key = item_key(f"{ok[i].sha256}:{ok[j].sha256}", "canvas_match", pair_settings, model_sha)
            cand, diff = density_prefilter(stats[i], stats[j], prefilter)
            n_candidates += cand
            skip = None if cand else (f"prefilter: median densities differ by {diff:g} threads/cm "
                                      f"(> {prefilter:g}), so the plates share no threads")
            if key not in ledger.rows:
                todo.append((i, j, skip, key))
    new_pairs = 0
    try:
        chunks = [todo[k:k + pairs_per_task] for k in range(0, len(todo), pairs_per_task)]
        items = [Item(c[0][3], f"pairs {c[0][0]}-{c[0][1]}", c) for c in chunks]
        factory = ((lambda: _make_pair_scorer(None, ok, comparer)) if in_process
                   else functools.partial(_make_pair_scorer, settings, ok))
        for o in run_items(items, factory, engine=engine, workers=workers, ray_address=ray_address):
            if not o.ok:  # a bug, not bad input (unreadable plates were set aside above): say so
                raise ArtlensError(f"scoring {o.item.label} failed: {o.error}")
            for row in o.result:
                if prefilter is None:
                    row["density_prefilter"] = "off"
                ledger.append({k: _fmt(v, 6) if isinstance(v, float) else v for k, v in row.items()})
                new_pairs += 1
    finally:
        ledger.close()
    wanted = set(keys.values())
    ledger.rows = {k: r for k, r in ledger.rows.items() if k in wanted}
    ledger.rewrite()

    index = {name: k for k, name in enumerate(names)}
    prob = np.eye(n)
    dens_p = np.full((n, n), np.nan)
    siam = np.full((n, n), np.nan)
    rows = [_typed(r) for r in ledger.rows.values()]
    for r in rows:
        i, j = index[r["a"]], index[r["b"]]
        prob[i, j] = prob[j, i] = r["same_roll_probability"]
        if r["density_p_value"] is not None:
            dens_p[i, j] = dens_p[j, i] = r["density_p_value"]
        if r["fabric_score"] is not None:
            siam[i, j] = siam[j, i] = r["fabric_score"]
    labels = cluster_plates(prob, threshold, linkage)
    clusters: list[dict[str, Any]] = []
    for c in sorted(set(labels)):
        idx = [k for k in range(n) if labels[k] == c]
        if len(idx) < 2:
            continue
        sub = prob[np.ix_(idx, idx)][np.triu_indices(len(idx), 1)]
        clusters.append({"id": len(clusters) + 1, "members": [names[k] for k in idx],
                         "mean_probability": round(float(sub.mean()), 4),
                         "min_probability": round(float(sub.min()), 4)})
    singletons = [names[k] for k in range(n) if labels.count(labels[k]) == 1]

    evidence = f"density+{comparer.model.kind}" if comparer.model is not None else "density"
    summary: dict[str, Any] = {
        "threshold": threshold, "linkage": linkage,
        "rule": f"plates joined by {linkage} linkage of same-roll probability above {threshold:g}",
        "evidence": evidence, "prior": comparer.prior,
        "fabric_model": None if comparer.model is None else {"path": str(comparer.model.path),
                                                             "method": comparer.model.method,
                                                             "sha256": model_sha},
        "plates": [{"name": e.name, "path": str(e.path), "px_per_cm": e.px_per_cm, "sha256": e.sha256,
                    "cluster": next((c["id"] for c in clusters if e.name in c["members"]), None)} for e in ok],
        "clusters": clusters, "singletons": singletons, "skipped": skipped, "n_pairs": len(rows),
        "density_prefilter": {"threads_per_cm": prefilter,
                              "candidates": n_candidates if prefilter is not None else len(rows),
                              "rule": None if prefilter is None else
                              f"density matching only where the plates' median densities agree within {prefilter:g} "
                              "threads/cm in both directions (either pairing of the directions)"},
        "parameters": {"window_cm": comparer.params.window_cm, "step_cm": comparer.params.step_cm,
                       "n_permutations": comparer.n_permutations, "n_patches": comparer.n_patches,
                       "aggregation": comparer.aggregation, "seed": comparer.seed,
                       "prefilter_threads_per_cm": prefilter},
        "artlens_version": __version__,
    }
    (out / "clusters.json").write_text(json.dumps(summary, indent=2) + "\n")
    order = sorted(range(n), key=lambda k: (labels[k], k))
    fig = similarity_matrix_figure(names, prob, dens_p if comparer.model is None else siam, order=order,
                                   second_title=("density-match p-value" if comparer.model is None
                                                 else f"fabric score ({comparer.model.method})"),
                                   threshold=threshold)
    sim_png = save_figure(fig, out / "similarity.png")
    best = []  # the alignment figures of the strongest density-matched pairs, redone here (a few pairs)
    for r in sorted((r for r in rows if r["density_p_value"] is not None),
                    key=lambda r: -r["same_roll_probability"])[:max_evidence_figures]:
        m = comparer.compare(ok[index[r["a"]]].path, ok[index[r["b"]]].path, keep_match=True)["_match"]
        if m is not None:
            best.append((r["same_roll_probability"], r["a"], r["b"], m))
    report = write_match_report(out, summary, rows, fig, best)
    files = {"pairs_csv": str(out / "pairs.csv"), "clusters_json": str(out / "clusters.json"),
             "similarity_png": str(sim_png), "report_html": str(report)}
    if use_catalog:
        from artlens.catalog import Catalog

        with Catalog(catalog) as cat:
            for e, k in zip(ok, range(n), strict=True):
                if e.sha256 is None or e.shape is None:  # set on every plate read without error
                    raise ArtlensError(f"{e.name}: no checksum or size recorded")
                image_id = cat.add_image(e.path, e.sha256, "xray", e.px_per_cm, e.shape[1], e.shape[0])
                mates = [{"plate": names[j], "same_roll_probability": float(prob[k, j])}
                         for j in np.argsort(-prob[k]) if j != k and prob[k, j] > threshold]
                cat.add_analysis(image_id, "canvas_match", summary["parameters"] | {"threshold": threshold,
                                 "linkage": linkage, "evidence": evidence}, __version__,
                                 {"cluster": summary["plates"][k]["cluster"], "roll_mates": mates,
                                  "collection": [x.name for x in ok]}, list(files.values()),
                                 model_checksum=model_sha)
    summary["files"] = files
    summary["new_pairs"] = new_pairs
    return summary
