"""Coverage-guided fuzzing of the .aec parser and decoder with atheris (libFuzzer).

Each input is tried twice: as raw bytes, and "re-sealed" (the model id set to the shipped
model's and the CRC recomputed) so that mutations reach the section parser, the entropy
decoder and the decoder network instead of stopping at the CRC check. Anything other than
an aecodec.AecError (or a clean decode) is a finding: libFuzzer stops and writes the input.

    python tests/fuzz/fuzz_decode.py -runs=100000 tests/fuzz/corpus     # N iterations
    python tests/fuzz/fuzz_decode.py -max_total_time=600 tests/fuzz/corpus
Regenerate the seed corpus with: python tests/fuzz/make_corpus.py
"""
import struct
import sys
import zlib

import atheris
import constriction  # noqa: F401  (third-party: imported before instrumentation, which covers aecodec only)
import numpy  # noqa: F401
import onnxruntime  # noqa: F401
import PIL.Image  # noqa: F401

with atheris.instrument_imports(include=["aecodec"]):
    import aecodec
    from aecodec.errors import AecError

MODEL_ID = bytes.fromhex(aecodec.load_bundle().model_id)
MAX_PIXELS = 1 << 20  # keep each decode small: the fuzzer is after parser bugs, not big images


def reseal(data: bytes) -> bytes:
    if len(data) < 28:
        return data
    body = bytearray(data[:-4])
    body[8:24] = MODEL_ID
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_one_input(data: bytes) -> None:
    for candidate in (data, reseal(data)):
        try:
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
