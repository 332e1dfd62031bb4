"""Training of aecodec models (PyTorch). Imported as `aecodec.train`; needs the `[train]` extra."""
