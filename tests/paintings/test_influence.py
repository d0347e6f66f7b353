"""Influence graphs (CSV, GraphML, distances) and the re-ranking rule, checked by hand on 5 artists."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.influence import InfluenceGraph, influence_factor, rerank
from artlens.paintings.search import Hit

# a path of five artists: A - B - C - D - E (hops from A: 0, 1, 2, 3, 4)
EDGES = [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E")]


def hit(name: str, artist: str | None, cosine: float) -> Hit:
    return Hit(f"/c/{name}.jpg", cosine, 0, {"artist": artist} if artist else {})


def test_distances_are_hops_on_the_undirected_graph() -> None:
    g = InfluenceGraph.from_edges([*EDGES, ("X", "Y")])
    assert g.distance("A", "A") == 0
    assert g.distance("  a ", "b") == 1  # trimmed, case-insensitive
    assert g.distance("E", "A") == 4  # direction does not matter
    assert g.distance("A", "X") is None  # not connected
    assert g.distance("A", "nobody") is None and g.distance("nobody", "A") is None
    assert "c" in g and len(g) == 7 and g.artists[:2] == ["A", "B"]


def test_rerank_by_hand() -> None:
    g = InfluenceGraph.from_edges(EDGES)
    hits = [hit("f1", "F", 0.97), hit("e1", "E", 0.95), hit("c1", "C", 0.90), hit("b1", "B", 0.85),
            hit("a1", "A", 0.80), hit("a2", "A", 0.70), hit("n1", None, 0.60)]
    # query artist A, weight 1, damping 0.8; factor 1 + 1/d, d = 0 -> 0.5 (factor 3):
    #   a1: 0.80 * 3    = 2.40
    #   a2: 0.70 * 3    = 2.10 -> second A: * 0.8 = 1.68
    #   b1: 0.85 * 2    = 1.70
    #   c1: 0.90 * 1.5  = 1.35
    #   e1: 0.95 * 1.25 = 1.1875
    #   f1: 0.97 * 1    = 0.97  (F not in the graph)
    #   n1: 0.60 * 1    = 0.60  (no artist label)
    out = rerank(hits, "a", g, weight=1.0, k=10)
    assert [h.path.split("/")[-1] for h in out] == ["a1.jpg", "b1.jpg", "a2.jpg", "c1.jpg", "e1.jpg", "f1.jpg",
                                                     "n1.jpg"]
    assert [h.score for h in out] == pytest.approx([2.40, 1.70, 1.68, 1.35, 1.1875, 0.97, 0.60])
    assert [h.cosine for h in out] == pytest.approx([0.80, 0.85, 0.70, 0.90, 0.95, 0.97, 0.60])
    assert [h.graph_distance for h in out] == [0, 1, 0, 2, 4, None, None]
    assert [h.rank for h in out] == list(range(1, 8))
    # k cuts, top restricts the pool: the 3 best by cosine are f1, e1, c1
    assert [h.path[-6:] for h in rerank(hits, "A", g, k=2)] == ["a1.jpg", "b1.jpg"]
    top3 = rerank(hits, "A", g, top=3, k=10)
    assert [h.path[-6:] for h in top3] == ["c1.jpg", "e1.jpg", "f1.jpg"]  # 1.35, 1.1875, 0.97
    # weight 0 and no damping: the cosine order
    plain = rerank(hits, "A", g, weight=0.0, repeat_damping=1.0)
    assert [h.score for h in plain] == pytest.approx(sorted((h.score for h in hits), reverse=True))
    assert hits[0].rank == 0 and hits[0].graph_distance is None  # input untouched
    assert influence_factor(0, 2.0) == 5.0 and influence_factor(None) == 1.0 and influence_factor(4) == 1.25


def test_unknown_query_artist_warns_and_keeps_the_order() -> None:
    g = InfluenceGraph.from_edges(EDGES)
    hits = [hit("b1", "B", 0.5), hit("a1", "A", 0.9)]
    with pytest.warns(UserWarning, match="not in the influence graph"):
        out = rerank(hits, "Zed", g)
    assert [h.path[-6:] for h in out] == ["a1.jpg", "b1.jpg"]
    assert [h.score for h in out] == [0.9, 0.5] and all(h.graph_distance is None for h in out)


def test_rerank_parameters_are_checked() -> None:
    g = InfluenceGraph.from_edges(EDGES)
    for kwargs in ({"weight": -1.0}, {"repeat_damping": 0.0}, {"repeat_damping": 1.5}, {"k": 0}, {"top": 0}):
        with pytest.raises(InvalidParameterError):
            rerank([], "A", g, **kwargs)


def test_graph_files(tmp_path: Path) -> None:
    st = tmp_path / "st.csv"
    st.write_text("source,target,weight\nA,B,0.5\nB,C,\nC,D,2\nD,E,1\n")
    ai = tmp_path / "ai.csv"
    ai.write_text("artist,influenced_by\nB,A\nC,B; D\nE,D\n")
    gml = tmp_path / "g.graphml"
    raw = nx.DiGraph()
    for i, name in enumerate("ABCDE"):
        raw.add_node(f"n{i}", name=name)
    raw.add_edges_from([("n0", "n1"), ("n1", "n2"), ("n2", "n3"), ("n3", "n4")])
    nx.write_graphml(raw, gml)
    for path in (st, ai, gml):
        g = InfluenceGraph.load(path)
        assert len(g) == 5, path
        assert [g.distance("a", x) for x in "ABCDE"] == [0, 1, 2, 3, 4], path
    assert InfluenceGraph.load(st).graph.edges["a", "b"]["weight"] == 0.5

    with pytest.raises(InputNotFoundError):
        InfluenceGraph.load(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("from,to\nA,B\n")
    with pytest.raises(UnreadableInputError, match="source,target"):
        InfluenceGraph.load(bad)
    broken = tmp_path / "broken.graphml"
    broken.write_text("<graphml><graph")
    with pytest.raises(UnreadableInputError, match="GraphML"):
        InfluenceGraph.load(broken)
    with pytest.raises(InvalidParameterError, match=".csv or .graphml"):
        InfluenceGraph.load(tmp_path / "g.json")
