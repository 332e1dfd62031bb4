"""Image coding: pixels (pixels.py), tiles (tiling.py) and the compress/decompress pipeline (codec.py)."""
from .codec import DEFAULT_QUALITY, compress, decode_to_array, decompress, latent_shape
from .pixels import MAX_PIXELS, ImageLike, open_image, to_pixels

__all__ = ["DEFAULT_QUALITY", "MAX_PIXELS", "ImageLike", "compress", "decode_to_array", "decompress", "latent_shape",
           "open_image", "to_pixels"]
