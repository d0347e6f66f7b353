"""One registry for every model family (``create_model``, ``list_models``), heads, losses and
checkpoint I/O (safetensors + JSON config). Arrives with the learned thread-counter issue."""
