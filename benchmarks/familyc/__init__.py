"""Family C synthetic canvas radiographs: cuts from rolls of plain-weave fabric.

An independently written third simulator. Each *roll* draws its yarn and loom statistics once (thread densities,
spacing process with reed faults and drift, yarn thickness, slubs, twist, cross-section, stripes, crimp); each *cut*
of a roll is a fresh realisation of those random processes (different threads) imaged independently by a
Beer-Lambert model (threads, lead-white ground in the interstices, paint, lining, stretcher, cracks, losses) and a
film or digital detector (characteristic curve, blur, grain, banding, heel effect, quantisation). Rolls in one
family share nearly the same densities, so only yarn statistics tell them apart. See ``rolls.py``.

Role: written without reading ``artlens.synth`` or ``benchmarks/familyb`` (issue 18). Family B stays the
held-out family that fabric models are measured on; family C may be used to fit and develop them
(``artlens canvas train --method yarn --data plates.csv`` reads the ``plates.csv`` this package writes).
Methods never developed on it (the spectral thread counter, for one) can be measured on it too.
"""
