"""Pillow plugin: `Image.open("x.aec")` decodes, `img.save("x.aec", quality=60)` encodes (also `refine=STEPS`).

`register()` (this module owns registration, as pillow-heif's register_heif_opener does) is called
once when `aecodec` is imported. Opening reads only the header and the small sections (size, mode and
`.info`, the ICC profile included, are complete at once, like any Pillow format); pixels are decoded on
first access. Errors follow Pillow's conventions: a malformed or truncated file is not identified
(`UnidentifiedImageError` from `Image.open`), a file that cannot be decoded raises OSError from `load()`.
"""
from __future__ import annotations

from PIL import Image, ImageFile

from .errors import AecError
from .format import container, sections

FORMAT = "AEC"


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image codec"

    def _open(self) -> None:
        assert self.fp is not None
        self._data: bytes | None = self.fp.read()
        try:  # Image.open turns SyntaxError into UnidentifiedImageError (an OSError), as for any format
            f = container.unpack(self._data)
            icc = None
            if container.SECTION_ICC in f.sections:
                from .image.pixels import MAX_ICC_BYTES

                icc = sections.unpack_icc(f.sections[container.SECTION_ICC], MAX_ICC_BYTES)
        except AecError as e:
            raise SyntaxError(f"not a valid .aec image ({e})") from None
        if not isinstance(f.header, container.ImageHeader):
            raise SyntaxError("not an image .aec file (it holds audio)")
        self._size = (f.header.width, f.header.height)
        self._mode = f.header.mode
        self.info["quality"] = f.header.quality
        self.info["model_id"] = f.header.model_id.hex()
        self.info["lossless"] = container.is_lossless(f)
        if icc:
            self.info["icc_profile"] = icc
        self.tile = []

    def load(self):
        if self._data is not None:
            from .image.codec import decode_to_array

            try:
                arr, mode, _ = decode_to_array(self._data)
            except AecError as e:  # Pillow clients expect OSError from load()
                raise OSError(f"cannot decode .aec image: {e}") from None
            decoded = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)
            self.im = decoded.im
            self._mode = decoded.mode
            self._data = None
        return Image.Image.load(self)


def _save_all(im: Image.Image, fp, filename) -> None:
    """save_all=True: fine for one frame; several are refused (an .aec file holds one still image)."""
    if getattr(im, "n_frames", 1) > 1 or im.encoderinfo.get("append_images"):
        raise OSError("AEC stores one still image, not several frames (save without save_all)")
    _save(im, fp, filename)


def _save(im: Image.Image, fp, filename) -> None:
    from .image.codec import DEFAULT_QUALITY, compress

    options = im.encoderinfo
    quality = options.get("quality", DEFAULT_QUALITY)
    icc = options.get("icc_profile") or im.info.get("icc_profile")
    if icc or getattr(im, "n_frames", 1) > 1:
        im = im.copy()  # Pillow's convention without save_all: the current frame
        if icc:
            im.info["icc_profile"] = icc
    fp.write(compress(im, quality=quality, model=options.get("model"), lossless=options.get("lossless"),
                      refine=int(options.get("refine", 0))))


def register() -> None:
    """Make Pillow open and save .aec files (idempotent)."""
    Image.register_open(FORMAT, AecImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_save_all(FORMAT, _save_all)
    Image.register_extension(FORMAT, ".aec")
    Image.register_mime(FORMAT, "image/x-aec")
