"""Recalibrate the shipped verifier on a held-out collection (issue 21: calibrate on held-out artists
*and* held-out collections, never on seen artists).

The Platt scaling the verifier was trained with was fitted on artists of its own training collection
(``peopleart_artists``); on other collections it is overconfident (shazam, adapted: ECE 0.10). Here it
is refitted on pairs of a collection the verifier never saw, scored the way ``artlens verify --pairs``
scores them by default (features centred on the pairs' own images):

- calibration collection: the ``rasta_wikipaintings_small`` artists with 5 to 12 images that are not
  among the 29 ``peopleart_artists`` (19 artists, 139 images; every same-artist pair and as many
  random different-artist pairs, seed 0);
- kept out of it, for measuring (``benchmarks/bench_attribution.py``): all of ``shazam_7artists`` and
  the RASTA artists with 13 images or more.

Only ``config.calibration`` (a, b) changes; the head weights and their checksum do not. The previous
values and what the new ones were fitted on are kept in ``config.json`` → ``recalibration``, and every
verification record carries the calibration in use.

    python benchmarks/calibrate_default_verifier.py
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"
MIN_IMAGES, MAX_IMAGES = 5, 12


def calibration_artists() -> tuple[list[str], list[str]]:
    seen = {r["label"] for r in csv.DictReader(open(SHARED / "peopleart_artists" / "labels.csv"))}
    rows = [r for r in csv.DictReader(open(SHARED / "rasta_wikipaintings_small" / "labels.csv"))
            if r["artist"] not in seen]
    n = Counter(r["artist"] for r in rows)
    rows = [r for r in rows if MIN_IMAGES <= n[r["artist"]] <= MAX_IMAGES]
    return [str(SHARED / "rasta_wikipaintings_small" / r["path"]) for r in rows], [r["artist"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "artlens-bench-features")
    ap.add_argument("--dry-run", action="store_true", help="Print the fit, do not write config.json.")
    args = ap.parse_args()
    from artlens.models import pretrained_path
    from artlens.models.calibration import fit_platt
    from artlens.paintings.features import cached_features
    from artlens.paintings.pairs import balanced_eval_pairs
    from artlens.paintings.verify import CONFIG, DEFAULT_VERIFIER, load_verifier

    paths, labels = calibration_artists()
    v = load_verifier()
    f = cached_features(paths, v.extractor, args.cache_dir / "rasta_calibration_stats_sqrt.npz")
    if len(f.paths) != len(paths):
        raise SystemExit(f"{len(paths) - len(f.paths)} calibration images could not be read")
    v.remember(f)
    v.adapt(paths, source="calibration collection")  # as `verify --pairs` does by default
    _, codes, _ = v.encode(paths)
    c = codes.numpy()
    pairs = balanced_eval_pairs(labels, max_pairs=20000, seed=0)
    s = (c[pairs[:, 0]] * c[pairs[:, 1]]).sum(1)
    a, b = fit_platt(s, pairs[:, 2].astype(float))
    folder = pretrained_path(DEFAULT_VERIFIER)
    doc = json.loads((folder / CONFIG).read_text())
    previous = doc.get("recalibration", {}).get("previous", doc["config"]["calibration"])
    doc["config"]["calibration"] = {"a": a, "b": b}
    doc["recalibration"] = {
        "method": "Platt scaling (artlens.models.calibration.fit_platt) of the raw pair scores, features centred "
                  "on the calibration images' own mean (the verify --pairs default)",
        "collection": "rasta_wikipaintings_small",
        "artists": sorted(set(labels)), "images": len(paths), "pairs": int(len(pairs)),
        "rule": f"RASTA artists with {MIN_IMAGES}-{MAX_IMAGES} images, none of the 29 peopleart_artists",
        "previous": previous, "date": datetime.now(UTC).date().isoformat(),
        "script": "benchmarks/calibrate_default_verifier.py"}
    print(json.dumps({"a": a, "b": b, "previous": previous, "artists": len(set(labels)), "images": len(paths),
                      "pairs": int(len(pairs))}))
    if not args.dry_run:
        (folder / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"written: {folder / CONFIG}")


if __name__ == "__main__":
    main()
