"""Coverage-guided fuzzing of the .aec parser and decoder with atheris (libFuzzer).

Each input is tried three times: as raw bytes, and "re-sealed" (the model id set to the shipped image
model's, or to the shipped audio model's for audio files, and the CRC recomputed), and re-sealed with the
all-zero model id of lossless images, so that mutations reach the section parsers, the entropy decoder,
the lossless decoders (zlib, WebP), the audio level / silence sections and the decoder networks instead of
stopping at the CRC check. Anything other than an aecodec.AecError (or a clean decode) is a finding:
libFuzzer stops and writes the input.

    python tests/fuzz/fuzz_decode.py -runs=100000 tests/fuzz/corpus tests/fuzz/corpus-v3    # N iterations
    python tests/fuzz/fuzz_decode.py -max_total_time=600 tests/fuzz/corpus-v3
Regenerate the seed corpora with: python tests/fuzz/make_corpus.py (corpus-v3 only: --v3)
"""
import struct
import sys
import zlib

import atheris
import constriction  # noqa: F401  (third-party: imported before instrumentation, which covers aecodec only)
import numpy  # noqa: F401
import onnxruntime  # noqa: F401
import PIL.Image  # noqa: F401
import PIL.WebPImagePlugin  # noqa: F401
import soxr  # noqa: F401

with atheris.instrument_imports(include=["aecodec"]):
    import aecodec
    from aecodec.errors import AecError

MODEL_ID = bytes.fromhex(aecodec.load_bundle().model_id)
MAX_PIXELS = 1 << 20  # keep each decode small: the fuzzer is after parser bugs, not big images
MAX_SECONDS = 2  # the shipped audio model: keep each decode short
AUDIO = aecodec.load_bundle("audio-edge")
NO_MODEL = bytes(16)


def reseal(data: bytes, model_id: bytes | None = None) -> bytes:
    if len(data) < 28:
        return data
    body = bytearray(data[:-4])
    body[8:24] = model_id if model_id is not None else (bytes.fromhex(AUDIO.model_id) if body[5] == 2 else MODEL_ID)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_one_input(data: bytes) -> None:
    for candidate in (data, reseal(data), reseal(data, NO_MODEL)):
        try:
            if len(candidate) > 5 and candidate[5] == 2:
                wave, rate = aecodec.decompress_audio(candidate, model=AUDIO, max_seconds=MAX_SECONDS)
                if wave.dtype.name != "float32" or rate < 1:
                    raise AssertionError(f"decoded to {wave.dtype} at {rate} Hz")
                continue
            out = aecodec.decompress(candidate, as_array=True, max_pixels=MAX_PIXELS)
        except AecError:
            continue
        if out.dtype.name != "uint8" or out.ndim not in (2, 3):
            raise AssertionError(f"decoded to {out.dtype} {out.shape}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
