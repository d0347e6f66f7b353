"""Attribution against a reference set: a likelihood ratio calibrated on the artist's own works.

The workflow of authentication services: given works securely attributed to an artist (the
*reference set*) and works by other hands (*impostors*), how much more likely is the questioned
work's similarity to the references if it is by that artist than if it is not?

1. **Score.** The questioned work's similarity to a reference set is the mean of its ``k`` highest
   verifier scores (cosines) against the references (``k`` = 3 by default), averaged over the
   reference set with each reference left out in turn, so that it is measured against ``n − 1``
   references exactly like the calibration scores below.
2. **Calibration on the reference set itself.** Same-artist scores: each reference work against the
   other ``n − 1`` (leave-one-out). Different-artist scores: each impostor work against the
   reference set, like the questioned work.
3. **Likelihood ratio.** A weighted logistic regression of "same artist" on the score, with both
   classes given equal total weight (so its log-odds are the log likelihood ratio, even prior odds)
   and a small ridge on the slope (finite when the classes separate). The LR is then bounded by
   what the sample sizes support: no stronger than ``m + 1`` in favour with ``m`` impostor works,
   nor ``n + 1`` against with ``n`` reference works (one unseen work of either kind could sit on
   the other side). ``probability`` = LR / (1 + LR): the same-artist probability at even prior odds.
4. **Interval.** Percentile bootstrap (95 %): the reference works' and the impostor works' scores are
   resampled with replacement (200 draws, fixed seed), the regression refitted and the questioned
   score's LR taken each time; the interval is widened to contain the point estimate where needed.

References:
    N. Brümmer, J. du Preez, "Application-independent evaluation of speaker detection", Computer
    Speech & Language 2006 (logistic-regression calibration of scores to log LRs).
    G. S. Morrison, "Tutorial on logistic-regression calibration and fusion", Speech Communication 2013.
    P. Vergeer et al., "Numerical likelihood ratios outputted by LR systems are often based on
    extrapolation: when to stop extrapolating?", Science & Justice 2016 (bounding LRs by sample size).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InvalidParameterError, UnreadableInputError

MIN_REFERENCES = 3
TOP_K = 3
BOOTSTRAP = 200
RIDGE = 0.01
METHOD = ("mean of the k highest verifier scores against the reference set, each reference left out in turn; "
          "weighted logistic regression (equal class weights, ridge on the slope) of same-artist on score, fitted "
          "on leave-one-out reference scores against impostor scores; LR bounded by the sample sizes; 95 % "
          "percentile bootstrap over reference and impostor works")


# -- scores ------------------------------------------------------------------------------------------


def loo_scores(sim: np.ndarray, k: int) -> np.ndarray:
    """Scores of rows against a reference set, averaged over the ``n`` leave-one-out subsets.

    ``sim``: ``(q, n)`` similarities of ``q`` works to ``n`` references. For each left-out reference
    the score is the mean of the ``k`` highest remaining similarities; the average over the ``n``
    subsets has a closed form from the ``k + 1`` highest. Needs ``k < n``.
    """
    n = sim.shape[1]
    if not 0 < k < n:
        raise ValueError(f"k must be in 1..{n - 1}")
    top = -np.sort(-np.asarray(sim, float), axis=1)[:, : k + 1]
    s_k, s_k1 = top[:, :k].sum(1), top.sum(1)
    return ((n - k) * s_k + k * s_k1 - s_k) / (n * k)


def reference_self_scores(sim_rr: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out same-artist scores: each reference against the other ``n − 1`` (mean of the ``k``
    highest), ``(n,)``."""
    s = np.asarray(sim_rr, float).copy()
    np.fill_diagonal(s, -np.inf)
    return -np.sort(-s, axis=1)[:, :k].mean(1)


def effective_k(n: int, k: int = TOP_K) -> int:
    """``k`` used with ``n`` references: at most ``n − 2`` (leave-one-out sets of ``n − 1``, of which
    the ``k`` highest must leave one aside), at least 1."""
    return max(1, min(k, n - 2))


# -- the likelihood-ratio model ------------------------------------------------------------------------


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float = RIDGE) -> tuple[float, float]:
    """Weighted logistic regression ``logit = a·x + b`` by Newton's method, ridge on ``a``."""
    a = b = 0.0
    for _ in range(50):
        z = np.clip(a * x + b, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        r = w * (p - y)
        g = np.array([np.sum(r * x) + ridge * a, np.sum(r)])
        h = w * p * (1 - p)
        hess = np.array([[np.sum(h * x * x) + ridge, np.sum(h * x)], [np.sum(h * x), np.sum(h) + 1e-12]])
        step = np.linalg.solve(hess, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


@dataclass
class ScoreModel:
    """Score → likelihood ratio for one reference set, with bootstrap refits for the interval."""

    same: np.ndarray
    impostor: np.ndarray
    centre: float
    scale: float
    a: float
    b: float
    boot: np.ndarray  # (B, 2) refitted (a, b)

    @classmethod
    def fit(cls, same: np.ndarray, impostor: np.ndarray, *, bootstrap: int = BOOTSTRAP, seed: int = 0) -> ScoreModel:
        same, impostor = np.asarray(same, float), np.asarray(impostor, float)
        both = np.concatenate([same, impostor])
        centre, scale = float(both.mean()), float(both.std() or 1.0)

        def fit(s: np.ndarray, i: np.ndarray) -> tuple[float, float]:
            x = (np.concatenate([s, i]) - centre) / scale
            y = np.r_[np.ones(len(s)), np.zeros(len(i))]
            w = np.r_[np.full(len(s), 0.5 / len(s)), np.full(len(i), 0.5 / len(i))]
            return _fit(x, y, w)

        a, b = fit(same, impostor)
        rng = np.random.default_rng(seed)
        boot = np.array([fit(same[rng.integers(0, len(same), len(same))],
                             impostor[rng.integers(0, len(impostor), len(impostor))]) for _ in range(bootstrap)])
        return cls(same, impostor, centre, scale, a, b, boot.reshape(-1, 2))

    def _bounded_log_lr(self, a: np.ndarray | float, b: np.ndarray | float, score: float) -> np.ndarray:
        log_lr = np.asarray(a) * (score - self.centre) / self.scale + np.asarray(b)
        return np.clip(log_lr, -np.log(len(self.same) + 1), np.log(len(self.impostor) + 1))

    def likelihood_ratio(self, score: float) -> dict[str, Any]:
        """``{"likelihood_ratio", "log10_likelihood_ratio", "probability", "interval", "bounded"}``."""
        log_lr = float(self._bounded_log_lr(self.a, self.b, score))
        if len(self.boot):
            draws = self._bounded_log_lr(self.boot[:, 0], self.boot[:, 1], score)
            lo, hi = np.quantile(draws, [0.025, 0.975])
            lo, hi = min(float(lo), log_lr), max(float(hi), log_lr)
        else:
            lo = hi = log_lr
        bound = (-np.log(len(self.same) + 1), np.log(len(self.impostor) + 1))
        lr = float(np.exp(log_lr))
        return {"likelihood_ratio": lr, "log10_likelihood_ratio": log_lr / np.log(10), "probability": lr / (1 + lr),
                "interval": [float(np.exp(lo)), float(np.exp(hi))],
                "bounded": bool(np.isclose(log_lr, bound[0]) or np.isclose(log_lr, bound[1]))}

    def summary(self) -> dict[str, Any]:
        return {"same_artist_scores": {"n": int(len(self.same)), "mean": float(self.same.mean()),
                                       "min": float(self.same.min()), "max": float(self.same.max())},
                "impostor_scores": {"n": int(len(self.impostor)), "mean": float(self.impostor.mean()),
                                    "min": float(self.impostor.min()), "max": float(self.impostor.max())}}


# -- attribution ---------------------------------------------------------------------------------------


@dataclass
class ReferenceSet:
    """One candidate artist: the references' codes and the score model calibrated on them."""

    name: str  # the folder as the user gave it
    paths: list[str]
    codes: np.ndarray  # (n, E) unit codes
    k: int
    model: ScoreModel
    impostors: str  # where the impostors came from


def list_images(folder: str | os.PathLike[str]) -> list[str]:
    """Image files under ``folder`` (recursively, sorted, hidden ones skipped: :func:`artlens.io.scan.scan_images`).
    Raises a one-line error for a non-folder."""
    from artlens.io.scan import scan_images

    p = Path(folder)
    if not p.is_dir():
        raise InvalidParameterError(f"{folder}: must be a folder of images")
    return [str(x) for x in scan_images(p)]


def _codes(verifier: Any, paths: Sequence[str], what: str) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    if verifier.config.kind != "metric":
        raise InvalidParameterError("attribution against a reference set needs a metric verifier (codes compared "
                                    "by cosine); this one is " + verifier.config.kind)
    if not paths:
        return [], np.zeros((0, 1), np.float32), []
    ok, codes, failures = verifier.encode(list(paths))
    return ok, codes.numpy().astype(np.float64), failures


def build_reference_sets(verifier: Any, references: Sequence[tuple[str, Sequence[str]]],
                         impostors: Sequence[str] | None = None, *, k: int = TOP_K, bootstrap: int = BOOTSTRAP,
                         seed: int = 0) -> tuple[list[ReferenceSet], dict[str, Any]]:
    """Encode and calibrate every reference set.

    Args:
        references: ``(name, image paths)`` per candidate artist.
        impostors: works by other artists; ``None``: each candidate's impostors are the other
            candidates' references, or, with one candidate, the verifier's bank of training works.

    Returns:
        the calibrated sets and ``{"skipped": [...], "impostors": description}``.

    Raises:
        InvalidParameterError: fewer than :data:`MIN_REFERENCES` readable works in a set, or no impostors.
    """
    skipped: list[dict[str, str]] = []
    encoded = []
    for name, paths in references:
        ok, codes, failures = _codes(verifier, paths, name)
        skipped += [{"path": p, "reason": r} for p, r in failures]
        if len(ok) < MIN_REFERENCES:
            raise InvalidParameterError(f"{name}: {len(ok)} readable reference works, need at least {MIN_REFERENCES} "
                                        "(ideally 10 or more securely attributed works)")
        encoded.append((name, ok, codes))
    given = None
    if impostors is not None:
        ok, codes, failures = _codes(verifier, impostors, "impostors")
        skipped += [{"path": p, "reason": r} for p, r in failures]
        if len(ok) < MIN_REFERENCES:
            raise InvalidParameterError(f"`impostors`: {len(ok)} readable works, need at least {MIN_REFERENCES}",
                                        param="impostors")
        given = (ok, codes)
    bank = getattr(verifier, "bank", None)
    if given is None and len(encoded) == 1 and bank is None:
        raise InvalidParameterError("no impostor works: give `impostors` (works by other artists) or several "
                                    "reference sets (`references`)", param="impostors")
    sets = []
    for j, (name, ok, codes) in enumerate(encoded):
        if given is not None:
            imp_codes, source = given[1], f"--impostors ({len(given[0])} works)"
        elif len(encoded) > 1:
            others = [e for i, e in enumerate(encoded) if i != j]
            imp_codes = np.concatenate([e[2] for e in others])
            source = (f"the other references ({len(imp_codes)} works: "
                      + ", ".join(e[0] for e in others) + ")")
        else:
            assert bank is not None  # one reference, no impostors and no bank was refused above
            imp_codes = bank.codes.astype(np.float64)
            origin = bank.meta.get("source", "its training collection")
            source = (f"the verifier's bank of training works ({len(imp_codes)} works by "
                      f"{len(set(bank.artist.tolist()))} artists of {origin}; features only, no images ship)")
        ke = effective_k(len(ok), k)
        same = reference_self_scores(codes @ codes.T, ke)
        imp = loo_scores(imp_codes @ codes.T, ke)
        sets.append(ReferenceSet(name, ok, codes, ke, ScoreModel.fit(same, imp, bootstrap=bootstrap, seed=seed),
                                 source))
    return sets, {"skipped": skipped}


def attribute(sets: Sequence[ReferenceSet], image: str, code: np.ndarray, *, top: int = 5) -> dict[str, Any]:
    """Rank the candidate artists for one questioned work (its unit ``code``), best first."""
    ranking = []
    for rs in sets:
        sim = rs.codes @ np.asarray(code, np.float64)
        score = float(loo_scores(sim[None], rs.k)[0])
        lr = rs.model.likelihood_ratio(score)
        order = np.argsort(-sim)[:top]
        ranking.append({"reference": rs.name, **lr, "score": score, "references": len(rs.paths),
                        "impostors": rs.impostors, "k": rs.k, **rs.model.summary(),
                        "closest": [{"path": rs.paths[i], "score": float(sim[i])} for i in order]})
    ranking.sort(key=lambda r: (-r["log10_likelihood_ratio"], -r["score"]))
    return {"image": image, "ranking": ranking}


def attribute_paths(verifier: Any, questioned: Sequence[str], references: Sequence[tuple[str, Sequence[str]]],
                    impostors: Sequence[str] | None = None, *, k: int = TOP_K, top: int = 5,
                    bootstrap: int = BOOTSTRAP, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Attribution of each questioned work against the reference sets (see the module doc).

    Returns:
        one result per readable questioned work (``{"image", "ranking"}``) and the run's
        ``{"method", "parameters", "skipped"}``.

    Raises:
        UnreadableInputError: no questioned work could be read.
    """
    sets, info = build_reference_sets(verifier, references, impostors, k=k, bootstrap=bootstrap, seed=seed)
    ok, codes, failures = _codes(verifier, questioned, "questioned")
    if not ok:
        raise UnreadableInputError(failures[0][1] if failures else "no questioned image")
    results = [attribute(sets, p, codes[i], top=top) for i, p in enumerate(ok)]
    info["skipped"] += [{"path": p, "reason": r} for p, r in failures]
    info |= {"method": METHOD, "parameters": {"k": k, "bootstrap": bootstrap, "seed": seed, "ridge": RIDGE,
                                              "min_references": MIN_REFERENCES}}
    return results, info
