"""The .aec byte format: container (header, sections, CRC) and the framing inside sections."""
from .container import (AUDIO_FORMAT_VERSION, FORMAT_VERSION, HYPERPRIOR_FORMAT_VERSION, MAGIC, MODALITY_AUDIO,
                        MODALITY_IMAGE, MODALITY_NAMES, SUPPORTED_VERSIONS, AecFile, AudioHeader, ImageHeader, pack,
                        unpack)

__all__ = ["AUDIO_FORMAT_VERSION", "FORMAT_VERSION", "HYPERPRIOR_FORMAT_VERSION", "MAGIC", "MODALITY_AUDIO",
           "MODALITY_IMAGE", "MODALITY_NAMES", "SUPPORTED_VERSIONS", "AecFile", "AudioHeader", "ImageHeader", "pack",
           "unpack"]
