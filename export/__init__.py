"""Export of training checkpoints to model bundles (`python -m aecodec.export`); needs the `[train]` extra.

bundle.py writes a bundle (graphs.py, tables.py, parity.py, complexity.py, model_card.py); it
handles every model family the trainer produces.
"""
