"""The `aecodec` command line (main.py: parser and commands; batch.py: one file or many; bench.py)."""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
