"""Pillow plugin: `Image.open("x.aec")` decodes, `img.save("x.aec", quality=60)` encodes.

`register()` (this module owns registration, as pillow-heif's register_heif_opener does) is called
once when `aecodec` is imported. Opening reads only the header (size and mode are known at once,
like any Pillow format); pixels are decoded on first access.
"""
from __future__ import annotations

from PIL import Image, ImageFile

from .format import container

FORMAT = "AEC"


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image codec"

    def _open(self) -> None:
        assert self.fp is not None
        self._data: bytes | None = self.fp.read()
        f = container.unpack(self._data)  # FormatError (a ValueError) for anything malformed
        if not isinstance(f.header, container.ImageHeader):
            raise SyntaxError("not an image .aec file")
        self._size = (f.header.width, f.header.height)
        self._mode = f.header.mode
        self.info["quality"] = f.header.quality
        self.info["model_id"] = f.header.model_id.hex()
        self.tile = []

    def load(self):
        if self._data is not None:
            from .image.codec import decode_to_array

            arr, mode, icc = decode_to_array(self._data)
            decoded = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)
            self.im = decoded.im
            self._mode = decoded.mode
            if icc:
                self.info["icc_profile"] = icc
            self._data = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp, filename) -> None:
    from .image.codec import DEFAULT_QUALITY, compress

    options = im.encoderinfo
    quality = options.get("quality", DEFAULT_QUALITY)
    icc = options.get("icc_profile") or im.info.get("icc_profile")
    if icc:
        im = im.copy()
        im.info["icc_profile"] = icc
    fp.write(compress(im, quality=quality, model=options.get("model")))


def register() -> None:
    """Make Pillow open and save .aec files (idempotent)."""
    Image.register_open(FORMAT, AecImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".aec")
    Image.register_mime(FORMAT, "image/x-aec")
