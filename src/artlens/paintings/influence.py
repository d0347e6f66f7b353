"""Artist influence graphs and the re-ranking of search results by them.

The seed project (art-deep-learning, "Artwork-retrieval") adjusts the cosine similarity of a search
result by how far its artist stands from the query's artist in a social influence graph (built
there from the DBpedia ontology). :class:`InfluenceGraph` holds such a graph (undirected, artists
matched case-insensitively) and :func:`rerank` applies the rule to a list of
:class:`~artlens.paintings.search.Hit`.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.search import Hit

__all__ = ["SAME_ARTIST_DISTANCE", "InfluenceGraph", "influence_factor", "normalise_artist", "rerank"]

SAME_ARTIST_DISTANCE = 0.5
"""Distance used in the factor ``1 + weight / d`` when both works are by the same artist (``d = 0``
would divide by zero): the same artist counts as "half a hop" away, i.e. factor ``1 + 2·weight``,
more than a direct influence (``1 + weight``)."""

_EDGE_COLUMNS = (("source", "target"), ("artist", "influenced_by"))


def normalise_artist(name: Any) -> str:
    """The key artists are matched by: trimmed, inner whitespace collapsed, case-folded."""
    return " ".join(str(name).split()).casefold()


class InfluenceGraph:
    """An undirected graph of artists linked by influence.

    Nodes are normalised artist names (:func:`normalise_artist`); the display name of each is kept.
    Distances are shortest-path lengths in hops: the direction of an influence and the edge weights
    do not enter them (weights are kept as the edge attribute ``weight``).

    Example:
        >>> g = InfluenceGraph.from_edges([("Cézanne", "Picasso"), ("Picasso", "Braque")])
        >>> g.distance("cézanne ", "BRAQUE")
        2
    """

    def __init__(self, graph: Any = None) -> None:
        import networkx as nx

        self.graph = nx.Graph() if graph is None else graph
        self._cache: dict[str, dict[str, int]] = {}

    # -- building ----------------------------------------------------------------------------------

    def add_edge(self, a: Any, b: Any, weight: float = 1.0) -> None:
        """Link two artists (names are normalised; the first spelling seen is displayed)."""
        ka, kb = normalise_artist(a), normalise_artist(b)
        if not ka or not kb:
            return
        for key, name in ((ka, a), (kb, b)):
            if key not in self.graph:
                self.graph.add_node(key, name=" ".join(str(name).split()))
        if ka != kb:
            self.graph.add_edge(ka, kb, weight=float(weight))
        self._cache.clear()

    @classmethod
    def from_edges(cls, edges: Iterable[Sequence[Any]]) -> InfluenceGraph:
        """Graph from ``(a, b)`` or ``(a, b, weight)`` tuples."""
        g = cls()
        for e in edges:
            g.add_edge(e[0], e[1], float(e[2]) if len(e) > 2 and e[2] is not None else 1.0)
        return g

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> InfluenceGraph:
        """Graph from a CSV with columns ``source,target`` (optional ``weight``) or
        ``artist,influenced_by``; an ``influenced_by`` cell may list several names separated by ``;``.

        Raises:
            InputNotFoundError: no such file.
            UnreadableInputError: not a UTF-8 CSV, or none of the accepted column pairs.
        """
        p = Path(path)
        if not p.is_file():
            raise InputNotFoundError(f"{p}: no such influence graph file")
        g = cls()
        try:
            with open(p, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                fields = [f.strip().lower() for f in (reader.fieldnames or [])]
                pair = next(((a, b) for a, b in _EDGE_COLUMNS if a in fields and b in fields), None)
                if pair is None:
                    raise UnreadableInputError(f"{p}: an influence graph CSV needs columns source,target (optional "
                                               f"weight) or artist,influenced_by; found {', '.join(fields) or 'none'}")
                for n, row in enumerate(reader, start=2):
                    row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
                    a = row.get(pair[0], "")
                    w_text = row.get("weight", "")
                    try:
                        w = float(w_text) if w_text else 1.0
                    except ValueError:
                        raise UnreadableInputError(f"{p}: line {n}: weight {w_text!r} is not a number") from None
                    targets = row.get(pair[1], "")
                    for b in (targets.split(";") if pair[1] == "influenced_by" else [targets]):
                        if a and b.strip():
                            g.add_edge(a, b, w)
        except UnicodeDecodeError:
            raise UnreadableInputError(f"{p}: not a UTF-8 CSV file") from None
        except csv.Error as exc:
            raise UnreadableInputError(f"{p}: malformed CSV ({exc})") from None
        return g

    @classmethod
    def from_graphml(cls, path: str | os.PathLike[str]) -> InfluenceGraph:
        """Graph from GraphML (read with networkx); a node's ``name`` or ``label`` attribute is the
        artist when present, else its id.

        Raises:
            InputNotFoundError: no such file.
            UnreadableInputError: not valid GraphML.
        """
        import networkx as nx

        p = Path(path)
        if not p.is_file():
            raise InputNotFoundError(f"{p}: no such influence graph file")
        try:
            raw = nx.read_graphml(p)
        except Exception as exc:  # noqa: BLE001 - networkx raises XML, key and value errors alike
            text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise UnreadableInputError(f"{p}: not a readable GraphML file ({text})") from None
        g = cls()
        names = {n: d.get("name") or d.get("label") or n for n, d in raw.nodes(data=True)}
        for n in raw.nodes:
            key = normalise_artist(names[n])
            if key and key not in g.graph:
                g.graph.add_node(key, name=str(names[n]).strip())
        for a, b, d in raw.edges(data=True):
            w = d.get("weight", 1.0)
            try:
                w = float(w)
            except (TypeError, ValueError):
                w = 1.0
            g.add_edge(names[a], names[b], w)
        return g

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InfluenceGraph:
        """Graph from a ``.csv`` or ``.graphml`` / ``.xml`` file (chosen by the suffix)."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".graphml", ".xml"):
            return cls.from_graphml(p)
        if suffix in (".csv", ".txt"):
            return cls.from_csv(p)
        raise InvalidParameterError(f"{p}: influence graph must be a .csv or .graphml file")

    # -- queries -----------------------------------------------------------------------------------

    def __contains__(self, artist: object) -> bool:
        return normalise_artist(artist) in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __repr__(self) -> str:
        return f"InfluenceGraph({self.graph.number_of_nodes()} artists, {self.graph.number_of_edges()} links)"

    @property
    def artists(self) -> list[str]:
        """Display names of the artists, sorted."""
        return sorted(str(d.get("name", n)) for n, d in self.graph.nodes(data=True))

    def distances_from(self, artist: Any) -> dict[str, int]:
        """Hops from ``artist`` to every artist it is connected to, keyed by normalised name
        (empty when the artist is unknown)."""
        import networkx as nx

        key = normalise_artist(artist)
        if key not in self.graph:
            return {}
        if key not in self._cache:
            self._cache[key] = dict(nx.single_source_shortest_path_length(self.graph, key))
        return self._cache[key]

    def distance(self, a: Any, b: Any) -> int | None:
        """Shortest-path length in hops between two artists on the undirected graph: 0 for the same
        artist, ``None`` when either is unknown or they are not connected."""
        return self.distances_from(a).get(normalise_artist(b))


def influence_factor(d: float | None, weight: float = 1.0) -> float:
    """The re-ranking factor ``1 + weight / d`` for a graph distance ``d`` in hops.

    ``d = 0`` (same artist) uses :data:`SAME_ARTIST_DISTANCE` (factor ``1 + 2·weight``);
    ``d = None`` (no path, or an artist missing from the graph) gives 1.
    """
    if d is None:
        return 1.0
    return 1.0 + weight / (SAME_ARTIST_DISTANCE if d == 0 else float(d))


def rerank(
    hits: Sequence[Hit],
    query_artist: str | None,
    graph: InfluenceGraph,
    *,
    weight: float = 1.0,
    top: int = 100,
    k: int = 10,
    repeat_damping: float = 0.8,
    artist_key: str = "artist",
) -> list[Hit]:
    """Re-rank search results by the influence distance between artists (the seed project's rule).

    1. Take the ``top`` best hits by cosine similarity ``s``.
    2. Rescore each ``s · (1 + weight / d)`` with ``d`` the hops between the query's artist and the
       hit's artist (:meth:`InfluenceGraph.distance`); the same artist (``d = 0``) counts as
       ``d = 0.5`` (:data:`SAME_ARTIST_DISTANCE`), an artist without a path or missing from the
       graph (or a hit without an artist label) keeps factor 1. The rule multiplies, so it is meant
       for the positive cosines of the top hits.
    3. Damp repeats: going down the rescored list, the n-th *extra* hit of an artist already seen is
       multiplied by ``repeat_damping ** n`` (the first stays, the second × 0.8, the third × 0.64,
       ...), so one prolific artist does not fill the list; then sort again.
    4. Return the best ``k``, ranked from 1, with ``score`` (final), ``cosine`` and ``graph_distance``.

    When ``query_artist`` is not in the graph, a warning says so and the hits are returned in their
    cosine order, not re-ranked (``graph_distance`` stays ``None``).

    Args:
        hits: search results (their ``cosine``, or ``score`` when not set, is the similarity).
        query_artist: the query's artist.
        graph: the influence graph.
        weight: strength of the influence term (0 keeps the cosine order, apart from damping).
        top: how many hits enter the re-ranking.
        k: how many are returned.
        repeat_damping: factor in (0, 1] per extra hit of one artist (1: no damping).
        artist_key: label of the hits holding the artist.

    Returns:
        The re-ranked hits (new objects; the input is not changed).

    Raises:
        InvalidParameterError: negative or non-finite weight, damping outside (0, 1], ``top`` or ``k`` < 1.

    References:
        Gatti, I. (2018). art-deep-learning: artwork retrieval with deep autoencoders and a social
        influence graph (DBpedia). https://github.com/ignaciogatti/art-deep-learning
    """
    if not (math.isfinite(weight) and weight >= 0):
        raise InvalidParameterError(f"influence weight {weight}: need a finite value >= 0")
    if not 0 < repeat_damping <= 1:
        raise InvalidParameterError(f"repeat damping {repeat_damping}: need a value in (0, 1]")
    if int(top) < 1 or int(k) < 1:
        raise InvalidParameterError(f"top = {top}, k = {k}: both need to be at least 1")

    def cos(h: Hit) -> float:
        return float(h.score if h.cosine is None else h.cosine)

    pool = sorted(hits, key=cos, reverse=True)[: int(top)]
    if not query_artist or query_artist not in graph:
        warnings.warn(f"query artist {query_artist!r} is not in the influence graph ({len(graph)} artists); "
                      f"results are not re-ranked", stacklevel=2)
        return [replace(h, score=cos(h), cosine=cos(h), rank=i + 1, graph_distance=None)
                for i, h in enumerate(pool[: int(k)])]

    dist = graph.distances_from(query_artist)
    scored: list[tuple[float, int, Hit, str | None, int | None]] = []
    for i, h in enumerate(pool):
        artist = h.labels.get(artist_key)
        key = normalise_artist(artist) if artist else None
        d = dist.get(key) if key else None
        scored.append((cos(h) * influence_factor(d, weight), i, h, key, d))
    scored.sort(key=lambda t: (-t[0], t[1]))
    seen: dict[str, int] = {}
    damped = []
    for s, i, h, key, d in scored:
        if key:
            n = seen.get(key, 0)
            seen[key] = n + 1
            s *= repeat_damping ** n
        damped.append((s, i, h, d))
    damped.sort(key=lambda t: (-t[0], t[1]))
    return [replace(h, score=float(s), cosine=cos(h), rank=r + 1, graph_distance=d)
            for r, (s, _, h, d) in enumerate(damped[: int(k)])]
