"""Roll clusters: which plates of a collection were likely cut from one roll, from their pair probabilities.

Kept apart from :mod:`artlens.canvas.collection` (which scores the pairs) so that the command line can show the
defaults without importing the matching code.
"""

from __future__ import annotations

import numpy as np

from artlens.errors import InvalidParameterError

__all__ = ["CLUSTER_LINKAGE", "CLUSTER_THRESHOLD", "LINKAGES", "check_clustering", "cluster_plates"]

LINKAGES = ("complete", "average", "single")
CLUSTER_LINKAGE = "complete"
"""Default linkage of the roll clusters: a plate joins a cluster only when its probability with *every*
member is above the threshold."""
CLUSTER_THRESHOLD = 0.7
"""Default same-roll probability above which plates are linked. With :data:`CLUSTER_LINKAGE`, the pair (0.7,
complete) recovered the rolls best of single / average / complete linkage at 0.5 / 0.7 / 0.9, in family and
out of family (``benchmarks/bench_roll_clusters.py``; BENCHMARKS.md): the pair probabilities are calibrated at
even prior odds, while in a collection most pairs come from different rolls, so 0.5 with average linkage
chained nearly every plate into one cluster."""


def check_clustering(threshold: float, linkage: str) -> None:
    """Raise :class:`InvalidParameterError` unless ``0 < threshold < 1`` and ``linkage`` is one of :data:`LINKAGES`
    (called before any pair is scored, so that a bad option fails at once)."""
    if linkage not in LINKAGES:
        raise InvalidParameterError(f"linkage must be one of {', '.join(LINKAGES)}, got {linkage!r}", param="linkage")
    if not 0 < threshold < 1:
        raise InvalidParameterError(f"threshold must lie strictly between 0 and 1, got {threshold:g}",
                                    param="threshold")


def cluster_plates(prob: np.ndarray, threshold: float = CLUSTER_THRESHOLD,
                   linkage: str = CLUSTER_LINKAGE) -> list[int]:
    """Cluster labels (0-based, in order of first appearance) from a same-roll probability matrix.

    Hierarchical clustering on the distance ``1 − p`` cut so that two plates share a cluster, with
    ``complete`` linkage (the default), when every pair across the merged groups has a probability above
    ``threshold``; with ``average`` linkage when the mean probability between the merged groups is above
    it; with ``single`` linkage when a chain of pairs each above it joins them. Missing pairs (NaN) count
    as probability 0.

    Example:
        >>> cluster_plates(np.array([[1, .9, .1], [.9, 1, .2], [.1, .2, 1]]))
        [0, 0, 1]
    """
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as hlinkage
    from scipy.spatial.distance import squareform

    check_clustering(threshold, linkage)
    n = prob.shape[0]
    if n < 2:
        return [0] * n
    d = 1.0 - np.nan_to_num(np.asarray(prob, float), nan=0.0)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    z = hlinkage(squareform(np.clip(d, 0, 1), checks=False), method=linkage)
    raw = fcluster(z, t=(1.0 - threshold) - 1e-9, criterion="distance")  # strictly above the threshold
    order: dict[int, int] = {}
    return [order.setdefault(int(c), len(order)) for c in raw]
