"""Coverage-guided fuzzing of the .aec parser and decoder with atheris (libFuzzer).

Each input is tried twice: as raw bytes, and "re-sealed" (the model id set to the shipped image
model's, or to a small random audio model exported at start-up for audio files, and the CRC recomputed) so that mutations reach the section parser, the entropy
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
MAX_SECONDS = 30


def _audio_bundle():
    """A small random audio model (exported at start-up, needs torch): the decoder paths are the same as with
    the shipped audio-edge, and a tiny network keeps each iteration fast."""
    import tempfile
    from pathlib import Path

    try:
        import torch

        from aecodec.export.bundle import export_bundle
        from aecodec.train.audio_model import AudioCodecModel, AudioConfig
    except ImportError:
        return None
    root = Path(tempfile.mkdtemp(prefix="aec-fuzz-"))
    torch.manual_seed(0)
    cfg = AudioConfig(channels=4, latent=8)
    torch.save({"model": AudioCodecModel(cfg).state_dict(), "config": cfg.to_dict(), "modality": "audio"}, root / "a.pt")
    export_bundle(root / "a.pt", root / "bundle")
    return aecodec.load_bundle(root / "bundle")


AUDIO = _audio_bundle()


def reseal(data: bytes) -> bytes:
    if len(data) < 28:
        return data
    body = bytearray(data[:-4])
    body[8:24] = bytes.fromhex(AUDIO.model_id) if AUDIO is not None and body[5] == 2 else MODEL_ID
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_one_input(data: bytes) -> None:
    for candidate in (data, reseal(data)):
        try:
            if len(candidate) > 5 and candidate[5] == 2 and AUDIO is not None:
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
