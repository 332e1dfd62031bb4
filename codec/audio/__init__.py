"""Audio coding: file I/O (io.py), resampling and chunked networks (stream.py), level / DC / silence corrections
(level.py), the pipeline (codec.py)."""
from .codec import (DEFAULT_AUDIO_QUALITY, MAX_SECONDS, audio_bundle, compress_audio, compress_audio_file,
                    decompress_audio, decompress_audio_to_file)
from .io import AUDIO_SUFFIXES, OUTPUT_FORMATS, looks_like_audio, read_audio, write_audio

__all__ = ["AUDIO_SUFFIXES", "DEFAULT_AUDIO_QUALITY", "MAX_SECONDS", "OUTPUT_FORMATS", "audio_bundle",
           "compress_audio", "compress_audio_file", "decompress_audio", "decompress_audio_to_file", "looks_like_audio",
           "read_audio", "write_audio"]
