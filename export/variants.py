"""python -m aecodec.export.variants BUNDLE_DIR --int8 [--int8-target cpu|tensorrt] [--fp16] [--ort | --ort-config-only]
       --calibration ../shared/data/images-train [--calibration-images N] [--measure-rd KODAK] [--measure-speed]

Adds precision variants to an existing image bundle, in place and re-runnably (after a re-export of the
bundle, run the same command again). The payload (encoder.onnx, decoder.onnx, tables.npz) and so the
model id never change; each variant is a pair of extra graph files listed in manifest.json under
"variants" with their sha256, how they were made and what they were measured to cost and gain:

- INT8: ONNX Runtime static quantization, QDQ format, per-channel weights, calibrated on random crops of
  training images (never the Kodak test set): the encoder sees images and the gains of several qualities,
  the decoder the latents the fp32 encoder makes of them (ŷ as the codec feeds it). See precision.py.
  `--int8-target cpu` (default) makes variant "int8" (*.int8.onnx, asymmetric uint8 activations, tuned for
  ONNX Runtime's CPU kernels; backends ["cpu"]); `--int8-target tensorrt` makes variant "int8-trt"
  (*.int8-trt.onnx, symmetric int8 activations and weights, every zero point 0: TensorRT's explicit INT8;
  backends ["tensorrt"]). Precision int8 then picks "int8" on the CPU and "int8-trt" on TensorRT; the CPU
  runs the TensorRT graphs only when asked by name (ModelBundle(..., variant="int8-trt")), as the RD
  measurement does. Both can live in one bundle (run the command once per target).
- FP16: float16 weights and compute, float32 inputs and outputs. ONNX Runtime's CPU provider has no
  float16 convolution on x86 (it runs such a graph through inserted casts in float32), so FP16 is for GPUs.
- --ort: ORT-format copies (fp32 and every .onnx variant but TensorRT's) for mobile, plus
  required_operators.config for a minimal ONNX Runtime build; --ort-config-only writes just the config (the .ort files are made on demand).

--measure-rd / --measure-speed record RD cost (PSNR at equal quality, bpp, BD-rate against fp32 on a
photo set; every .onnx variant, on the CPU) and end-to-end CPU speed at 768×512 (the variants the CPU
backend runs); "auto" precision then picks a variant on the CPU backend (`default_for`) only where both
were measured and it is faster at encode and decode at no more than --max-cost-db PSNR. Time speed with the
machine otherwise idle. A TensorRT variant is never a CPU default, and nothing here measures TensorRT, so
"auto" on TensorRT stays fp32 (precision int8 asks for it).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.errors import AecError
from aecodec.image.tiling import to_network_input
from aecodec.models import ModelBundle
from aecodec.models.bundle import PAYLOAD_FILES, compute_model_id, file_sha256

from .precision import INT8_TARGETS, Int8Options, convert_fp16, quantize_int8

CALIBRATION_QUALITIES = (5, 25, 50, 75, 90, 100)
OPERATORS_CONFIG = "required_operators.config"
MAX_COST_DB = 0.15
INT8_VARIANTS = {"cpu": "int8", "tensorrt": "int8-trt"}  # variant name per --int8-target
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".bmp", ".tif", ".tiff")


def calibration_crops(folder: str | Path, count: int, crop: int = 256, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """`count` random crop×crop RGB crops, one per image of a random sample of the folder's images (seeded)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if any(p.name.lower().startswith("kodim") for p in files):
        raise AecError(f"{folder} holds Kodak images: calibrate on training images, never on the test set")
    if not files:
        raise AecError(f"no images in {folder}")
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.choice(len(files), min(count, len(files)), replace=False))]
    crops = []
    for p in chosen:
        img = Image.open(p).convert("RGB")
        if min(img.size) < crop:
            img = img.resize((max(crop, img.size[0] * crop // min(img.size)), max(crop, img.size[1] * crop // min(img.size))),
                             Image.Resampling.LANCZOS)
        a = np.asarray(img)
        y, x = rng.integers(0, a.shape[0] - crop + 1), rng.integers(0, a.shape[1] - crop + 1)
        crops.append(np.ascontiguousarray(a[y : y + crop, x : x + crop]))
    return crops, [p.name for p in chosen]


def calibration_feeds(bundle: ModelBundle, crops: list[np.ndarray],
                      qualities: tuple[int, ...] = CALIBRATION_QUALITIES) -> tuple[list[dict], list[dict]]:
    """(encoder feeds, decoder feeds). Crop i goes through the encoder at two qualities of the list, and the
    decoder sees the latent ŷ the codec would give it (v̂ / gain, or dequantised symbols) at those qualities."""
    enc_names = bundle.input_names("encoder")
    dec_name = bundle.input_names("decoder")[0]
    coding = bundle.coding
    enc_feeds, dec_feeds = [], []
    for i, crop in enumerate(crops):
        x = to_network_input(crop, bundle.manifest.padding)
        for q in (qualities[i % len(qualities)], qualities[(i + len(qualities) // 2) % len(qualities)]):
            if bundle.is_hyperprior:
                gain = coding.gain(q)
                feed = {enc_names[0]: x, enc_names[1]: np.ascontiguousarray(gain.reshape(1, -1, 1, 1), np.float32)}
                v, z = (a[0] for a in bundle.run_encoder(x, gain))
                _, symbols = coding.encode(v, z)  # type: ignore[union-attr]
                means, _ = coding.parameters(np.floor(z + 0.5).astype(np.int32), symbols)  # type: ignore[union-attr]
                y_hat = (symbols + means) / gain
            else:
                feed = {enc_names[0]: x}
                y = bundle.run_encoder(x)[0][0]
                y_hat = coding.dequantise(coding.quantise(y, q), q)  # type: ignore[union-attr]
            enc_feeds.append(feed)
            dec_feeds.append({dec_name: np.ascontiguousarray(y_hat[None], np.float32)})
    return enc_feeds, dec_feeds


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    """Atomically (temp file + rename): a failed run never leaves a broken manifest."""
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / "manifest.json")


def graph_files(name: str, fmt: str = "onnx") -> dict[str, str]:
    """encoder.int8.onnx / decoder.int8.onnx ... (fp32: encoder.onnx, decoder.onnx; .ort the same way)."""
    middle = "" if name == "fp32" else f".{name}"
    return {g: f"{g}{middle}.{fmt}" for g in ("encoder", "decoder")}


def variant_entry(folder: Path, precision: str, fmt: str, files: dict[str, str], made: dict) -> dict:
    """A manifest entry; a graph the variant shares with fp32 (its payload file) is covered by the model id."""
    own = [f for f in files.values() if f not in PAYLOAD_FILES]
    return {"precision": precision, "format": fmt, "files": files,
            "sha256": {f: file_sha256(folder / f) for f in own},
            "bytes": sum((folder / f).stat().st_size for f in own),
            "default_for": [], "made": made}


@contextlib.contextmanager
def quiet_root_logger():
    """onnxruntime.quantization logs advice through the root logger (pre-processing, which we do ourselves)."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def runs_on_cpu(entry: dict) -> bool:
    """Whether a manifest variant entry is for the CPU backend (no `backends`: anywhere)."""
    return not entry.get("backends") or "cpu" in entry["backends"]


def make_int8(folder: Path, calibration: Path, count: int, crop: int, seed: int, opts: Int8Options,
              graphs: tuple[str, ...] = ("encoder", "decoder")) -> dict:
    """The INT8 variant of opts.target (INT8_VARIANTS names it): `graphs` quantized, the others shared with
    fp32 (their payload file)."""
    name = INT8_VARIANTS[opts.target]
    bundle = ModelBundle(folder, providers="cpu", precision="fp32")
    crops, names = calibration_crops(calibration, count, crop, seed)
    enc_feeds, dec_feeds = calibration_feeds(bundle, crops)
    files = {g: (graph_files(name) if g in graphs else graph_files("fp32"))[g] for g in ("encoder", "decoder")}
    made: dict = {"calibration": {"folder": calibration.name, "images": len(names), "crop": crop, "seed": seed,
                                  "qualities": list(CALIBRATION_QUALITIES), "feeds_per_graph": len(enc_feeds)}}
    for g in ("encoder", "decoder"):
        if g not in graphs:
            made[g] = "fp32 (the payload graph)"
            (folder / graph_files(name)[g]).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp, quiet_root_logger():
        for g, feeds in (("encoder", enc_feeds), ("decoder", dec_feeds)):
            if g in graphs:
                made[g] = quantize_int8(folder / f"{g}.onnx", Path(tmp) / files[g], feeds, opts)
                os.replace(Path(tmp) / files[g], folder / files[g])
    entry = variant_entry(folder, "int8", "onnx", files, made)
    if opts.target == "tensorrt":
        entry["backends"] = ["tensorrt"]  # symmetric int8 QDQ: TensorRT's explicit INT8 (the CPU only by name)
    else:
        entry["backends"] = ["cpu"]  # uint8 asymmetric activations: ONNX Runtime's CPU kernels, not TensorRT's INT8
    return entry


def make_fp16(folder: Path) -> dict:
    files = graph_files("fp16")
    made = {}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for g in ("encoder", "decoder"):
            made[g] = convert_fp16(folder / f"{g}.onnx", Path(tmp) / files[g])
        for f in files.values():
            os.replace(Path(tmp) / f, folder / f)
    entry = variant_entry(folder, "fp16", "onnx", files, made)
    entry["note"] = cpu_fp16_note(folder, files)
    return entry


def cpu_fp16_note(folder: Path, files: dict[str, str]) -> str:
    """Whether ONNX Runtime's CPU provider computes the fp16 convolutions in fp16 here, or converts them back
    to float32 (its insert-cast pass, where it has no fp16 kernel): read from the graph it actually runs."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory() as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        try:
            ort.InferenceSession(str(folder / files["decoder"]), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any refusal means: not on this CPU
            return f"ONNX Runtime {ort.__version__} CPU provider cannot run it here ({type(e).__name__}); GPU only"
        opt = onnx.load(str(Path(tmp) / "opt.onnx"))
    types = {i.name: i.data_type for i in opt.graph.initializer}
    conv_types = {types.get(n.input[1]) for n in opt.graph.node if n.op_type == "Conv"}
    if conv_types == {onnx.TensorProto.FLOAT16}:
        return f"ONNX Runtime {ort.__version__} CPU provider runs the fp16 convolutions here"
    return (f"ONNX Runtime {ort.__version__} CPU provider has no fp16 convolution on this machine: it casts the "
            "graph back to float32 and computes in float32, so fp16 is a GPU variant (CUDA / TensorRT)")


def make_ort(folder: Path, manifest: dict, keep_models: bool, target: str) -> dict:
    """ORT-format graphs of fp32 and every .onnx variant, and the operator config covering all of them."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    import onnxruntime as ort

    sources = {"fp32": graph_files("fp32")}
    for name, v in (manifest.get("variants") or {}).items():
        if v.get("format") == "onnx" and runs_on_cpu(v):  # mobile has no TensorRT: no .ort of TensorRT graphs
            sources[name] = v["files"]
    made = {"tool": "onnxruntime.tools.convert_onnx_models_to_ort", "onnxruntime": ort.__version__,
            "optimization_style": "Fixed", "target_platform": target}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        src, out = Path(tmp) / "onnx", Path(tmp) / "ort"
        src.mkdir()
        for files in sources.values():
            for f in files.values():
                shutil.copyfile(folder / f, src / f)
        with contextlib.redirect_stdout(io.StringIO()):
            convert_onnx_models_to_ort(src, output_dir=out, optimization_styles=[OptimizationStyle.Fixed],
                                       target_platform=target)
        config = (out / OPERATORS_CONFIG).read_text().splitlines()  # its header names the models by absolute path
        config = [f"# - {Path(line[4:]).name}" if line.startswith("# - ") else line for line in config]
        (folder / OPERATORS_CONFIG).write_text("\n".join(config) + "\n")
        entries = {}
        if keep_models:
            for f in {Path(f).with_suffix(".ort").name for files in sources.values() for f in files.values()}:
                os.replace(out / f, folder / f)
            for name, files in sources.items():
                ort_files = {g: Path(f).with_suffix(".ort").name for g, f in files.items()}
                precision = manifest["variants"][name]["precision"] if name != "fp32" else "fp32"
                entry = variant_entry(folder, precision, "ort", ort_files, made)
                if name != "fp32" and manifest["variants"][name].get("backends"):
                    entry["backends"] = manifest["variants"][name]["backends"]
                entry["sha256"] = {f: file_sha256(folder / f) for f in ort_files.values()}
                entries[f"{name}-ort"] = entry
    mobile = {"operators_config": OPERATORS_CONFIG, "sha256": file_sha256(folder / OPERATORS_CONFIG),
              "covers": sorted(sources), **made,
              "ort_models": "in this bundle" if keep_models else
              "not shipped (size); make them with python -m aecodec.export.variants BUNDLE --ort"}
    return {"variants": entries, "mobile": mobile}


def remove_variant(folder: Path, manifest: dict, name: str) -> None:
    """Drop a variant and delete its files, except the payload and files another variant still uses."""
    v = (manifest.get("variants") or {}).pop(name, None)
    if v is None:
        raise AecError(f"{folder} has no variant {name!r}")
    kept = set(PAYLOAD_FILES) | {f for other in manifest["variants"].values() for f in other["files"].values()}
    for f in set(v["files"].values()) - kept:
        (folder / f).unlink(missing_ok=True)


def decide_defaults(manifest: dict, max_cost_db: float = MAX_COST_DB) -> list[str]:
    """Set `default_for` of each variant from its measurements: ["cpu"] for the one whose own graphs are faster
    than fp32's (end to end, median) at a mean PSNR cost (variant->variant against fp32->fp32 at equal quality)
    of at most max_cost_db; the fastest wins if several qualify. Returns lines saying why."""
    why = []
    candidates = []
    for name, v in (manifest.get("variants") or {}).items():
        v["default_for"] = []
        measured = v.get("measured") or {}
        if v.get("format") != "onnx":
            continue
        if not runs_on_cpu(v):
            why.append(f"{name}: for {', '.join(v['backends'])}, never the CPU default (and TensorRT speed is not "
                       "measured here: auto stays fp32 there; precision int8 picks it)")
            continue
        rd, sp = measured.get("rd"), measured.get("speed")
        if not rd or not sp:
            why.append(f"{name}: not the CPU default (needs --measure-rd and --measure-speed)")
            continue
        pair = rd["pairs"].get(f"{name}->{name}", {})
        cost = -pair.get("mean_psnr_delta_db", float("-inf"))
        fp32, mine = sp["variants"]["fp32"], sp["variants"][name]
        ratio = {"encoder": mine["encode_mp_per_s"] / fp32["encode_mp_per_s"],
                 "decoder": mine["decode_mp_per_s"] / fp32["decode_mp_per_s"]}
        own = [g for g, f in v["files"].items() if f not in PAYLOAD_FILES]  # a shared graph runs the same file
        ok = cost <= max_cost_db and bool(own) and all(ratio[g] > 1.0 for g in own)
        why.append(f"{name} ({', '.join(own)} own graphs): encode x{ratio['encoder']:.2f}, decode x{ratio['decoder']:.2f} "
                   f"of fp32, mean PSNR cost {cost:.3f} dB -> " + ("default on cpu" if ok else
                   f"not the default (needs its own graphs faster at <= {max_cost_db} dB)"))
        if ok:
            candidates.append((ratio["encoder"] * ratio["decoder"], name))
    if candidates:
        manifest["variants"][max(candidates)[1]]["default_for"] = ["cpu"]
    return why


def command_line(args: argparse.Namespace) -> str:
    """The options that made the int8 graphs, as a command to re-run (paths as given, never resolved)."""
    parts = ["python -m aecodec.export.variants", args.bundle, "--int8", "--int8-target", args.int8_target,
             "--int8-graphs", args.int8_graphs,
             "--calibration", args.calibration, "--calibration-images", str(args.calibration_images),
             "--crop", str(args.crop), "--seed", str(args.seed), "--calibrate-method", args.calibrate_method,
             "--percentile", f"{args.percentile:g}", "--float-weights", args.float_weights,
             "--int8-min-channels", str(args.int8_min_channels)]
    if args.int8_convs:
        parts += ["--int8-convs", args.int8_convs]
    if args.int8_latent_convs:
        parts.append("--int8-latent-convs")
    if args.no_equalize:
        parts.append("--no-equalize")
    return " ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aecodec.export.variants", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="image bundle folder, e.g. codec/models/image-hyperprior")
    p.add_argument("--int8", action="store_true", help="(re)make the INT8 variant of --int8-target")
    p.add_argument("--int8-target", choices=INT8_TARGETS, default="cpu",
                   help="cpu (default): variant int8, asymmetric uint8 activations for ONNX Runtime's CPU kernels; "
                        "tensorrt: variant int8-trt, symmetric int8 (zero points 0) for TensorRT's explicit INT8")
    p.add_argument("--fp16", action="store_true", help="(re)make the FP16 variant (GPU; not run by the CPU provider)")
    p.add_argument("--ort", action="store_true", help="write .ort models (fp32 and every variant but TensorRT's) and the operator config")
    p.add_argument("--ort-config-only", action="store_true", help="write only required_operators.config")
    p.add_argument("--ort-target", choices=["arm", "amd64"], default="arm", help="platform the .ort models are for")
    p.add_argument("--remove", action="append", default=[], metavar="VARIANT", help="delete a variant (e.g. fp16)")
    p.add_argument("--calibration", help="training images to calibrate INT8 on (never the test set)")
    p.add_argument("--calibration-images", type=int, default=32, metavar="N", help="images (one crop each; default 32)")
    p.add_argument("--crop", type=int, default=256, help="calibration crop size (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--int8-graphs", default="decoder",
                   help="graphs to quantize: decoder (default: measured to fit the cost), encoder,decoder")
    p.add_argument("--int8-latent-convs", action="store_true",
                   help="also quantize the convolutions that read / write the latent (default: float)")
    p.add_argument("--int8-convs", default="", metavar="WEIGHTS",
                   help="quantize exactly these convolutions (comma-separated weight names, e.g. 4.0.weight) "
                        "instead of the rule (inner convolutions of at least --int8-min-channels channels)")
    p.add_argument("--int8-min-channels", type=int, default=16,
                   help="convolutions with fewer input or output channels stay float (default 16)")
    p.add_argument("--calibrate-method", choices=["MinMax", "Percentile", "Entropy"], default="Percentile")
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--float-weights", choices=["fp16", "fp32"], default="fp16",
                   help="storage of the weights left in float (computed in float32 either way)")
    p.add_argument("--no-equalize", action="store_true", help="skip the GDN channel equalization")
    p.add_argument("--measure-rd", metavar="IMAGES", help="measure the RD cost on these images (e.g. ../shared/data/kodak)")
    p.add_argument("--rd-qualities", type=int, nargs="+", default=[25, 50, 75, 95])
    p.add_argument("--rd-images", type=int, metavar="N", help="only the first N images")
    p.add_argument("--measure-speed", action="store_true", help="time encode / decode at 768x512 (machine idle!)")
    p.add_argument("--speed-image", metavar="FOLDER", help="folder with kodim23.png (default: a synthetic photo)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--max-cost-db", type=float, default=MAX_COST_DB)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = Path(args.bundle)
    try:
        return run(args, folder)
    except (AecError, FileNotFoundError, ValueError) as e:
        print(f"export.variants: error: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace, folder: Path) -> int:
    manifest = read_manifest(folder)
    model_id = manifest["model_id"]
    if compute_model_id(folder) != model_id:
        raise AecError(f"{folder}: payload files do not match the manifest's model id")
    if manifest.get("modality", "image") != "image":
        raise AecError("precision variants are made for image bundles")
    variants = manifest.setdefault("variants", {})
    for name in args.remove:
        remove_variant(folder, manifest, name)
    if args.int8:
        if not args.calibration:
            raise AecError("--int8 needs --calibration FOLDER (training images)")
        opts = Int8Options(target=args.int8_target, skip_latent_convs=not args.int8_latent_convs,
                           equalize=not args.no_equalize,
                           calibrate_method=args.calibrate_method, percentile=args.percentile,
                           min_channels=args.int8_min_channels, float_weights_fp16=args.float_weights == "fp16",
                           convs=tuple(c.strip() for c in args.int8_convs.split(",") if c.strip()))
        graphs = tuple(g.strip() for g in args.int8_graphs.split(",") if g.strip())
        if not graphs or set(graphs) - {"encoder", "decoder"}:
            raise AecError(f"--int8-graphs: encoder and/or decoder, not {args.int8_graphs!r}")
        name = INT8_VARIANTS[args.int8_target]
        variants[name] = make_int8(folder, Path(args.calibration), args.calibration_images, args.crop, args.seed, opts,
                                   graphs)
        variants[name]["made"]["command"] = command_line(args)
        print(f"{name}: {', '.join(variants[name]['files'].values())} (own files {variants[name]['bytes'] / 1e6:.2f} MB)")
    if args.fp16:
        variants["fp16"] = make_fp16(folder)
        print(f"fp16: {', '.join(variants['fp16']['files'].values())} ({variants['fp16']['bytes'] / 1e6:.2f} MB); "
              f"{variants['fp16']['note']}")
    redo_ort = None
    if (args.int8 or args.fp16 or args.remove) and "mobile" in manifest:  # .ort copies of remade graphs are stale
        redo_ort = manifest.pop("mobile")
        for name in [n for n, v in variants.items() if v.get("format") == "ort"]:
            remove_variant(folder, manifest, name)
    write_manifest(folder, manifest)
    if args.ort or args.ort_config_only or redo_ort:
        keep = args.ort or (not args.ort_config_only and redo_ort is not None and redo_ort.get("ort_models") == "in this bundle")
        target = args.ort_target if args.ort or args.ort_config_only else (redo_ort or {}).get("target_platform", "arm")
        made = make_ort(folder, manifest, keep_models=keep, target=target)
        variants.update(made["variants"])
        manifest["mobile"] = made["mobile"]
        ort_files = sorted({f for v in made["variants"].values() for f in v["files"].values()})
        print(f"ort: {OPERATORS_CONFIG}" + "".join(f", {f}" for f in ort_files))
    onnx_variants = ["fp32"] + [n for n, v in variants.items() if v.get("format") == "onnx"]
    if args.measure_rd:
        from .variant_measure import load_images, rd_cost

        images = load_images(args.measure_rd, args.rd_images)
        rd = rd_cost(folder, onnx_variants, images, args.rd_qualities, threads=args.threads)
        rd["folder"] = Path(args.measure_rd).name
        for name in onnx_variants[1:]:
            variants[name].setdefault("measured", {})["rd"] = rd
            pair = rd["pairs"][f"{name}->{name}"]
            print(f"{name}: PSNR {pair['psnr_delta_db']} dB, bpp {pair['bpp_delta_percent']} % at q {args.rd_qualities}"
                  + (f", BD-rate {pair['bd_rate_percent']:+.2f} %" if "bd_rate_percent" in pair else "")
                  + f" ({len(images)} images)")
    if args.measure_speed:
        from .variant_measure import speed, speed_image

        # the CPU speed of a TensorRT graph says nothing about TensorRT: CPU variants only
        cpu_variants = [n for n in onnx_variants if n == "fp32" or runs_on_cpu(variants[n])]
        sp = speed(folder, cpu_variants, speed_image(args.speed_image), threads=args.threads, repeats=args.repeats)
        for name in cpu_variants[1:]:
            variants[name].setdefault("measured", {})["speed"] = sp
        for name, r in sp["variants"].items():
            print(f"{name}: encode {r['encode_mp_per_s']:.2f} MP/s, decode {r['decode_mp_per_s']:.2f} MP/s "
                  f"({sp['size']}, {sp['threads']} threads)")
    for line in decide_defaults(manifest, args.max_cost_db):
        print(line)
    if not variants:
        del manifest["variants"]
    write_manifest(folder, manifest)
    if compute_model_id(folder) != model_id:  # never: variants are extra files
        raise AecError("model id changed")
    ModelBundle(folder, providers="cpu").verify()
    return 0


if __name__ == "__main__":
    sys.exit(main())
