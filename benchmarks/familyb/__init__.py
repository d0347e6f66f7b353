"""Family B: independent second simulators (canvas X-ray plates, hidden-layer scenes), for MEASURING only.

The X-ray part of family B was written from the physics of X-ray image formation (Beer-Lambert
attenuation through canvas threads, a lead-white ground that fills the hollows of a plain weave, paint,
defects, film/detector response) without reference to the project's own synthetic generator
(``artlens.synth``). Its purpose is to check that the shipped thread counters and roll matchers generalise
to plates they were never tuned on.

RULE: nothing that ships (model weights, thresholds, defaults, priors, hyper-parameters, architecture
choices) may be trained, tuned or selected on family B plates. Use them only to report accuracy.

Modules
-------
``xray``   plates (:func:`xray.make_plate`, :func:`xray.suite`, :func:`xray.window_truth`, :func:`xray.write_tiff`).
``rolls``  cuts from several canvas rolls with shared yarn statistics (:func:`rolls.roll_suite`).
``scenes`` hidden-layer scenes (underdrawings, pentimenti) in visible RGB and infrared (written separately).

Conventions (see ``xray``): image row y goes down, column x goes right; densities are threads/cm measured
perpendicular to the threads; angles in degrees, counter-clockwise positive as displayed; dense material
(lead white) is bright unless ``inverted``.
"""
