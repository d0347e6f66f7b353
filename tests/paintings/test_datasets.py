"""Painting datasets: folder and CSV import, bad CSV files, balancing, leak-free splits, catalog import."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.catalog import Catalog
from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.datasets import (
    PaintingDataset,
    PaintingRecord,
    class_weights,
    downsample_majority,
    group_split,
    load_dataset,
    sample_weights,
    seen_unseen_split,
)


def _img(path: Path, size: tuple[int, int] = (12, 8), value: int = 100) -> Path:
    """A tiny RGB image; the format follows the suffix (JPEG or PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 50)).save(path)
    return path


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _img(root / "monet" / "a.jpg")
    _img(root / "monet" / "late" / "b.png", size=(20, 10))
    _img(root / "degas" / "c.JPG")
    _img(root / "loose.jpg")
    (root / "notes.txt").write_text("not an image")
    _img(root / ".cache" / "d.jpg")
    return root


# --- folder trees ----------------------------------------------------------------------------------------


def test_folder_tree_labels_and_order(tree: Path) -> None:
    ds = PaintingDataset.from_folder(tree, label_column="artist")
    rel = [Path(p).relative_to(tree).as_posix() for p in ds.paths()]
    assert rel == ["degas/c.JPG", "loose.jpg", "monet/a.jpg", "monet/late/b.png"]
    assert all(Path(p).is_absolute() for p in ds.paths())
    assert ds.columns() == ["artist"]
    assert ds.labels("artist") == ["degas", "", "monet", "monet"]
    assert ds[1].get("artist") is None and ds[1].get("artist", "?") == "?"
    assert ds.counts("artist") == {"": 1, "degas": 1, "monet": 2}
    assert ds.root == tree and ds.missing == []


def test_folder_without_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "readme.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="no images found in"):
        load_dataset(tmp_path / "empty")


def test_load_dataset_dispatch_and_missing_path(tree: Path, tmp_path: Path) -> None:
    assert len(load_dataset(tree)) == 4
    with pytest.raises(InputNotFoundError):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(InvalidParameterError, match="CSV file only"):
        load_dataset(tree, images_dir=tree)


# --- CSV files -----------------------------------------------------------------------------------------------


def test_csv_with_path_column_resolves_against_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "coll"
    _img(base / "images" / "x.jpg")
    _img(base / "images" / "y.png")
    csv_path = _csv(base / "labels.csv", "path,split,style,artist,title\n"
                                         "images/x.jpg,train,Baroque,rembrandt, Night Watch \n"
                                         "\n"
                                         "images/y.png,test,Cubism,picasso,Guernica\n")
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working folder
    ds = load_dataset(Path("coll/labels.csv"))
    assert ds.paths() == [str(base / "images" / "x.jpg"), str(base / "images" / "y.png")]
    assert ds.columns() == ["split", "style", "artist", "title"]
    assert ds[0].labels == {"split": "train", "style": "Baroque", "artist": "rembrandt", "title": "Night Watch"}
    assert ds.source == str(csv_path) and ds.root == base
    assert ds.split("train").labels("artist") == ["rembrandt"]
    assert ds.classes("split") == ["test", "train"]


def test_csv_with_file_column_bom_and_images_dir(tmp_path: Path) -> None:
    _img(tmp_path / "pics" / "a" / "1.jpg")
    _img(tmp_path / "pics" / "b" / "2.jpg")
    csv_path = tmp_path / "meta" / "labels.csv"
    csv_path.parent.mkdir()
    csv_path.write_bytes("\ufefffile,label\na/1.jpg,a\nb/2.jpg,b\n".encode())
    ds = PaintingDataset.from_csv(csv_path, images_dir=tmp_path / "pics")
    assert ds.labels("label") == ["a", "b"]
    assert ds.root == tmp_path / "pics"
    assert ds.paths()[1] == str(tmp_path / "pics" / "b" / "2.jpg")


def test_csv_with_absolute_paths(tmp_path: Path) -> None:
    img = _img(tmp_path / "elsewhere" / "p.jpg")
    ds = load_dataset(_csv(tmp_path / "list" / "l.csv", f"path,label\n{img},x\n"))
    assert ds.paths() == [str(img)]


def _pbn(tmp_path: Path) -> Path:
    root = tmp_path / "pbn"
    _img(root / "train" / "1.jpg", size=(30, 20))
    _img(root / "train" / "2.jpg", value=10)
    _img(root / "test" / "3.jpg", value=200)
    return _csv(root / "all_data_info.csv",
                "artist,date,genre,pixelsx,pixelsy,size_bytes,source,style,title,artist_group,in_train,new_filename\n"
                "Claude Monet,1872,landscape,30,20,1,wikiart,Impressionism,Impression,train_only,True,1.jpg\n"
                "Claude Monet,c.1880,,12,8,1,wikiart,Impressionism,\"Poppies, near Argenteuil\",train_only,True,2.jpg\n"
                "Edgar Degas,,portrait,12,8,1,wikiart,Impressionism,Dancer,train_and_test,False,3.jpg\n")


def test_painter_by_numbers_csv(tmp_path: Path) -> None:
    ds = load_dataset(_pbn(tmp_path))
    root = tmp_path / "pbn"
    assert ds.paths() == [str(root / "train" / "1.jpg"), str(root / "train" / "2.jpg"), str(root / "test" / "3.jpg")]
    assert ds[1].get("title") == "Poppies, near Argenteuil"
    assert ds.counts("artist") == {"Claude Monet": 2, "Edgar Degas": 1}
    assert "new_filename" not in ds.columns()


def test_missing_images_are_skipped_with_one_warning(tmp_path: Path) -> None:
    _img(tmp_path / "ok.jpg")
    csv_path = _csv(tmp_path / "l.csv", "file,label\nok.jpg,a\ngone1.jpg,a\ngone2.jpg,b\n,b\n")
    with pytest.warns(UserWarning, match="skipped 3 of 4 rows") as caught:
        ds = load_dataset(csv_path)
    assert len(caught) == 1
    assert len(ds) == 1
    assert [reason for _, reason in ds.missing] == ["no such file", "no such file", "empty image path"]
    assert ds.missing[0][0] == str(tmp_path / "gone1.jpg")


def test_all_images_missing_is_an_error(tmp_path: Path) -> None:
    csv_path = _csv(tmp_path / "l.csv", "file,label\ngone1.jpg,a\n")
    with pytest.raises(InputNotFoundError, match="none of the 1 images"):
        load_dataset(csv_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (b"path,label\n", "header only"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 3: binary data"),
        (b"path,label\nx.jpg,caf\xe9\n", "line 2: not UTF-8"),
        (b"path,label\nx.jpg,a\ny.jpg,b,extra\n", "line 3: expected 2 fields"),
        (b"path,label\nx.jpg\n", "line 2: expected 2 fields"),
        (b"path,path\nx.jpg,y.jpg\n", "duplicate column"),
    ],
    ids=["empty", "blank", "header-only", "binary", "latin1", "too-many", "too-few", "dup-header"],
)
def test_bad_csv_files(tmp_path: Path, content: bytes, match: str) -> None:
    _img(tmp_path / "x.jpg")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(UnreadableInputError, match=match) as info:
        load_dataset(bad)
    assert str(bad) in str(info.value)


def test_csv_without_image_column_lists_columns(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="no image column.*columns are: artist, style"):
        load_dataset(_csv(tmp_path / "l.csv", "artist,style\nmonet,impressionism\n"))


def test_unknown_label_column_names_the_available_ones(tree: Path) -> None:
    ds = load_dataset(tree)
    with pytest.raises(InvalidParameterError, match="'artist'.*columns are: label"):
        ds.labels("artist")
    with pytest.raises(InvalidParameterError, match="values are: , degas, monet"):
        ds.split("train", column="label")


def test_subset_filter_and_slices(tree: Path) -> None:
    ds = load_dataset(tree)
    sub = ds.subset(np.array([3, 0]))
    assert sub.labels("label") == ["monet", "degas"] and sub.columns() == ["label"]
    assert len(ds.filter(lambda r: r.get("label") == "monet")) == 2
    assert len(ds[1:3]) == 2 and isinstance(ds[0], PaintingRecord)
    with pytest.raises(InvalidParameterError):
        ds.subset([10])


# --- balancing ------------------------------------------------------------------------------------------------

LABELS = ["a"] * 6 + ["b"] * 3 + ["c"] * 1


def test_downsample_majority_keeps_the_smallest_class_size() -> None:
    labels = ["a"] * 10 + ["b"] * 4 + ["c"] * 7
    keep = downsample_majority(labels, seed=3)
    assert Counter(labels[k] for k in keep) == {"a": 4, "b": 4, "c": 4}
    assert np.all(np.diff(keep) > 0) and keep.dtype == np.int64
    np.testing.assert_array_equal(keep, downsample_majority(labels, seed=3))
    capped = downsample_majority(labels, seed=0, max_per_class=5)
    assert Counter(labels[k] for k in capped) == {"a": 5, "b": 4, "c": 5}
    seeds = {tuple(downsample_majority(labels, seed=s)) for s in range(5)}
    assert len(seeds) > 1
    with pytest.raises(InvalidParameterError):
        downsample_majority(labels, seed=0, max_per_class=0)


def test_downsample_majority_on_a_dataset(tree: Path) -> None:
    ds = load_dataset(tree)
    keep = downsample_majority(ds, "label", seed=0)
    assert Counter(ds.subset(keep).labels("label")) == {"": 1, "degas": 1, "monet": 1}
    with pytest.raises(InvalidParameterError, match="name the label column"):
        downsample_majority(ds, seed=0)


def test_class_weights_by_hand() -> None:
    # N = 10, K = 3: w_a = 10 / (3 * 6), w_b = 10 / (3 * 3), w_c = 10 / (3 * 1)
    w = class_weights(LABELS)
    assert w == pytest.approx({"a": 10 / 18, "b": 10 / 9, "c": 10 / 3})
    sw = sample_weights(LABELS)
    assert sw.shape == (10,) and sw.mean() == pytest.approx(1.0)
    assert sw[0] == pytest.approx(0.5555555555555556) and sw[-1] == pytest.approx(3.3333333333333335)
    # every class carries the same total weight N / K
    assert {c: sum(x for x, y in zip(sw, LABELS, strict=True) if y == c) for c in w} == pytest.approx(
        {"a": 10 / 3, "b": 10 / 3, "c": 10 / 3})
    with pytest.raises(InvalidParameterError):
        class_weights([])


def test_class_weights_of_mixed_label_types() -> None:
    # scikit-learn's compute_class_weight sees class indices, so any hashable labels work: N / (K n_c)
    w = class_weights([1, "1", 1, None, ("t", 2)])
    assert w == {1: 5 / 8, "1": 5 / 4, None: 5 / 4, ("t", 2): 5 / 4}
    assert list(w) == [("t", 2), 1, "1", None]  # sorted by (str, type name), as before


# --- splits ---------------------------------------------------------------------------------------------------


def _groups(n_groups: int = 20, seed: int = 0) -> list[str]:
    sizes = np.random.default_rng(seed).integers(3, 15, size=n_groups)
    return [f"artist{g:02d}" for g, s in enumerate(sizes) for _ in range(s)]


def _check_partition(parts: dict[str, np.ndarray], n: int) -> None:
    joined = np.concatenate(list(parts.values()))
    assert joined.size == n and np.array_equal(np.sort(joined), np.arange(n))


def test_group_split_never_leaks_and_is_deterministic() -> None:
    groups = _groups()
    parts = group_split(groups, val_fraction=0.15, test_fraction=0.2, seed=1)
    _check_partition(parts, len(groups))
    owners = {name: {groups[k] for k in idx} for name, idx in parts.items()}
    assert not owners["train"] & owners["val"] and not owners["train"] & owners["test"]
    assert not owners["val"] & owners["test"]
    assert all(len(v) > 0 for v in owners.values())
    assert abs(parts["test"].size / len(groups) - 0.2) < 0.1
    again = group_split(groups, val_fraction=0.15, test_fraction=0.2, seed=1)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = group_split(groups, val_fraction=0.15, test_fraction=0.2, seed=2)
    assert any(not np.array_equal(parts[k], other[k]) for k in parts)


def test_group_split_edge_cases() -> None:
    parts = group_split([1, 1, 2, 3], val_fraction=0.0, test_fraction=0.5, seed=0)
    assert parts["val"].size == 0 and parts["train"].size > 0 and parts["test"].size > 0
    with pytest.raises(InvalidParameterError, match="2 groups cannot fill 3 splits"):
        group_split(["a", "b"], val_fraction=0.2, test_fraction=0.2, seed=0)
    with pytest.raises(InvalidParameterError, match="below 1"):
        group_split(["a", "b", "c"], val_fraction=0.5, test_fraction=0.5, seed=0)


def test_seen_unseen_split() -> None:
    groups = _groups(12)
    parts = seen_unseen_split(groups, n_unseen=3, seed=4)
    assert set(parts) == {"train", "val", "test_seen", "test_unseen"}
    _check_partition(parts, len(groups))
    owners = {name: {groups[k] for k in idx} for name, idx in parts.items()}
    assert len(owners["test_unseen"]) == 3
    assert not owners["test_unseen"] & (owners["train"] | owners["val"] | owners["test_seen"])
    seen = set(groups) - owners["test_unseen"]
    assert owners["train"] == owners["val"] == owners["test_seen"] == seen  # every seen artist in each split
    again = seen_unseen_split(groups, n_unseen=3, seed=4)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_seen_unseen_split_explicit_groups_and_errors() -> None:
    groups = _groups(6)
    parts = seen_unseen_split(groups, unseen_groups=["artist01", "artist04"], seed=0, val_fraction=0.1)
    assert {groups[k] for k in parts["test_unseen"]} == {"artist01", "artist04"}
    with pytest.raises(InvalidParameterError, match="not in the data: nobody"):
        seen_unseen_split(groups, unseen_groups=["nobody"], seed=0)
    with pytest.raises(InvalidParameterError, match="leaves none"):
        seen_unseen_split(groups, n_unseen=6, seed=0)
    with pytest.raises(InvalidParameterError, match="give n_unseen"):
        seen_unseen_split(groups, seed=0)


def test_seen_unseen_split_small_groups_warn_once() -> None:
    groups = ["a", "a", "b", "c", "c", "c", "c", "c", "d"]
    with pytest.warns(UserWarning, match="3 seen groups have too few items") as caught:
        parts = seen_unseen_split(groups, n_unseen=0, seed=0)
    assert len(caught) == 1
    _check_partition(parts, len(groups))
    assert {groups[k] for k in parts["train"]} == {"a", "b", "c", "d"}


# --- catalog --------------------------------------------------------------------------------------------------


def test_to_catalog_is_idempotent(tmp_path: Path) -> None:
    ds = load_dataset(_pbn(tmp_path))
    with Catalog(tmp_path / "cat.db") as cat:
        ids = ds.to_catalog(cat, "pbn")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert ds.to_catalog(cat, "pbn") == ids
        artworks, images = cat.artworks(source="import:pbn"), cat.images()
    assert len(set(ids)) == 3 and len(artworks) == 3 and len(images) == 3
    first = artworks[0]
    assert (first["artist"], first["title"], first["date"], first["style"], first["genre"]) == (
        "Claude Monet", "Impression", "1872", "Impressionism", "landscape")
    assert artworks[1]["genre"] is None and artworks[2]["date"] is None
    assert [a["source_id"] for a in artworks] == ["train/1.jpg", "train/2.jpg", "test/3.jpg"]
    assert (images[0]["width_px"], images[0]["height_px"], images[0]["modality"]) == (30, 20, "rgb")
    assert images[0]["artwork_id"] == first["id"] and len(images[0]["sha256"]) == 64


def test_to_catalog_artist_from_label(tree: Path, tmp_path: Path) -> None:
    ds = load_dataset(tree)
    with Catalog(tmp_path / "cat.db") as cat:
        ds.to_catalog(cat, "tree", artist_column="label")
        assert [a["artist"] for a in cat.artworks()] == ["degas", None, "monet", "monet"]
        ds.to_catalog(cat, "tree2", artist_column=None)
        assert len(cat.artworks()) == 8 and len(cat.images()) == 4


# --- real data ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_peopleart_artists(shared_data: Path) -> None:
    ds = load_dataset(shared_data / "paintings" / "peopleart_artists" / "labels.csv")
    assert len(ds) == 1328 and not ds.missing
    assert len(ds.classes("label")) == 29
    keep = downsample_majority(ds, "label", seed=0)
    assert len(set(Counter(ds.subset(keep).labels("label")).values())) == 1


@pytest.mark.shared_data
def test_rasta_splits(shared_data: Path) -> None:
    ds = load_dataset(shared_data / "paintings" / "rasta_wikipaintings_small" / "labels.csv")
    assert len(ds) == 748
    assert ds.classes("split") == ["test", "train", "val"]
    assert sum(len(ds.split(s)) for s in ("train", "val", "test")) == 748
    assert {"style", "artist", "title"} <= set(ds.columns())
