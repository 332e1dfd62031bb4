"""aecodec: learned image and audio compression run time (numpy + ONNX Runtime + constriction; no torch).

    import aecodec
    data = aecodec.compress(pil_image_or_uint8_array, quality=75)
    image = aecodec.decompress(data)              # PIL image (as_array=True for numpy)
    aecodec.compress_file("photo.png", "photo.aec")
    aecodec.decompress_file("photo.aec", "photo.png")

Layout (one job per sub-package, data flows down): api (files, modality dispatch) -> image/, audio/
(pipelines) -> coding/ (quality, quantisation, range coding) and models/ (bundles, ONNX Runtime)
-> format/ (bytes).
"""
from __future__ import annotations

__version__ = "0.4.0"

from .api import compress_file, decompress_file, info  # noqa: E402
from .audio import compress_audio, compress_audio_file, decompress_audio, decompress_audio_to_file  # noqa: E402
from .errors import (AecError, AecNotice, FormatError, InputError, ModelMismatchError,  # noqa: E402
                     UnsupportedVersionError)
from .format import FORMAT_VERSION, SUPPORTED_VERSIONS  # noqa: E402
from .image import DEFAULT_QUALITY, compress, decompress, open_image  # noqa: E402
from .models import ModelBundle, load_bundle, select_providers  # noqa: E402
from .pillow_plugin import register as register_pillow_plugin  # noqa: E402

register_pillow_plugin()  # Image.open("x.aec") / img.save("x.aec") work after `import aecodec`

__all__ = [
    "AecError", "AecNotice", "FormatError", "InputError", "ModelMismatchError", "UnsupportedVersionError", "ModelBundle",
    "FORMAT_VERSION", "SUPPORTED_VERSIONS", "DEFAULT_QUALITY", "compress", "decompress", "compress_file",
    "decompress_file", "info", "load_bundle", "open_image", "select_providers", "__version__", "compress_audio",
    "decompress_audio", "compress_audio_file", "decompress_audio_to_file", "register_pillow_plugin",
]
