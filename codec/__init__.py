"""aecodec: learned image compression run time (numpy + ONNX Runtime + constriction; no torch).

    import aecodec
    data = aecodec.compress(pil_image_or_uint8_array, quality=75)
    image = aecodec.decompress(data)              # PIL image (as_array=True for numpy)
    aecodec.compress_file("photo.png", "photo.aec")
    aecodec.decompress_file("photo.aec", "photo.png")
"""
from __future__ import annotations

from pathlib import Path

__version__ = "0.2.0"

from .bundle import ModelBundle, load_bundle, select_providers  # noqa: E402
from .container import FORMAT_VERSION  # noqa: E402
from .errors import AecError, FormatError, InputError, ModelMismatchError, UnsupportedVersionError  # noqa: E402
from .audio import compress_audio, compress_audio_file, decompress_audio, decompress_audio_to_file  # noqa: E402
from .image import DEFAULT_QUALITY, compress, decompress, info, open_image  # noqa: E402
from .pillow_plugin import register as _register_pillow_plugin  # noqa: E402

_register_pillow_plugin()  # Image.open("x.aec") / img.save("x.aec") work after `import aecodec`


def compress_file(src: str | Path, dst: str | Path, quality: int = DEFAULT_QUALITY, *, overwrite: bool = False,
                  model=None) -> int:
    """Compress an image file to an .aec file; returns the number of bytes written."""
    from .fileio import write_atomic

    data = compress(open_image(src), quality=quality, model=model)
    write_atomic(str(dst), data, overwrite)
    return len(data)


def decompress_file(src: str | Path, dst: str | Path, *, overwrite: bool = False, model=None) -> None:
    """Decompress an .aec file to an image file (format from dst's extension)."""
    from .cli import main

    args = ["decompress", str(src), "-o", str(dst), "--quiet"] + (["-f"] if overwrite else [])
    if model is not None:
        args += ["--model", str(model)]
    if main(args) != 0:
        raise AecError(f"could not decompress {src} to {dst}")


__all__ = [
    "AecError", "FormatError", "InputError", "ModelMismatchError", "UnsupportedVersionError", "ModelBundle",
    "FORMAT_VERSION", "DEFAULT_QUALITY", "compress", "decompress", "compress_file", "decompress_file", "info",
    "load_bundle", "open_image", "select_providers", "__version__", "compress_audio", "decompress_audio", "compress_audio_file", "decompress_audio_to_file",
]
