"""MODEL_CARD.md for a bundle, written from its manifest so the figures cannot drift."""
from __future__ import annotations

DATA_SOURCES = """\
Training images: `../shared/data/images-train/` (298 photos, 111.9 Mpixel, JPEG q95 4:4:4):
- 222 from CID22-512 (Cloudinary), CC BY-SA 4.0;
- 33 from CLIC 2025 validation / final-test, Unsplash License;
- 43 from Zelex/images `wikipedia-photos` (Wikimedia Commons; mostly CC BY / BY-SA or public
  domain, attribution per Commons page, listed in `shared/data/SOURCES.md`).
Validation: `../shared/data/images-val/` (10 PNG photos from the same three sources).
Kodak (the benchmark set) was never used for training or model selection.
"""


def data_section(args: dict, shipped_folder: str, shipped_text: str) -> str:
    """The data sources of the shipped models' training set, or the folders of someone else's run."""
    data = str(args.get("data") or "")
    if data.rstrip("/").endswith(shipped_folder):
        return shipped_text
    return (f"Training data: `{data or '(not recorded)'}`; validation: `{args.get('val') or '(none)'}`. "
            "Sources and licences: see the notes below.\n")


def number(value: object, fmt: str = ",") -> str:
    """A figure for the card, or "?" where the checkpoint did not record it."""
    return "?" if value is None else format(value, fmt)


IMAGE_TRANSFORMS = """g_a = 4 × (5×5 stride-2 conv), GDN between; g_s = 4 × (5×5 stride-2
transposed conv), inverse GDN between"""

ACTIVATION_TEXT = {"elu": "ELU", "relu": "ReLU", "leaky_relu": "LeakyReLU 0.2"}
HYPERPRIOR_TEXT = """Side information: h_a (float, inside encoder.onnx) = 3×3 conv, ReLU, two 5×5 stride-2 convs to
{hyper} channels at 1/64 resolution; ẑ = floor(z + ½) is coded with a learned per-channel factorized
density. h_s runs in exact integer arithmetic in the run time (int8 kernels, power-of-two requantization,
12-bit activations, two sub-pixel upsampling stages and a 3×3 conv) and gives for every latent element a mean
on a 1/16 grid and an index into {levels} Gaussian scales ({smin}…{smax}); v − mean is coded with the
discretized Gaussian of that scale. Integer h_s, so every machine derives the same probabilities."""


CONTEXT_TEXT = """

Checkerboard context ({k} channels, He et al. 2021): y is coded in two passes, the anchors ((row + column) even)
with h_s's parameters, then the others with h_s's last accumulator plus an integer network's (5×5 conv of the
decoded anchors' 16·v̂ codes and 1×1 conv of h_s's last hidden activation → 12-bit codes → 1×1 conv), in exact
integer arithmetic like h_s; format version 4 (section 6 the anchors, section 10 the others)."""


def render(manifest: dict, train_command: str, hardware: str, notes: str = "") -> str:
    """The card of any bundle (dispatches on modality)."""
    if manifest.get("modality") == "audio":
        return render_audio(manifest, train_command, hardware, notes)
    return render_image(manifest, train_command, hardware, notes)


def curve_text(training: dict, levels: int) -> str:
    """The validation curve (BD-rate vs WebP against steps) when the run logged it (--val-bd-rate)."""
    curve = training.get("validation_curve") or []
    if not curve:
        return ""
    rows = "\n".join(f"| {c['step']} | {c['bd_rate_vs_webp']:+.1f} % |" for c in curve)
    return (f"\nValidation curve (all {levels} rate points on the validation folder, BD-rate vs WebP method 6 on the same "
            f"images; lower is better):\n\n| step | BD-rate vs WebP |\n|---|---|\n{rows}\n")


def render_image(manifest: dict, train_command: str, hardware: str, notes: str = "") -> str:
    c = manifest["complexity"]
    t = manifest["training"]
    a = t.get("args") or {}
    cfg = manifest["config"]
    hyper = str(manifest.get("latent_coding", "")).startswith("hyperprior")
    val = t.get("last_validation") or {}
    val_rows = "\n".join(
        f"| {k} (λ = {cfg['lambdas'][int(k[1:])]}) | {v['bpp']:.3f} | {v['psnr']:.2f} |"
        for k, v in (val.get("val") or {}).items() if k.startswith("L")
    ) or "| (no validation recorded) | | |"
    p = manifest["parity"]
    ladder = manifest.get("quality_ladder") or {}
    if hyper:
        hs = manifest["hyper_synthesis"]
        entropy = HYPERPRIOR_TEXT.format(hyper=manifest["hyper_channels"], levels=hs["scale_levels"],
                                         smin=hs["scale_min"], smax=hs["scale_max"])
        tables = (f"Entropy tables ({manifest['precision_bits']}-bit integer frequencies, computed at export): "
                  f"{manifest['hyper_channels']} rows for ẑ and {hs['scale_levels']} Gaussian rows for v; gains for "
                  f"{manifest['qualities']} qualities.")
        cost_note = (f" The decoder's kMAC include h_s ({c['hyper_synthesis_kmac_per_px']:.2f} kMAC/px; the encoder runs "
                     f"it too, in integers, not counted in its figure), the encoder's include h_a "
                     f"({c['hyper_analysis_kmac_per_px']:.2f}).")
        if "context_kmac_per_px" in c:
            entropy += CONTEXT_TEXT.format(k=manifest.get("context_channels"))
            cost_note += (f" The checkerboard context adds {c['context_kmac_per_px']:.2f} kMAC/px to both (counted in "
                          f"the decoder's figure; run-time MACs: only the 12 of the 25 taps that read anchors, only at "
                          f"the non-anchors).")
        hyper_parity = (f" Hyper latent z: max |Δ| {p['hyper_max_abs_diff']:.1e} (relative), rounding flips "
                        f"{p['rounded_hyper_flips']} of {p['hyper_checked']:,} plus {p['rounded_hyper_ties']} ties. "
                        + ("Integer h_s and context (run time) vs PyTorch's fake-quantized ones on the parity ẑ, v and "
                           "random ẑ, v: " if "context_kmac_per_px" in c else
                           "Integer h_s (run time) vs PyTorch's fake-quantized h_s on the parity ẑ and random ẑ: ") +
                        f"{p['hs_mismatches']} of {p['hs_checked']:,} means / scale indices differ.")
    else:
        entropy = "Learned per-channel factorized density."
        tables = (f"Entropy tables: {manifest['qualities']} qualities × {cfg['latent']} channels of integer "
                  f"frequencies ({manifest['precision_bits']}-bit), computed at export.")
        cost_note = ""
        hyper_parity = ""
    return f"""# Model card: `{manifest['name']}` ({manifest['profile']} profile)

Model id `{manifest['model_id']}` (content hash of encoder.onnx, decoder.onnx, tables.npz).

## What it is
{manifest['architecture']}: {IMAGE_TRANSFORMS}; hidden width N = {cfg['channels']}, latent M = {cfg['latent']}
channels at 1/16 resolution. {entropy}

One model serves quality 1..100: the latent is multiplied by a per-channel gain before rounding;
{len(cfg['lambdas'])} gain vectors were trained for λ = {', '.join(str(x) for x in cfg['lambdas'])} (loss λ·255²·MSE + bpp)
and qualities in between interpolate them log-linearly (quality 1 at ladder position
{ladder.get('quality_1_position', 0):g}, quality 100 at {ladder.get('quality_100_position', len(cfg['lambdas']) - 1):g}). {tables}

| | encoder | decoder |
|---|---|---|
| parameters | {c['encoder_params']:,} | {c['decoder_params']:,} |
| kMAC / pixel (counted from layer shapes) | {c['encoder_kmac_per_px']:.1f} | {c['decoder_kmac_per_px']:.1f} |

Entropy model and gains: {c['entropy_params']:,} parameters.{cost_note} (The exported decoder runs its transposed
convolutions as 3×3 convolutions + pixel shuffle: the same function with 36/25 of those layers' MACs
including structural zeros, which ONNX Runtime still runs faster than its ConvTranspose.)

## Training
- Command: `{train_command}`
- Steps: {number(t.get('steps'))} (batch {a.get('batch')}, {a.get('crop')}×{a.get('crop')} random crops with flips,
  Adam, lr {a.get('lr')} with {a.get('warmup')}-step warm-up and cosine decay over the last
  {round((1 - a.get('decay_from', 0.7)) * 100)} % of steps, seed {a.get('seed')}{', warm start from `' + str(a['init']) + '`' if a.get('init') else ''}).
- Wall time: {t.get('wall_hours') or 0:.2f} h (the trainer's running time summed over its resumes; a pause with SIGSTOP counts, a stop does not).
- Hardware: {hardware}

{data_section(a, "shared/data/images-train", DATA_SOURCES)}
## Validation (held-out folder, real rate from rounded latents and the model's likelihoods)
Step {val.get('step', '?')}:

| rate point | bpp | PSNR (dB, 8-bit RGB) |
|---|---|---|
{val_rows}
{curve_text(t, len(cfg['lambdas']))}
## Export checks
ONNX Runtime (CPU) vs PyTorch on fixed inputs: latent max |Δ| {p['latent_max_abs_diff']:.1e}, reconstruction
max |Δ| {p['image_max_abs_diff']:.1e}, rounded-latent flips {p['rounded_latent_flips']} of {p['latents_checked']:,}
checked (all {manifest['qualities']} gains), plus {p.get('rounded_latent_ties', 0)} flips of values on a rounding tie (|frac − ½| ≤ 1e-4,
float32 noise between two correct implementations; decoding never depends on them).{hyper_parity} Opset {manifest['export']['opset']}, torch {manifest['export']['torch']}.

{notes}"""


AUDIO_TRAIN_SOURCES = """\
`../shared/data/audio/train/` (44 clips, about 9 min, 24 kHz mono FLAC: 15 speech, 24 music and 5
environmental), cut from pinned commits of public repositories (librosa/data, MTG/sms-tools,
Real-Time-Voice-Cloning, coqui-ai/TTS, speechbrain, wenet, mirdata, pyroomacoustics). Terms as the
sources state them: LibriSpeech / VCTK / TinySOL / vocadito / 4-way tabla / sms-tools CC BY 4.0,
Free Music Archive pieces by Kevin MacLeod and Karissa Hobbs CC BY 3.0, AISHELL-1 Apache-2.0,
LJSpeech, Musopen Brahms and NPS humpback recordings public domain, Common Voice CC0, Google Speech
Commands noise CC BY 4.0; per-file table in `shared/data/SOURCES.md`."""

AUDIO_EXTRA_SOURCES = """\
`../shared/data/audio/train-extra/` (100 clips, 37.2 min: 98 speakers of read English speech from 16 kHz
sources, so empty above 8 kHz, and two short music montages): speechocean762 (96 speakers; README "free for
commercial and non-commercial purposes", Apache-2.0 on the authors' Hugging Face copy, CC BY 4.0 on OpenSLR),
LibriSpeech speakers 1088 and 2412 via lhotse fixtures (CC BY 4.0), sms-tools / freesound notes (CC BY 4.0),
mirdata test snippets (GuitarSet MIT, EGFxSet / Dagstuhl ChoirSet / Four-Way Tabla CC BY 4.0, Mridangam
Stroke CC BY 3.0); per-file table in `shared/data/SOURCES.md`."""

AUDIO_TEST_NOTE = """\
`../shared/data/audio/test/` (16 clips, 2 min) is the benchmark set."""


def audio_folder_text(folder: str) -> str:
    """Source and licence of one training folder: the shared sets by name, a prepared folder by its SOURCES.json."""
    import json
    from pathlib import Path

    name = folder.rstrip("/")
    if name.endswith("shared/data/audio/train"):
        return AUDIO_TRAIN_SOURCES
    if name.endswith("shared/data/audio/train-extra"):
        return AUDIO_EXTRA_SOURCES
    sources = Path(folder) / "SOURCES.json"
    if sources.is_file():
        info = json.loads(sources.read_text())
        return (f"`{folder}` ({len(info.get('files', []))} files, {info.get('minutes', 0):.1f} min, prepared by "
                f"`python -m aecodec.train.prepare_audio`, not committed): {info.get('origin')}; licence "
                f"{info.get('licence')}.")
    return f"`{folder}`: sources and licences not recorded (see the notes below)."


def audio_data_section(args: dict) -> str:
    """Every training folder with its source, licence and sampling weight, and how validation was chosen."""
    data = args.get("data") or []
    folders = [data] if isinstance(data, str) else list(data)
    weights = args.get("data_weights")
    lines = []
    for i, folder in enumerate(folders):
        weight = f" Sampling weight {weights[i]:g}." if weights else ""
        lines.append(f"- {audio_folder_text(folder)}{weight}")
    if args.get("val"):
        val = f"the folder `{args['val']}`"
        if str(args["val"]).rstrip("/").endswith("audio/test"):
            val += " (the benchmark set, as the first audio issue prescribed: the last checkpoint is shipped, not the best)"
    elif args.get("val_fraction"):
        val = (f"{args['val_fraction']:.0%} of each training folder's files per kind (speech / music / environmental), "
               "whole speakers or pieces chosen by a hash of the name and held out of training"
               + (f", middle {args['val_seconds']:g} s of each" if args.get("val_seconds") else ""))
    else:
        val = "none"
    band = args.get("above_band_weight")
    band_text = ("" if band is None or band >= 1 else
                 f" Spectral loss bins above a clip's detected bandwidth (16 kHz sources: 8 kHz) weigh {band:g}, "
                 "so band-limited speech does not teach that 8–12 kHz is empty.")
    on_test = str(args.get("val") or "").rstrip("/").endswith("audio/test")
    test_text = "" if on_test else f" {AUDIO_TEST_NOTE} It was not used for training or model selection."
    return ("Training audio (24 kHz mono; no other audio was used; never committed):\n" + "\n".join(lines)
            + f"\n\nValidation: {val}.{test_text}{band_text}\n")


def audio_loss_text(args: dict) -> str:
    """D of the run's loss from its --loss-* weights (absent = audio-edge's mel + 10·waveform L1)."""
    terms = [("mel", 1.0, "multi-resolution log-mel L1"), ("waveform", 10.0, "waveform L1"),
             ("stft", 0.0, "multi-resolution log-|STFT| L1"), ("sc", 0.0, "spectral convergence"),
             ("adversarial", 0.0, "MS-STFT discriminator (LSGAN)"), ("feature", 0.0, "feature matching")]
    parts = []
    for key, default, text in terms:
        value = args.get(f"loss_{key}")
        weight = default if value is None else float(value)
        if weight:
            parts.append(text if weight == 1 else f"{weight:g}·{text}")
    return " + ".join(parts)


def audio_curve_text(training: dict) -> str:
    """The audio validation curve: kbps / SI-SDR / mel distance of every rate point at every validated step."""
    curve = [c for c in training.get("validation_curve") or [] if any(k.startswith("L") for k in c)]
    if not curve:
        return ""
    levels = sorted({k for c in curve for k in c if k.startswith("L")}, key=lambda k: int(k[1:]))
    head = "| step | " + " | ".join(levels) + " |\n|---|" + "---|" * len(levels)
    rows = "\n".join(f"| {c['step']} | " + " | ".join(
        f"{c[k]['kbps']:.1f} / {c[k]['si_sdr']:.2f} / {c[k]['mel']:.3f}" if k in c else "" for k in levels) + " |"
        for c in curve)
    return ("\nValidation curve (each cell: kbps / SI-SDR dB / mel distance, mean over the validation clips):\n\n"
            f"{head}\n{rows}\n")



def _front_text(cfg: dict) -> str:
    """How the encoder's first strides differ from the rest (framing conv, bare strides), for the card."""
    notes = []
    if cfg.get("encoder_patch", 1) > 1:
        notes.append(f"a framing conv of stride {cfg['encoder_patch']} replaces the first strides")
    if cfg.get("encoder_bare", 0):
        after = " after the framing conv" if cfg.get("encoder_patch", 1) > 1 else ""
        notes.append(f"the first {cfg['encoder_bare']} strides{after} have no residual units, only the activation "
                     "and the strided conv")
    return f" ({'; '.join(notes)})" if notes else ""

def render_audio(manifest: dict, train_command: str, hardware: str, notes: str = "") -> str:
    c = manifest["complexity"]
    t = manifest["training"]
    a = t.get("args") or {}
    cfg = manifest["config"]
    val = t.get("last_validation") or {}
    val_rows = "\n".join(
        f"| {k} (λ = {cfg['lambdas'][int(k[1:])]}) | {v['kbps']:.2f} | {v['si_sdr']:.2f} | {v['mel']:.3f} |"
        + " ".join(f" {kind} {kv['si_sdr']:.2f} / {kv['mel']:.3f};" for kind, kv in v.get("by_kind", {}).items()).rstrip(";")
        + " |"
        for k, v in (val.get("val") or {}).items()
    )
    p = manifest["parity"]
    decoder_width = cfg.get("decoder_channels") or cfg["channels"]
    units = cfg.get("residual_units", 2)
    dilations = ", ".join(str(3**i) for i in range(units))
    init = f", warm start from `{a['init']}`" if a.get("init") else ""
    if cfg.get("decoder") == "fourier":
        dim, hidden, blocks = cfg.get("fourier_dim", 256), cfg.get("fourier_hidden", 768), cfg.get("fourier_blocks", 6)
        decoder_text = (f"The decoder works at the latent frame rate (Vocos-style): a 3-tap conv to {dim} channels, "
                        f"{blocks} ConvNeXt blocks\n(3-tap depthwise conv, channel LayerNorm, 1×1 convs {dim} → {hidden} → "
                        f"{dim}, GELU, layer scale), a 1×1 conv to the log-magnitude and phase of a\n"
                        f"{2 * manifest['hop']}-point spectrum per frame, inverse DFT, periodic Hann window and overlap-add at "
                        f"the hop.")
    else:
        decoder_text = (f"The decoder mirrors it with transposed convs ({decoder_width} channels at\n"
                        f"its output end, doubling towards the latent).")
    return f"""# Model card: `{manifest['name']}` (audio, {manifest.get('profile', 'edge')} profile)

Model id `{manifest['model_id']}` (content hash of encoder.onnx, decoder.onnx, tables.npz).

## What it is
A SEANet-style 1-D convolutional waveform autoencoder: encoder = 7-tap conv, then per stride
({', '.join(str(s) for s in cfg['strides'])}) {units} dilated residual units (dilation {dilations}; {ACTIVATION_TEXT[cfg.get('activation', 'elu')]}) and a strided conv doubling the
width from {cfg['channels']} channels{_front_text(cfg)}; a 3-tap conv to {cfg['latent']} latent channels at {manifest['frame_rate']:g} frames/s
({cfg['sample_rate']} Hz / hop {manifest['hop']}). {decoder_text} No recurrent layers. Scalar quantisation with a per-channel
gain vector per rate point ({len(cfg['lambdas'])} points, λ = {', '.join(f'{x:g}' for x in cfg['lambdas'])}; loss D + kbps/(10 λ) with
D = {audio_loss_text(a)}), a learned per-channel factorized density, integer tables for {manifest['qualities']} qualities
({manifest['precision_bits']}-bit), range coding. Quality 1 sits at ladder position {manifest.get('low_quality_position', 0):g} and quality 100 at
{manifest.get('high_quality_position', len(cfg['lambdas']) - 1):g} (0 = the lowest trained rate point, {len(cfg['lambdas']) - 1} = the highest; outside that range the gains are
extrapolated log-linearly, i.e. quantisation the model was not trained for).

| | encoder | decoder |
|---|---|---|
| parameters | {c['encoder_params']:,} | {c['decoder_params']:,} |
| MMAC per second of audio (from layer shapes) | {c['encoder_mmac_per_s']:.0f} | {c['decoder_mmac_per_s']:.0f} |

## Training
- Command: `{train_command}`
- Steps: {number(t.get('steps'))} (batch {a.get('batch')}, {a.get('segment_seconds')}-s random segments, random gain −12…+3 dB,
  Adam, lr {a.get('lr')} with {a.get('warmup')}-step warm-up and cosine decay over the last
  {round((1 - a.get('decay_from', 0.7)) * 100)} % of steps, bfloat16 autocast of the transforms: {bool(a.get('bf16'))}, seed {a.get('seed')}{init}).
- Wall time: {t.get('wall_hours', 0):.2f} h (includes pauses while tests ran).
- Hardware: {hardware}

{audio_data_section(a)}
## Validation (real rate from rounded latents and the model's likelihoods; SI-SDR dB / mel distance per kind)
Step {val.get('step', '?')}:

| rate point | kbps | SI-SDR dB | mel distance | per kind |
|---|---|---|---|---|
{val_rows}
{audio_curve_text(t)}
## Export checks
ONNX Runtime (CPU) vs PyTorch: latent max |Δ| {p.get('latent_max_abs_diff', float('nan')):.1e}, waveform max |Δ|
{p.get('wave_max_abs_diff', float('nan')):.1e}, rounded-latent flips {p.get('rounded_latent_flips')} of {p.get('latents_checked', 0):,} checked.
Opset {manifest['export']['opset']}, torch {manifest['export']['torch']}.

{notes}"""
