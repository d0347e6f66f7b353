"""Every fixed set of values a command-line option accepts, as an :class:`~enum.StrEnum`.

:func:`artlens.cli.common.choice_option` turns one into an option whose ``--help`` lists the values.
The values are written here rather than imported from the library so that ``artlens --help`` does not
load the libraries behind every command; ``tests/cli/test_cli_tree.py`` checks that they match the
library's own lists.
"""

from __future__ import annotations

from enum import StrEnum


class CountMethod(StrEnum):
    """``threads count --method``: :data:`artlens.canvas.threads.run.METHODS`."""

    spectral = "spectral"
    cnn = "cnn"
    both = "both"


class Engine(StrEnum):
    """``--engine`` of batch commands: :data:`artlens.engine.ENGINES`."""

    local = "local"
    ray = "ray"


class DensityLoss(StrEnum):
    """``threads train --loss`` (density regressors; phase CNNs always use a masked MSE)."""

    nmae = "nmae"
    mae = "mae"
    mse = "mse"


class Aggregation(StrEnum):
    """``canvas compare|match --aggregation`` of Siamese patch scores."""

    mean = "mean"
    trimmed = "trimmed"
    median = "median"


class Linkage(StrEnum):
    """``canvas match --linkage`` of the roll clusters: :data:`artlens.canvas.clusters.LINKAGES`."""

    complete = "complete"
    average = "average"
    single = "single"


class FabricMethod(StrEnum):
    """``canvas train --method``."""

    siamese = "siamese"
    yarn = "yarn"


class Randomisation(StrEnum):
    """``canvas train --randomisation`` of the synthetic rolls."""

    classic = "classic"
    wide = "wide"


class BeneathMethod(StrEnum):
    """``beneath compare --method``: :data:`artlens.beneath.compare.METHODS`."""

    pixel = "pixel"
    gat = "gat"
    gcn = "gcn"
    residual = "residual"


class Modality(StrEnum):
    """``beneath compare --modality``: :data:`artlens.beneath.compare.OTHER_MODALITIES`."""

    ir = "ir"
    xray = "xray"
    band = "band"
    gray = "gray"


class Polarity(StrEnum):
    """``beneath compare --polarity``: :data:`artlens.beneath.graphs.POLARITIES`."""

    dark = "dark"
    bright = "bright"


class Segmentation(StrEnum):
    """``beneath compare|train --segmentation``: :data:`artlens.beneath.graphs.SEGMENTATIONS`."""

    stacked = "stacked"
    visible = "visible"
    other = "other"


class Registration(StrEnum):
    """``beneath compare --registration``: :data:`artlens.beneath.registration.METHODS`."""

    auto = "auto"
    feature = "feature"
    intensity = "intensity"
    none = "none"


class ExportFormat(StrEnum):
    """``catalog export --format``: the values of :data:`artlens.catalog.export.FORMATS`."""

    csv = "csv"
    parquet = "parquet"


class CatalogTable(StrEnum):
    """``catalog export --table``: :data:`artlens.catalog.schema.TABLES`."""

    analyses = "analyses"
    images = "images"
    artworks = "artworks"
    jobs = "jobs"


class ClassifierVariant(StrEnum):
    """``classify train --variant``."""

    two_branch = "two_branch"
    global_ = "global"
    patch = "patch"


class FeaturePooling(StrEnum):
    """Backbone features: ``classify train --features``, ``paintings train-verifier --pooling``."""

    stats = "stats"
    avg = "avg"


class TilePooling(StrEnum):
    """``classify train --pooling`` of the tiles."""

    attention = "attention"
    mean = "mean"


class Balance(StrEnum):
    """``classify train --balance`` of the classes."""

    loss = "loss"
    sampler = "sampler"
    none = "none"


class BlendMethod(StrEnum):
    """``classify blend --method``."""

    average = "average"
    stacked = "stacked"


class VerifierKind(StrEnum):
    """``paintings train-verifier --kind``."""

    metric = "metric"
    siamese = "siamese"


class ValidationArtistsFrom(StrEnum):
    """``paintings train-verifier --val-from``."""

    auto = "auto"
    all = "all"
    extra = "extra"


class EncoderKind(StrEnum):
    """``paintings train-encoder --kind``."""

    dae = "dae"
    swae = "swae"


class Prior(StrEnum):
    """``paintings train-encoder --prior`` of a sliced-Wasserstein autoencoder."""

    gaussian = "gaussian"
    sphere = "sphere"


class IndexType(StrEnum):
    """``paintings index --index-type``: :data:`artlens.paintings.search.INDEX_TYPES`."""

    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"
    pq = "pq"


class Precision(StrEnum):
    """``paintings index --precision`` of the CNN embedders."""

    fp32 = "fp32"
    bf16 = "bf16"


class MapMethod(StrEnum):
    """``paintings map --method`` of the 2-D projection."""

    tsne = "tsne"
    umap = "umap"
