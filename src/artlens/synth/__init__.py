"""Synthetic canvas X-ray plates with ground truth, for testing and training thread counters.

:func:`make_plate` renders one plain-weave plate from :class:`WeaveParams`; :class:`Roll` holds a
bolt of fabric from which :meth:`Roll.cut` renders plates that share its thread sequences.
"""

from artlens.synth.roll import Roll
from artlens.synth.weave import (
    CUSPING_EDGES,
    DIRECTIONS,
    SyntheticPlate,
    ThreadFamily,
    WeaveParams,
    make_plate,
    plate_shape,
    write_plate_tiff,
)

__all__ = [
    "CUSPING_EDGES",
    "DIRECTIONS",
    "Roll",
    "SyntheticPlate",
    "ThreadFamily",
    "WeaveParams",
    "make_plate",
    "plate_shape",
    "write_plate_tiff",
]
