"""Exceptions of the run time. The CLI prints `str(error)` as a one-line message."""
from __future__ import annotations


class AecError(Exception):
    """Base class for every error aecodec raises on purpose."""


class InputError(AecError, ValueError):
    """The image or audio handed to the encoder cannot be coded (mode, size, dtype...)."""


class FormatError(AecError, ValueError):
    """The bytes are not a valid .aec file (bad magic, truncated, CRC mismatch, ...)."""


class UnsupportedVersionError(FormatError):
    """The file was written by a newer (or unknown) version of the format."""


class ModelMismatchError(AecError):
    """The file names a model that is not available to this decoder."""


class AecNotice(UserWarning):
    """Something the user should know about a successful run: the input was changed on the way in (16-bit
    reduced to 8 bits, CMYK without a profile), or a request could not be met exactly (a bitrate out of
    reach). Issued with `warnings.warn`; the CLI prints each as one `aecodec: notice:` line."""


def notify(message: str) -> None:
    """Issue an AecNotice (always shown once per call site by Python's default filters)."""
    import warnings

    warnings.warn(message, AecNotice, stacklevel=3)
