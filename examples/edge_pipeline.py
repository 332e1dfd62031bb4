"""Edge pipeline: compress a stream of camera frames with bounded latency and memory.

Frames arrive at a fixed rate; a bounded queue holds at most --queue frames (older frames are
dropped when the encoder falls behind, as a live camera pipeline would rather than buffer without
limit); one worker thread compresses each frame with a shared model bundle (ONNX Runtime session
created once). Prints latency percentiles and bytes per frame.

    python examples/edge_pipeline.py --frames 60 --fps 5 --size 640x360 --quality 40
Runs with the run time only (numpy + onnxruntime + pillow + constriction; no torch).
"""
import argparse
import queue
import statistics
import threading
import time

import numpy as np

import aecodec


def camera(width: int, height: int, n: int):
    """A synthetic moving scene standing in for a camera."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(n):
        r = 128 + 100 * np.sin((xx + 4 * i) / 40.0)
        g = 128 + 100 * np.cos((yy - 3 * i) / 30.0)
        b = 128 + 60 * np.sin((xx + yy + 5 * i) / 50.0)
        yield np.stack([r, g, b], axis=-1).astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--size", default="640x360")
    p.add_argument("--quality", type=int, default=40)
    p.add_argument("--queue", type=int, default=2)
    args = p.parse_args()
    width, height = map(int, args.size.split("x"))
    bundle = aecodec.load_bundle()  # sessions are created once and shared
    frames: queue.Queue = queue.Queue(maxsize=args.queue)
    latencies, sizes, dropped = [], [], 0

    def worker() -> None:
        while (item := frames.get()) is not None:
            t_captured, frame = item
            data = aecodec.compress(frame, quality=args.quality, model=bundle)
            latencies.append(time.perf_counter() - t_captured)
            sizes.append(len(data))

    t = threading.Thread(target=worker)
    t.start()
    period = 1.0 / args.fps
    next_due = time.perf_counter()
    for frame in camera(width, height, args.frames):
        time.sleep(max(0.0, next_due - time.perf_counter()))
        next_due += period
        try:
            frames.put_nowait((time.perf_counter(), frame))
        except queue.Full:
            dropped += 1
    frames.put(None)
    t.join()
    lat = sorted(latencies)
    print(f"{len(lat)} frames coded, {dropped} dropped, {width}x{height} at {args.fps} fps, q {args.quality}")
    print(f"latency ms: median {1e3 * statistics.median(lat):.0f}, p95 {1e3 * lat[int(0.95 * (len(lat) - 1))]:.0f}, "
          f"max {1e3 * lat[-1]:.0f}; mean {statistics.mean(sizes) / 1024:.1f} KiB/frame "
          f"({8 * statistics.mean(sizes) / (width * height):.3f} bpp)")


if __name__ == "__main__":
    main()
