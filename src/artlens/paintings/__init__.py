"""Paintings: same-artist verification, embeddings and similarity search over a collection, style /
genre / medium classification.

- :mod:`~artlens.paintings.images` — open any painting photograph as 8-bit RGB (with notices).
- :mod:`~artlens.paintings.datasets` — folder trees and CSVs (``path``/``file`` columns, Painter by
  Numbers' ``all_data_info.csv``) into records and the catalog; class balancing; splits that keep
  artists together; :mod:`~artlens.paintings.pairs` balanced same/different pairs with hard negatives.
- :mod:`~artlens.paintings.features` — frozen backbone features (offline EfficientNet-Lite0), global
  view + full-resolution patches; the ``lite0`` embedder.
- :mod:`~artlens.paintings.verify` — the verifier (seed Siamese recipe and a metric-learning head),
  calibrated probabilities, reference sets, Grad-CAM.
- :mod:`~artlens.paintings.search`, :mod:`~artlens.paintings.influence`, :mod:`~artlens.paintings.maps`
  — Parquet + FAISS index, search, influence-graph re-ranking, 2-D maps of a collection.

Everything that needs torch imports it lazily or lives in modules only the commands that need it
import.
"""
