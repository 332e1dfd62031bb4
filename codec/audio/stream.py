"""Streaming pieces of the audio path: resampling and the chunked encoder / decoder networks.

Memory stays one chunk of audio whatever the length: the encoder runs CHUNK_FRAMES latent frames
per network call with HALO_FRAMES of context each side (chunk borders are seamless), the decoder
mirrors it, and soxr's stream resamples block by block.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import AecError
from ..models import ModelBundle

CHUNK_FRAMES = 1500  # latent frames per network call (20 s at 75 Hz)
HALO_FRAMES = 8  # context frames each side (every audio transform reaches less: tested per profile)


def model_length(num_samples: int, rate_in: int, rate_model: int) -> int:
    """Samples at the model rate for num_samples at rate_in (both sides compute it from the header)."""
    return -(-num_samples * rate_model // rate_in)


class Resampler:
    """Streaming soxr (VHQ) resampler for (n, channels) blocks with an exact total output length.

    soxr's stream gives the same samples as its one-shot call however the input is split (checked
    in the tests), so the array API and the streaming file path produce identical bytes.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int, total_out: int):
        self.stream = None
        if rate_in != rate_out:
            try:
                import soxr
            except ImportError:
                raise AecError("audio needs the soxr package: pip install 'aecodec[audio]'") from None
            self.stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="VHQ")
        self.channels = channels
        self.remaining = total_out

    def push(self, block: np.ndarray, last: bool) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        out = self.stream.resample_chunk(block, last=last) if self.stream is not None else block
        out = out.reshape(-1, self.channels)[: self.remaining]
        if last and len(out) < self.remaining:  # pad the tail to the length the decoder expects
            out = np.concatenate([out, np.zeros((self.remaining - len(out), self.channels), np.float32)])
        self.remaining -= len(out)
        return out


class ChunkedEncoder:
    """Model-rate samples of one channel in (any block sizes), float latent (D, frames) out."""

    def __init__(self, bundle: ModelBundle, frames: int):
        self.bundle, self.frames, self.hop = bundle, frames, bundle.manifest.downsample
        self.latent = np.empty((bundle.manifest.latent_channels, frames), np.float32)
        self.buffer = np.zeros(0, np.float32)
        self.buffer_frame = 0  # frame index of buffer[0]
        self.next_frame = 0

    def push(self, samples: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, samples])
        self._run(final=False)

    def finish(self) -> np.ndarray:
        need = (self.frames - self.buffer_frame) * self.hop
        self.buffer = np.concatenate([self.buffer, np.zeros(max(0, need - len(self.buffer)), np.float32)])
        self._run(final=True)
        return self.latent

    def _run(self, final: bool) -> None:
        hop, frames = self.hop, self.frames
        while self.next_frame < frames:
            f0 = self.next_frame
            f1 = min(frames, f0 + CHUNK_FRAMES)
            a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
            if not final and self.buffer_frame + len(self.buffer) // hop < a1:
                return
            window = self.buffer[(a0 - self.buffer_frame) * hop : (a1 - self.buffer_frame) * hop]
            y = self.bundle.run_encoder(np.ascontiguousarray(window)[None, None])[0][0]
            self.latent[:, f0:f1] = y[:, f0 - a0 : f1 - a0]
            self.next_frame = f1
            keep = max(0, f1 - HALO_FRAMES)
            self.buffer = self.buffer[(keep - self.buffer_frame) * hop :]
            self.buffer_frame = keep


def decode_chunks(bundle: ModelBundle, channels: int, frames: int,
                  latent_window: Callable[[int, int, int], np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """(samples, channels) model-rate blocks and whether each is the last; latent_window(channel, a0, a1)
    gives float32 ŷ (D, a1 - a0). One network call per channel per chunk."""
    hop = bundle.manifest.downsample
    for f0 in range(0, frames, CHUNK_FRAMES):
        f1 = min(frames, f0 + CHUNK_FRAMES)
        a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
        block = np.empty(((f1 - f0) * hop, channels), np.float32)
        for ch in range(channels):
            y = np.ascontiguousarray(latent_window(ch, a0, a1)[None])
            block[:, ch] = bundle.run_decoder(y)[0, 0][(f0 - a0) * hop : (f1 - a0) * hop]
        yield block, f1 == frames
