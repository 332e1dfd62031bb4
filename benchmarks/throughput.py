"""Throughput of aecodec per backend, precision variant, image size and batch, with the peers measured in the same run.

For every backend that is importable here (ONNX Runtime CPU / CUDA / TensorRT, each with every precision
variant of the bundle it can run, e.g. "onnxruntime-cpu int8"; PyTorch eager CPU / CUDA with the same
weights) and every size: end-to-end megapixels per second for encode
(array -> bytes) and decode (bytes -> array) at batch 1, split by stage (preprocess, encoder
network, entropy encode, entropy decode, decoder network, postprocess); then the networks at
larger batches, and the best batch. Warm-up, then the median of --repeats runs. Backends that
are not available are listed with the reason. Peers: Pillow JPEG / WebP / AVIF (one thread)
and CompressAI's bmshj2018-factorized (PyTorch CPU, random weights: speed only) if installed.
Also: model complexity and the share of the machine's peak FLOP/s the networks reach, and the RD cost
of each precision variant against fp32 (PSNR at equal quality, bpp, BD-rate) on --rd-images Kodak
images, measured in the same run on the CPU, side by side with the variants' speed.

    python benchmarks/throughput.py [--threads 2] [--repeats 5] [--out-dir bench-out] [--rd-images 24]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, features

from aecodec.cli.bench import median_time as _median_time

REPO = Path(__file__).resolve().parent.parent
def _default_checkpoint() -> Path:
    from aecodec.models import DEFAULT_IMAGE_MODEL

    folder = REPO / "train" / "checkpoints" / DEFAULT_IMAGE_MODEL
    return folder / "weights.pt" if (folder / "weights.pt").exists() else folder / "last.pt"


DEFAULT_CHECKPOINT = _default_checkpoint()
DEFAULT_SIZES = ["768x512", "1920x1080", "3840x2160"]
BATCHES = {"768x512": [1, 2, 4, 8], "1920x1080": [1, 2, 4], "3840x2160": [1]}  # other sizes: [1, 2]


def test_image(width: int, height: int) -> np.ndarray:
    """A photo resized to the size (Kodak kodim23 when present), else a textured synthetic image."""
    kodak = REPO.parent / "shared" / "data" / "kodak" / "kodim23.png"
    if kodak.exists():
        return np.asarray(Image.open(kodak).convert("RGB").resize((width, height), Image.LANCZOS))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([128 + 100 * np.sin(xx / 37.0 + c) * np.cos(yy / 23.0) for c in range(3)], -1)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    return _median_time(fn, repeats, warmup)


# ----------------------------------------------------------------------------- backends


def ort_backend(provider: str, threads: int, precision: str = "fp32"):
    """The shipped default image bundle on one ONNX Runtime provider at one precision (sessions created up front)."""
    from aecodec.models import DEFAULT_IMAGE_MODEL, MODELS_DIR, ModelBundle

    bundle = ModelBundle(MODELS_DIR / DEFAULT_IMAGE_MODEL, providers=provider, threads=threads, precision=precision)
    bundle.session("encoder")
    bundle.session("decoder")
    return bundle


def torch_backend(device: str, threads: int, checkpoint: Path):
    """The same bundle with its two networks run by PyTorch from the training checkpoint: the run time's
    pipeline (entropy coding, tiling, ...) is unchanged, only run_encoder / run_decoder differ."""
    import torch

    from aecodec.models import DEFAULT_IMAGE_MODEL, MODELS_DIR, ModelBundle
    from aecodec.train.evaluate import load_model

    torch.set_num_threads(threads)
    model, _ = load_model(checkpoint)
    model.to(device)

    class TorchBundle(ModelBundle):
        def _run(self, module, a: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(a).to(device)).cpu().numpy()

        def run_encoder(self, x, gain=None):
            if gain is None:  # factorized: the latent
                return [self._run(model.analysis, x)]
            g = torch.from_numpy(np.ascontiguousarray(gain, dtype=np.float32).reshape(1, -1, 1, 1)).to(device)
            with torch.inference_mode():  # hyperprior: the gained latent and z
                v = model.analysis(torch.from_numpy(x).to(device)) * g
                return [v.cpu().numpy(), model.hyper_analysis(v).cpu().numpy()]

        def run_decoder(self, y):
            return self._run(model.synthesis, y)

    return TorchBundle(MODELS_DIR / DEFAULT_IMAGE_MODEL)


def available_backends(threads: int, checkpoint: Path) -> tuple[dict, dict]:
    import onnxruntime as ort

    from aecodec.models import DEFAULT_IMAGE_MODEL, MODELS_DIR, load_bundle, precisions_for

    providers = ort.get_available_providers()
    manifest = load_bundle(MODELS_DIR / DEFAULT_IMAGE_MODEL, "cpu", precision="fp32").manifest
    makers, unavailable = {}, {}
    for name, prov in (("onnxruntime-cpu", "CPUExecutionProvider"), ("onnxruntime-cuda", "CUDAExecutionProvider"),
                       ("onnxruntime-tensorrt", "TensorrtExecutionProvider")):
        if prov in providers:
            precisions, _ = precisions_for(manifest, MODELS_DIR / DEFAULT_IMAGE_MODEL, name.split("-")[1])
            for precision in precisions:  # fp32 keeps the plain name (the peers' reference)
                label = name if precision == "fp32" else f"{name} {precision}"
                makers[label] = (lambda p=prov, q=precision: ort_backend(p, threads, q))
        else:
            unavailable[name] = f"{prov} not in onnxruntime {ort.__version__} providers {providers}"
    try:
        import torch

        if not checkpoint.exists():
            raise ImportError(f"no PyTorch weights at {checkpoint}")
        makers["pytorch-cpu"] = lambda: torch_backend("cpu", threads, checkpoint)
        if torch.cuda.is_available():
            makers["pytorch-cuda"] = lambda: torch_backend("cuda", threads, checkpoint)
        else:
            unavailable["pytorch-cuda"] = f"torch {torch.__version__}: CUDA not available"
    except ImportError as e:
        unavailable["pytorch-cpu"] = unavailable["pytorch-cuda"] = f"unavailable: {e}"
    return makers, unavailable


# ----------------------------------------------------------------------------- aecodec pipeline


def run_pipeline(backend, img: np.ndarray, quality: int, repeats: int) -> dict:
    """Per-stage medians (seconds) of the public API's compress + decompress with this backend's bundle."""
    import aecodec

    stages = ("preprocess", "encoder_net", "entropy_encode", "entropy_decode", "decoder_net", "postprocess")
    data = aecodec.compress(img, quality=quality, model=backend)  # warm-up
    out = aecodec.decompress(data, model=backend, as_array=True)
    times: dict[str, list[float]] = {k: [] for k in stages}
    for _ in range(repeats):
        t: dict[str, float] = {}
        data = aecodec.compress(img, quality=quality, model=backend, timings=t)
        out = aecodec.decompress(data, model=backend, as_array=True, timings=t)
        for k in stages:
            times[k].append(t.get(k, 0.0))
    assert out.shape == img.shape
    med: dict = {k: statistics.median(v) for k, v in times.items()}
    med["bytes"] = len(data)
    return med


def network_batches(backend, img: np.ndarray, batches: list[int], repeats: int) -> dict:
    from aecodec.image.tiling import to_network_input

    x1 = to_network_input(img, backend.manifest.padding)
    out = {}
    for b in batches:
        x = np.ascontiguousarray(np.repeat(x1, b, axis=0))
        gain = backend.coding.gain(75) if backend.is_hyperprior else None
        y = backend.run_encoder(x, gain)[0]
        if gain is not None:
            y = y / gain
        t_enc = median_time(lambda: backend.run_encoder(x, gain), repeats)
        yq = np.ascontiguousarray(np.rint(y * 4.0) / 4.0, dtype=np.float32)
        t_dec = median_time(lambda: backend.run_decoder(yq), repeats)
        out[b] = {"encoder_s_per_image": t_enc / b, "decoder_s_per_image": t_dec / b}
    return out


# ----------------------------------------------------------------------------- peers


def pillow_peer(img: np.ndarray, fmt: str, args: dict, repeats: int) -> dict:
    pil = Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **args)
    data = buf.getvalue()

    def enc():
        pil.save(io.BytesIO(), format=fmt, **args)

    def dec():
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    return {"encode_s": median_time(enc, repeats), "decode_s": median_time(dec, repeats), "bytes": len(data)}


def compressai_peer(img: np.ndarray, repeats: int, threads: int) -> dict | str:
    """bmshj2018-factorized (N=128, M=192) from CompressAI, random weights, PyTorch CPU."""
    try:
        with _stub_modules("torchvision", "torch_geometric", "pandas"):
            import torch
            from compressai.models import FactorizedPrior
    except Exception as e:  # not installed, or an import we could not stub
        return f"unavailable: {type(e).__name__}: {e}"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = FactorizedPrior(128, 192).eval()
    model.update(force=True)
    from aecodec.image.tiling import to_network_input

    x = torch.from_numpy(to_network_input(img, 64))
    with torch.inference_mode():
        out = model.compress(x)
        t_enc = median_time(lambda: model.compress(x), repeats)
        t_dec = median_time(lambda: model.decompress(out["strings"], out["shape"]), repeats)
    return {"encode_s": t_enc, "decode_s": t_dec, "note": "random weights; speed only"}


class _stub_modules:
    """Benchmark-only stand-ins for CompressAI imports it never uses here (torchvision has no CPU build)."""

    def __init__(self, *names):
        self.names = set(names)

    def __enter__(self):
        import importlib.machinery
        import types

        names = self.names

        class Stub(types.ModuleType):
            def __getattr__(self, attr):
                if attr.startswith("__"):
                    raise AttributeError(attr)
                child = Stub(f"{self.__name__}.{attr}")
                setattr(self, attr, child)
                return child

            def __call__(self, *a, **k):
                return a[0] if len(a) == 1 and callable(a[0]) and not k else Stub(self.__name__ + "()")

            def __mro_entries__(self, bases):
                return (object,)

        class Loader:
            def create_module(self, spec):
                return Stub(spec.name)

            def exec_module(self, module):
                module.__path__ = []

        class Finder:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in names:
                    return importlib.machinery.ModuleSpec(name, Loader(), is_package=True)
                return None

        self.finder = Finder()
        sys.meta_path.insert(0, self.finder)
        return self

    def __exit__(self, *exc):
        sys.meta_path.remove(self.finder)
        return False


# ----------------------------------------------------------------------------- machine


def machine_facts(threads: int, flops_per_cycle: int) -> dict:
    mhz = None
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":")[1])
            if line.startswith("model name"):
                model = line.split(":")[1].strip()
    except OSError:
        pass
    peak = threads * (mhz or 0) * 1e6 * flops_per_cycle
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    t = median_time(lambda: a @ a, 3)
    return {
        "cpu": model, "cpu_count": os.cpu_count(), "threads": threads, "mhz_reported": mhz,
        "theoretical_gflops": peak / 1e9,
        "theoretical_basis": f"{threads} cores x {mhz} MHz x {flops_per_cycle} FP32 FLOP/cycle "
                             "(Zen 4: two 256-bit FMA pipes; AVX-512 double-pumped); boost clocks can exceed it",
        "numpy_sgemm_gflops": 2 * 2048**3 / t / 1e9,
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--backends", nargs="*", help="subset of backends (default: all available)")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-batches", action="store_true")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="PyTorch weights for the eager backend")
    p.add_argument("--flops-per-cycle", type=int, default=32)
    p.add_argument("--out-dir", default=str(REPO / "bench-out"))
    p.add_argument("--rd-images", type=int, default=0, metavar="N",
                   help="measure the variants' RD cost on N Kodak images in this run (default 0: the figures the "
                        "exporter measured, from manifest.json)")
    p.add_argument("--rd-qualities", type=int, nargs="+", default=[25, 50, 75, 95])
    p.add_argument("--kodak", default=str(REPO.parent / "shared" / "data" / "kodak"))
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    t_start = time.time()
    import aecodec

    manifest = aecodec.load_bundle().manifest.raw
    complexity = manifest["complexity"]
    machine = machine_facts(args.threads, args.flops_per_cycle)
    makers, unavailable = available_backends(args.threads, Path(args.checkpoint))
    if args.backends:
        makers = {k: v for k, v in makers.items() if k in args.backends}
    results: dict = {"backends": {}, "peers": {}}
    for name, make in makers.items():
        print(f"  {name} ...", file=sys.stderr, flush=True)
        backend = make()
        per_size = {}
        for size in args.sizes:
            w, h = map(int, size.split("x"))
            img = test_image(w, h)
            mp = w * h / 1e6
            st = run_pipeline(backend, img, args.quality, args.repeats)
            enc = st["preprocess"] + st["encoder_net"] + st["entropy_encode"]
            dec = st["entropy_decode"] + st["decoder_net"] + st["postprocess"]
            row = {
                "megapixels": mp, "bytes": st["bytes"],
                "encode_mp_per_s": mp / enc, "decode_mp_per_s": mp / dec,
                "stages_ms": {k: v * 1e3 for k, v in st.items() if k != "bytes"},
                "network_gflops": {
                    "encoder": 2e3 * complexity["encoder_kmac_per_px"] * w * h / st["encoder_net"] / 1e9,
                    "decoder": 2e3 * complexity["decoder_kmac_per_px"] * w * h / st["decoder_net"] / 1e9,
                },
            }
            row["network_share_of_peak"] = {k: v / machine["theoretical_gflops"] for k, v in row["network_gflops"].items()}
            row["network_share_of_sgemm"] = {k: v / machine["numpy_sgemm_gflops"] for k, v in row["network_gflops"].items()}
            if not args.no_batches:
                batches = network_batches(backend, img, BATCHES.get(size, [1, 2]), args.repeats)
                best = min(batches, key=lambda b: batches[b]["encoder_s_per_image"] + batches[b]["decoder_s_per_image"])
                other_enc = st["preprocess"] + st["entropy_encode"]
                other_dec = st["entropy_decode"] + st["postprocess"]
                row["batches"] = {str(b): v for b, v in batches.items()}
                row["best_batch"] = best
                row["best_batch_encode_mp_per_s"] = mp / (batches[best]["encoder_s_per_image"] + other_enc)
                row["best_batch_decode_mp_per_s"] = mp / (batches[best]["decoder_s_per_image"] + other_dec)
            per_size[size] = row
        results["backends"][name] = per_size
    results["unavailable_backends"] = unavailable
    results["variant_rd"] = variant_rd(args)
    if not args.no_peers:
        for size in args.sizes:
            w, h = map(int, size.split("x"))
            img = test_image(w, h)
            mp = w * h / 1e6
            peers = {}
            for name, fmt, pargs, feat in (("jpeg", "JPEG", {"quality": 75, "subsampling": "4:2:0", "optimize": True}, "jpg"),
                                           ("webp", "WEBP", {"quality": 75, "method": 6}, "webp"),
                                           ("avif", "AVIF", {"quality": 60, "speed": 6}, "avif")):
                if not features.check(feat):
                    peers[name] = f"unavailable: Pillow lacks {feat}"
                    continue
                r = pillow_peer(img, fmt, pargs, args.repeats)
                peers[name] = {**r, "encode_mp_per_s": mp / r["encode_s"], "decode_mp_per_s": mp / r["decode_s"],
                               "settings": pargs}
            print(f"  peers {size} ...", file=sys.stderr, flush=True)
            r = compressai_peer(img, args.repeats, args.threads)
            peers["compressai-bmshj2018-factorized"] = r if isinstance(r, str) else {
                **r, "encode_mp_per_s": mp / r["encode_s"], "decode_mp_per_s": mp / r["decode_s"]}
            results["peers"][size] = peers
    report = {
        "machine": machine, "quality": args.quality, "repeats": args.repeats, "sizes": args.sizes,
        "model": {"id": manifest["model_id"], "name": manifest["name"], **complexity},
        "notes": ["aecodec networks run with --threads threads; Pillow codecs are single-threaded",
                  "best batch: networks timed at that batch, plus per-image pre/post-processing and entropy coding",
                  "GFLOP/s: 2 x nominal MACs (from layer shapes) x pixels / network time; % of peak: of the theoretical "
                  "FLOP/s at the nominal clock (boost clocks exceed it, so >100 % is possible); % of sgemm: of a "
                  "2048^3 numpy matmul measured in the same run"],
        "results": results, "seconds": round(time.time() - t_start, 1),
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "throughput.json").write_text(json.dumps(report, indent=1))
    print_tables(report)
    if not args.no_plots:
        plot(report, out_dir / "throughput.png")
    print(f"\nwrote {out_dir / 'throughput.json'} ({report['seconds']} s)")
    return 0


def variant_rd(args) -> dict | str:
    """RD cost of every CPU-runnable precision variant of the default model against fp32, measured now."""
    from aecodec.models import DEFAULT_IMAGE_MODEL, MODELS_DIR, precisions_for

    folder = MODELS_DIR / DEFAULT_IMAGE_MODEL
    import aecodec

    manifest = aecodec.load_bundle(folder, "cpu", precision="fp32").manifest
    precisions, _ = precisions_for(manifest, folder, "cpu")
    if len(precisions) < 2:
        return "the default model has no precision variant besides fp32 that runs on the CPU"
    if args.rd_images <= 0 or not Path(args.kodak).is_dir():  # the exporter's measurement, recorded in the manifest
        for p in precisions[1:]:
            v = next((v for v in (manifest.raw.get("variants") or {}).values()
                      if v.get("precision") == p and (v.get("measured") or {}).get("rd")), None)
            if v is not None:
                return {**v["measured"]["rd"], "source": "manifest.json (measured by python -m aecodec.export.variants)"}
        return "not measured: pass --rd-images N (Kodak images) to measure it in this run"
    from aecodec.export.variant_measure import load_images, rd_cost

    print(f"  RD of {', '.join(precisions)} on {args.rd_images} Kodak images ...", file=sys.stderr, flush=True)
    rd = rd_cost(folder, precisions, load_images(args.kodak, args.rd_images), args.rd_qualities, threads=args.threads)
    return {**rd, "source": "measured in this run"}


def print_variants(report: dict) -> None:
    """Each backend's variants next to its fp32 run, with the RD cost measured in this run."""
    backends = report["results"]["backends"]
    rd = report["results"].get("variant_rd")
    pairs = rd.get("pairs", {}) if isinstance(rd, dict) else {}
    rows = []
    for name, sizes in backends.items():
        base_name, _, precision = name.partition(" ")
        if not base_name.startswith("onnxruntime"):
            continue
        for size, r in sizes.items():
            base = backends.get(base_name, {}).get(size)
            if base is None:
                continue
            pair = pairs.get(f"{precision or 'fp32'}->{precision or 'fp32'}", {})
            if not precision:
                cost = "reference | | "
            elif pair:
                cost = (f"{pair['mean_psnr_delta_db']:+.3f} | {np.mean(pair['bpp_delta_percent']):+.2f} | "
                        f"{pair.get('bd_rate_percent', float('nan')):+.2f}")
            else:
                cost = "not measured (RD runs on the CPU) | | "
            rows.append(f"| {base_name} | {precision or 'fp32'} | {size} | {r['encode_mp_per_s']:.2f} | "
                        f"{r['decode_mp_per_s']:.2f} | x{r['encode_mp_per_s'] / base['encode_mp_per_s']:.2f} | "
                        f"x{r['decode_mp_per_s'] / base['decode_mp_per_s']:.2f} | {cost} |")
    print("\n| backend | precision | size | encode MP/s | decode MP/s | encode vs fp32 | decode vs fp32 | "
          "PSNR at equal quality (dB) | bpp (%) | BD-rate vs fp32 (%) |")
    print("|" + "---|" * 10)
    print("\n".join(rows))
    if isinstance(rd, dict):
        print(f"RD: {rd['images']} Kodak images at qualities {rd['qualities']}, {rd['source']}; {rd['note']}")
    elif rd:
        print(f"RD: {rd}")


def print_tables(report: dict) -> None:
    m = report["machine"]
    print(f"\nmachine: {m['cpu']}, {m['threads']} threads; theoretical {m['theoretical_gflops']:.0f} GFLOP/s "
          f"({m['theoretical_basis']}); numpy sgemm {m['numpy_sgemm_gflops']:.0f} GFLOP/s")
    mod = report["model"]
    print(f"model {mod['name']} {mod['id']}: encoder {mod['encoder_params']:,} params {mod['encoder_kmac_per_px']:.1f} kMAC/px, "
          f"decoder {mod['decoder_params']:,} params {mod['decoder_kmac_per_px']:.1f} kMAC/px\n")
    print("| backend | size | encode MP/s | decode MP/s | best batch | enc MP/s @best | dec MP/s @best | "
          "pre ms | enc net ms | entropy enc ms | entropy dec ms | dec net ms | post ms | net GFLOP/s (enc/dec) | "
          "% of peak | % of sgemm |")
    print("|" + "---|" * 16)
    for name, sizes in report["results"]["backends"].items():
        for size, r in sizes.items():
            s = r["stages_ms"]
            print(f"| {name} | {size} | {r['encode_mp_per_s']:.2f} | {r['decode_mp_per_s']:.2f} | {r.get('best_batch', '-')} | "
                  f"{r.get('best_batch_encode_mp_per_s', float('nan')):.2f} | {r.get('best_batch_decode_mp_per_s', float('nan')):.2f} | "
                  f"{s['preprocess']:.1f} | {s['encoder_net']:.1f} | {s['entropy_encode']:.1f} | {s['entropy_decode']:.1f} | "
                  f"{s['decoder_net']:.1f} | {s['postprocess']:.1f} | "
                  f"{r['network_gflops']['encoder']:.0f} / {r['network_gflops']['decoder']:.0f} | "
                  f"{100 * r['network_share_of_peak']['encoder']:.0f} / {100 * r['network_share_of_peak']['decoder']:.0f} | "
                  f"{100 * r['network_share_of_sgemm']['encoder']:.0f} / {100 * r['network_share_of_sgemm']['decoder']:.0f} |")
    for name, why in report["results"]["unavailable_backends"].items():
        print(f"| {name} | unavailable: {why} |" + " |" * 14)
    print_variants(report)
    if report["results"]["peers"]:
        ref = report["results"]["backends"].get("onnxruntime-cpu", {})
        print("\n| peer | size | encode MP/s | decode MP/s | aecodec/peer encode speed | aecodec/peer decode speed |")
        print("|---|---|---|---|---|---|")
        for size, peers in report["results"]["peers"].items():
            for name, r in peers.items():
                if isinstance(r, str):
                    print(f"| {name} | {size} | {r} | | | |")
                    continue
                a = ref.get(size)
                ratio_e = f"{a['encode_mp_per_s'] / r['encode_mp_per_s']:.3f}" if a else "-"
                ratio_d = f"{a['decode_mp_per_s'] / r['decode_mp_per_s']:.3f}" if a else "-"
                print(f"| {name} | {size} | {r['encode_mp_per_s']:.2f} | {r['decode_mp_per_s']:.2f} | {ratio_e} | {ratio_d} |")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, enc, dec = [], [], []
    for name, sizes in report["results"]["backends"].items():
        for size, r in sizes.items():
            labels.append(f"aecodec {name}\n{size}")
            enc.append(r["encode_mp_per_s"])
            dec.append(r["decode_mp_per_s"])
    for size, peers in report["results"]["peers"].items():
        for name, r in peers.items():
            if not isinstance(r, str):
                labels.append(f"{name}\n{size}")
                enc.append(r["encode_mp_per_s"])
                dec.append(r["decode_mp_per_s"])
    if not labels:
        return
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(labels)), 4.5), dpi=100)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, enc, 0.4, label="encode")
    ax.bar(x + 0.2, dec, 0.4, label="decode")
    ax.set_yscale("log")
    ax.set_ylabel("megapixels / s (log)")
    ax.set_xticks(x, labels, rotation=90, fontsize=6)
    ax.legend()
    ax.set_title(f"{report['machine']['cpu']}, {report['machine']['threads']} threads")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
