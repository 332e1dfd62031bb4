"""Batch compression of large collections on a Ray cluster (Ray Data, an actor pool that loads the models once).

    pip install "aecodec[ray]"
    aecodec compress photos/ -o out/ --ray                  # a local Ray cluster on this machine's cores
    aecodec compress /nfs/photos -o /nfs/out --ray auto      # the running cluster (or --ray HOST:6379, ray://HOST:10001)

    import aecodec.distributed as ad
    results = ad.compress_files(["photos/"], "out/", quality=60)     # one dict per file, input order
    failed = [r for r in results if r["status"] == "failed"]

Inside your own Ray Data pipeline, map a dataset of rows {"src": path, "out": path} with the worker classes:

    ds.map_batches(ad.CompressFiles, fn_constructor_kwargs={"quality": 60}, batch_size=1,
                   compute=ray.data.ActorPoolStrategy(size=8), num_cpus=1)

Each actor loads the model bundles once (ONNX Runtime sessions with as many threads as the CPUs it reserves) and
codes whole files through the public run time (`api.compress_to` / `api.decompress_to`), so the bytes are those of
the single-process CLI and every output is written atomically (a killed worker leaves no partial file). Only paths
and one-line results travel through Ray: every node must see the inputs and the output folder at the same paths
(a shared filesystem) and have the same aecodec installed.

Existing outputs: `existing="skip"` (the default here and for `--ray`; reported per file and counted) makes a rerun
finish only what is missing; `"overwrite"` (-f) redoes them; `"error"` refuses them like the plain folder mode.
A file whose worker dies (killed, out of memory, crashed) is retried on a fresh actor `max_task_retries` times, then
reported as failed while the rest of the job goes on.

This module imports Ray only when a job runs: `import aecodec` never imports it.
"""
from __future__ import annotations

import gc
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AecError, AecNotice, InputError

RAY_HINT = 'pip install "aecodec[ray]"'
EXISTING = ("skip", "overwrite", "error")
RESULT_COLUMNS = ("i", "src", "out", "status", "error", "summary", "facts", "notices", "seconds", "worker")
TEST_CRASH_ENV = "_AECODEC_TEST_CRASH_ON"  # test hook: a file holding an input's name; its worker kills itself on it


def require_ray():
    """The `ray` module with Ray Data, or an AecError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise AecError(f"--ray needs Ray (with Ray Data): {RAY_HINT}") from None
    return ray


# ---- the work of one actor: models loaded once, whole files through the public API -------------------------------


class _Models:
    """The bundles one worker uses, each loaded once with `threads` ONNX Runtime threads per session and the job's
    `precision` (None: this node's $AECODEC_PRECISION, else auto).

    A default bundle that lacks the precision (audio-edge has no int8) fails the files that need it, one by one
    with the single-process CLI's error, not the actor: the other modality's files are still coded."""

    def __init__(self, model: str | None, threads: int, providers: str | None, precision: str | None = None):
        from .models import DEFAULT_AUDIO_MODEL, load_bundle

        self.threads, self.providers, self.precision = threads, providers, precision
        self._by_folder: dict[str, Any] = {}
        self._refused: dict[str, AecError] = {}
        if model is not None:
            self.user = self._own(load_bundle(model, precision="auto").folder)
            self._image_folder = self._audio_folder = self.user.folder
        else:  # the defaults, whatever they are now: follow `load_bundle()`
            self.user = None
            self._image_folder = load_bundle(precision="auto").folder
            self._audio_folder = load_bundle(default=DEFAULT_AUDIO_MODEL, precision="auto").folder
            for folder in (self._image_folder, self._audio_folder):
                try:
                    self._own(folder)
                except AecError:  # kept in _refused: raised for each file that needs it
                    pass

    @property
    def image(self):
        return self._own(self._image_folder)

    @property
    def audio(self):
        return self._own(self._audio_folder)

    def _own(self, folder: Path):
        from .models import ModelBundle

        key = str(Path(folder).resolve())
        if key in self._refused:
            raise AecError(str(self._refused[key]))
        if key not in self._by_folder:
            try:
                self._by_folder[key] = ModelBundle(folder, providers=self.providers, threads=self.threads,
                                                   precision=self.precision)
            except AecError as e:
                self._refused[key] = e
                raise
        return self._by_folder[key]

    def for_file(self, model_id: str):
        """The bundle for a file's model id (the user's first, then the shipped ones); None lets the run time
        say which model is missing."""
        if self.user is not None:
            return self.user
        from .models import shipped_bundles

        for b in self._by_folder.values():
            if b.model_id == model_id:
                return b
        for folder in shipped_bundles():
            if json.loads((folder / "manifest.json").read_text()).get("model_id") == model_id:
                return self._own(folder)
        return None


class _FileWorker:
    """A Ray Data callable class: rows {"src", "out"[, "label", "i", ...]} in, the same rows with results out.

    Result columns: status ("done", "skipped" or "failed"), error (one line, "" unless failed), summary (the
    CLI's line for the file), out (the output actually used), facts and notices (JSON), seconds, worker."""

    def __init__(self, *, model: str | None = None, existing: str = "skip", threads: int = 1,
                 providers: str | None = None, precision: str | None = None, max_pixels: int | None = None,
                 max_seconds: float | None = None):
        if existing not in EXISTING:
            raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
        self.existing, self.max_pixels, self.max_seconds = existing, max_pixels, max_seconds
        self.models = _Models(model, threads, providers, precision)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        srcs = [str(s) for s in batch["src"]]
        outs = [str(o) for o in batch["out"]]
        labels = [str(x) for x in batch["label"]] if "label" in batch else srcs
        out_labels = [str(x) for x in batch["out_label"]] if "out_label" in batch else outs
        rows = [self.one(*args) for args in zip(srcs, outs, labels, out_labels)]
        result = {k: v for k, v in batch.items() if k not in RESULT_COLUMNS or k in ("i", "src")}
        for key in ("out", "status", "error", "summary", "facts", "notices", "seconds", "worker"):
            result[key] = np.array([r[key] for r in rows])
        return result

    def one(self, src: str, out: str, label: str | None = None, out_label: str | None = None) -> dict:
        """Code one file; every failure is caught and becomes this file's one-line error."""
        from .cli.batch import describe

        label, out_label = label or src, out_label or out
        _crash_hook(src)
        start = time.perf_counter()
        row: dict[str, Any] = {"out": out, "status": "done", "error": "", "summary": "", "facts": "{}",
                               "notices": "[]", "worker": self.worker}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AecNotice)
            try:
                status, final, facts = self.code(src, out, label)
                if final != out:  # decompressed audio: STEM.wav instead of STEM.png
                    out_label = str(Path(out_label).with_suffix(Path(final).suffix))
                summary = self.summary(label, out_label, facts) if status == "done" else \
                    f"{label}: skipped, {out_label} exists"
                row.update(status=status, out=final, summary=summary, facts=json.dumps(facts))
            except (AecError, OSError) as e:
                if self.existing == "skip" and "already exists" in str(e) and Path(row["out"]).exists():
                    row.update(status="skipped", summary=f"{label}: skipped, {out_label} exists")  # appeared meanwhile
                else:
                    row.update(status="failed", error=describe(e))
            except MemoryError:
                row.update(status="failed", error="out of memory")
            except Exception as e:  # a bug must not take the other files of the batch down with it
                row.update(status="failed", error=f"unexpected {type(e).__name__}: {e}")
        notes = [str(w.message) for w in caught if issubclass(w.category, AecNotice)]
        for w in caught:
            if not issubclass(w.category, AecNotice):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        row["notices"] = json.dumps([n if label in n else f"{label}: {n}" for n in notes])
        row["seconds"] = time.perf_counter() - start
        return row

    def _existing(self, out: str) -> bool:
        """True to skip an existing output (skip mode); an error in error mode; False to go on."""
        if not Path(out).exists() or self.existing == "overwrite":
            return False
        if self.existing == "skip":
            return True
        raise AecError(f"{out} already exists (use -f to overwrite)")

    def code(self, src: str, out: str, label: str) -> tuple[str, str, dict]:
        """(status, output used, facts) for one file."""
        raise NotImplementedError

    def summary(self, label: str, out_label: str, facts: dict) -> str:
        raise NotImplementedError

    @staticmethod
    def default_bundles(files: list[str]) -> list[Path]:
        """The shipped bundle folders these files may need when no model is named (checked before a job; the default
        image model first, as most files are images)."""
        from .models import DEFAULT_IMAGE_MODEL, shipped_bundles

        return sorted(shipped_bundles(), key=lambda folder: folder.name != DEFAULT_IMAGE_MODEL)


class CompressFiles(_FileWorker):
    """Compress each row's image or audio file `src` into `out` (.aec), as `aecodec compress` does."""

    def __init__(self, *, quality: int | None = None, bitrate: float | None = None, lossless: bool = False,
                 first_frame: bool = False, refine: int = 0, **common):
        super().__init__(**common)
        self.quality, self.bitrate, self.lossless, self.first_frame = quality, bitrate, lossless, first_frame
        self.refine = refine

    def code(self, src: str, out: str, label: str) -> tuple[str, str, dict]:
        from .api import compress_to, is_audio_path
        from .audio import looks_like_audio
        from .fileio import read_source

        if Path(src).suffix.lower() == ".aec":
            raise InputError(f"{label} is already an .aec file (decompress it first; re-encoding only adds loss)")
        if self._existing(out):
            return "skipped", out, {}
        source: str | bytes = src
        audio = is_audio_path(src)
        if not audio:
            source = read_source(src)
            if not source:
                raise InputError("input is empty")
            audio = looks_like_audio(source)
        if audio and (self.lossless or self.first_frame or self.refine):
            flag = "--lossless" if self.lossless else "--first-frame" if self.first_frame else "--refine"
            raise InputError(f"{flag} applies to images, and {label} is audio")
        extra: dict[str, Any] = {}  # only what was asked for: the API's newer options stay optional
        if self.lossless:
            extra["lossless"] = True
        if self.first_frame:
            extra["first_frame"] = True
        if self.refine:
            extra["refine"] = self.refine
        facts = compress_to(source, out, quality=self.quality, overwrite=self.existing == "overwrite",
                            model=self.models.audio if audio else self.models.image, bitrate=self.bitrate,
                            max_pixels=self.max_pixels, max_seconds=self.max_seconds, name=label, **extra)
        return "done", out, {k: v for k, v in facts.items() if k != "sections"}

    def summary(self, label: str, out_label: str, facts: dict) -> str:
        return compress_summary(label, out_label, facts)

    @staticmethod
    def default_bundles(files: list[str]) -> list[Path]:
        """The default image bundle for image files, the default audio bundle for audio files (by suffix)."""
        from .api import is_audio_path
        from .models import DEFAULT_AUDIO_MODEL, DEFAULT_IMAGE_MODEL, MODELS_DIR

        audio = {is_audio_path(f) for f in files}
        return [MODELS_DIR / name for name, wanted in ((DEFAULT_IMAGE_MODEL, False), (DEFAULT_AUDIO_MODEL, True))
                if wanted in audio]


class DecompressFiles(_FileWorker):
    """Decompress each row's .aec file `src` into `out`: an image in `fmt` (or out's extension), or audio (an image
    name becomes .wav, as `aecodec decompress` does in folder mode)."""

    def __init__(self, *, fmt: str | None = None, **common):
        super().__init__(**common)
        self.fmt = fmt.upper() if fmt else None

    def code(self, src: str, out: str, label: str) -> tuple[str, str, dict]:
        from .api import decompress_to, info
        from .audio import OUTPUT_FORMATS
        from .fileio import read_source

        data = read_source(src)
        header = info(data)
        if header["modality"] == "audio" and Path(out).suffix.lower() not in OUTPUT_FORMATS:
            out = str(Path(out).with_suffix(".wav"))
        if self._existing(out):
            return "skipped", out, {}
        facts = decompress_to(data, out, fmt=None if header["modality"] == "audio" else self.fmt,
                              overwrite=self.existing == "overwrite", model=self.models.for_file(header["model_id"]),
                              max_pixels=self.max_pixels, max_seconds=self.max_seconds)
        return "done", out, facts

    def summary(self, label: str, out_label: str, facts: dict) -> str:
        return decompress_summary(label, out_label, facts)


def compress_summary(label: str, out: str, m: dict) -> str:
    """The summary line of `aecodec compress` for one file."""
    if m.get("modality") == "audio":
        return (f"{label} -> {out}: {m['seconds']:.2f} s, {m['sample_rate']} Hz, {m['channels']} ch, "
                f"{m['bytes']} bytes, {m['kbps']:.2f} kbps, q {m['quality']}")
    coding = ", lossless" if str(m.get("coding", "")).startswith("lossless") else ""
    return (f"{label} -> {out}: {m['width']}x{m['height']}, {m['bytes']} bytes, {m['bpp']:.3f} bpp, "
            f"q {m['quality']}{coding}")


def decompress_summary(label: str, out: str, m: dict) -> str:
    """The summary line of `aecodec decompress` for one file."""
    if m.get("modality") == "audio":
        return f"{label} -> {out}: {m['seconds']:.2f} s, {m['sample_rate']} Hz"
    return f"{label} -> {out}: {m['width']}x{m['height']} {m['mode']}"


def _crash_hook(src: str) -> None:
    """Tests only: when the file named by $_AECODEC_TEST_CRASH_ON holds this input's file name, the worker process
    is killed (SIGKILL, as the OOM killer does) before coding it."""
    trigger = os.environ.get(TEST_CRASH_ENV)
    if trigger:
        try:
            doomed = Path(trigger).read_text().split()
        except OSError:
            return
        if Path(src).name in doomed:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


# ---- the driver: plan the outputs, run the actor pool, stream the results back -----------------------------------


def plan_outputs(files: Iterable[str | Path], output_dir: str | Path, suffix: str) -> list[dict]:
    """One row per input: the folder-mode output name (OUTPUT_DIR/STEM + suffix), absolute paths for the workers
    and the names as given for messages. An output name that an earlier input already takes is a failure of the
    later input (folder mode would refuse or overwrite it depending on the order; here the input order decides)."""
    rows: list[dict] = []
    taken: dict[str, str] = {}
    for i, f in enumerate(files):
        out = Path(output_dir) / (Path(f).stem + suffix)
        target = os.path.abspath(out)
        row: dict[str, Any] = {"i": i, "src": os.path.abspath(f), "out": target, "label": str(f),
                               "out_label": str(out)}
        if target in taken:
            row["duplicate_of"] = taken[target]
        else:
            taken[target] = str(f)
        rows.append(row)
    return rows


def _expand(inputs: Iterable[str | Path], suffixes: set[str]) -> list[str]:
    from .cli.batch import collect_inputs

    return [str(p) for p in collect_inputs([str(i) for i in inputs], lambda p: p.suffix.lower() in suffixes)]


def _compress_suffixes() -> set[str]:
    from .audio import AUDIO_SUFFIXES
    from .cli.main import IMAGE_SUFFIXES

    return set(IMAGE_SUFFIXES) | set(AUDIO_SUFFIXES)


@contextmanager
def _data_context(quiet: bool) -> Iterator[None]:
    """Ray Data settings for one job, restored afterwards: a file that keeps killing its workers is given up
    (reported) instead of failing the job; with quiet, no progress bars and no execution log lines."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.max_errored_blocks, ctx.enable_progress_bars)
    loggers = [logging.getLogger(n) for n in ("ray.data", "ray.data._internal")]
    levels = [lg.level for lg in loggers]
    ctx.max_errored_blocks = -1
    if quiet:
        ctx.enable_progress_bars = False
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        ctx.max_errored_blocks, ctx.enable_progress_bars = saved
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_rows(rows: list[dict], worker: type[_FileWorker], worker_kwargs: dict, *, workers: int | None = None,
             threads: int = 1, files_per_task: int | None = None, max_task_retries: int = 2,
             num_gpus: float | None = None, quiet: bool = False) -> Iterator[dict]:
    """Run `worker` over the rows on the connected Ray cluster (ray.init first); yield each file's result as it
    arrives, then a 'failed' result for every row whose worker died on every try."""
    ray = require_ray()
    from ray.data import ActorPoolStrategy

    todo = [r for r in rows if "duplicate_of" not in r]
    for r in rows:
        if "duplicate_of" in r:
            yield {**r, "status": "failed", "out": r["out"], "summary": "", "facts": "{}", "notices": "[]",
                   "seconds": 0.0, "worker": "",
                   "error": f"{r['out_label']} is also the output of {r['duplicate_of']} (rename one of them)"}
    if not todo:
        return
    cpus = int(ray.cluster_resources().get("CPU", 1))
    pool = workers or max(1, cpus // max(1, threads))
    per_task = files_per_task or max(1, min(16, len(todo) // (pool * 32)))
    pool = max(1, min(pool, math.ceil(len(todo) / per_task)))
    seen: set[int] = set()
    before = {id(h) for h in _actor_handles(worker)}
    with _data_context(quiet):
        ds = ray.data.from_items([{k: r[k] for k in ("i", "src", "out", "label", "out_label")} for r in todo],
                                 override_num_blocks=math.ceil(len(todo) / per_task))
        # A fixed pool (files go to the actors that are up; the others join when the cluster has room) with one task
        # in flight per actor: inputs are paths, nothing to prefetch, and a worker that dies takes no queued files
        # of others with it.
        compute = ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1)
        options = dict(fn_constructor_kwargs={**worker_kwargs, "threads": threads}, batch_size=per_task,
                       batch_format="numpy", compute=compute, num_cpus=threads, num_gpus=num_gpus)
        # Dead actors are replaced (max_restarts=-1) and their files retried a bounded number of times, so a file
        # that kills every worker (out of memory, a crash) cannot stall the job. Ray 2.60 takes these as (deprecated)
        # remote args; a Ray without them keeps its own default (unbounded retries).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated.*")
            try:
                mapped = ds.map_batches(worker, **options, max_restarts=-1, max_task_retries=max_task_retries)
            except TypeError:
                mapped = ds.map_batches(worker, **options)
        try:
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                for j in range(len(batch["i"])):
                    res = {k: _plain(batch[k][j]) for k in batch}
                    seen.add(int(res["i"]))
                    yield res
        finally:
            del mapped, ds
            gc.collect()
    lost = [r for r in todo if r["i"] not in seen]
    if lost:
        _kill_leftover_actors(worker, before)
    for r in lost:
        yield {**r, "status": "failed", "summary": "", "facts": "{}", "notices": "[]", "seconds": 0.0, "worker": "",
               "error": f"its worker died {max_task_retries + 1} times while coding it (killed, out of memory or "
                        "crashed); rerun to try again"}


def _actor_handles(worker: type) -> list:
    """Handles this process holds to actors of `worker` (Ray Data names them MapWorker(MapBatches(Class)))."""
    from ray.actor import ActorHandle

    tag = f"MapBatches({worker.__name__}))"
    return [o for o in gc.get_objects() if isinstance(o, ActorHandle) and tag in repr(o)]


def _kill_leftover_actors(worker: type, before: set[int]) -> None:
    """After a job in which a worker died, Ray Data 2.60 can keep handles to the job's actors (a restarted one, or
    one a pending metadata fetch still points at), and so the actors and their CPUs, until this process exits: the
    next job on the cluster could wait for ever. Kill the actors of this job that are still held."""
    ray = require_ray()
    for handle in _actor_handles(worker):
        if id(handle) not in before:
            try:
                ray.kill(handle)
            except Exception:  # already gone
                pass


def _plain(v):
    """numpy scalars and strings as Python values."""
    return v.item() if hasattr(v, "item") else v


@contextmanager
def connected(address: str | None = None, **init_kwargs) -> Iterator[bool]:
    """A Ray connection for one job: the one this process already has, else ray.init(address) (None: a new local
    cluster, or $RAY_ADDRESS), shut down afterwards. Yields whether it started the connection."""
    ray = require_ray()
    if ray.is_initialized():
        yield False
        return
    ray.init(address=address or None, **init_kwargs)
    try:
        yield True
    finally:
        ray.shutdown()


def _run_files(worker: type[_FileWorker], files: list[str], output_dir: str | Path, suffix: str,
               worker_kwargs: dict, *, address: str | None, workers: int | None, threads: int,
               files_per_task: int | None, max_task_retries: int, num_gpus: float | None,
               progress: Callable[[dict], None] | None) -> list[dict]:
    if worker_kwargs.get("existing") not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {worker_kwargs.get('existing')!r}")
    worker_kwargs = {**worker_kwargs, "precision": job_precision(worker_kwargs.get("precision"))}
    check_model(worker_kwargs.get("model"), worker_kwargs["precision"], worker_kwargs.get("providers"),
                worker.default_bundles(files))
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    rows = plan_outputs(files, output_dir, suffix)
    results: dict[int, dict] = {}
    with connected(address, include_dashboard=False):
        for res in run_rows(rows, worker, worker_kwargs, workers=workers, threads=threads,
                            files_per_task=files_per_task, max_task_retries=max_task_retries, num_gpus=num_gpus):
            results[int(res["i"])] = res
            if progress:
                progress(res)
    return [_public(rows[i], results[i]) for i in range(len(rows))]


def job_precision(precision: str | None) -> str | None:
    """The precision the workers load their bundles at: the argument, else the one this process was given
    (`use_precision`, $AECODEC_PRECISION), which workers on other nodes would not see; None when nothing was asked
    for (each worker: its own $AECODEC_PRECISION, else auto). An unknown name is a one-line error here."""
    from .models import requested_precision

    chosen = requested_precision(precision)
    return None if precision is None and chosen == "auto" else chosen


def check_model(model: str | None, precision: str | None = None, providers: str | None = None,
                defaults: Iterable[Path] = ()) -> None:
    """A model named by the user, and a precision, are checked here before any worker starts: the single-process
    CLI's one-line error (it names the shipped models, or the variants the bundle has) instead of actors that
    cannot start or one failure per file.

    The precision is checked against this machine's backend, as --backend is; it is refused when the named model,
    or every bundle of `defaults` (those the files may need), lacks it. Where only some defaults lack it, their
    files fail one by one, as in the plain folder mode. A backend this machine lacks is left to the workers."""
    from .models import Manifest, choose_variant, load_bundle, select_providers
    from .models.runtime import backend_of

    folders = [load_bundle(model, precision="auto").folder] if model is not None else list(defaults)
    if precision in (None, "auto") or not folders:
        return
    try:
        backend = backend_of(select_providers(providers))
    except AecError:
        return
    errors: list[AecError] = []
    for folder in folders:
        manifest = Manifest.from_dict(json.loads((Path(folder) / "manifest.json").read_text()), str(folder))
        try:
            choose_variant(manifest, Path(folder), precision, backend)
            return
        except AecError as e:
            errors.append(e)
    raise errors[0]


def _public(row: dict, res: dict) -> dict:
    return {"src": row["label"], "out": res["out"], "status": res["status"], "error": res["error"] or None,
            "summary": res["summary"], "facts": json.loads(res["facts"]), "notices": json.loads(res["notices"]),
            "seconds": float(res["seconds"]), "worker": res["worker"]}


def compress_files(inputs: Iterable[str | Path], output_dir: str | Path, *, quality: int | None = None,
                   bitrate: float | None = None, model: str | None = None, lossless: bool = False,
                   first_frame: bool = False, existing: str = "skip", max_pixels: int | None = None,
                   max_seconds: float | None = None, address: str | None = None, workers: int | None = None,
                   threads: int = 1, files_per_task: int | None = None, max_task_retries: int = 2,
                   num_gpus: float | None = None, providers: str | None = None, precision: str | None = None,
                   progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Compress image / audio files and folders (searched recursively) into output_dir/STEM.aec on a Ray cluster.

    Returns one dict per input file, in input order: src, out, status ("done" / "skipped" / "failed"), error,
    summary, facts (what `api.compress_to` returned), notices, seconds, worker. `progress(result)` is called as
    each file finishes. Uses the Ray connection of this process if there is one, else `ray.init(address)`.
    `workers` actors (default: the cluster's CPUs / threads), each reserving `threads` CPUs and running ONNX
    Runtime on as many threads. `providers` and `precision` (default: this process's `use_precision` or
    $AECODEC_PRECISION) apply on every worker; a precision the bundles lack is refused before the job starts."""
    kwargs = dict(quality=quality, bitrate=bitrate, lossless=lossless, first_frame=first_frame, model=model,
                  existing=existing, max_pixels=max_pixels, max_seconds=max_seconds, providers=providers,
                  precision=precision)
    return _run_files(CompressFiles, _expand(inputs, _compress_suffixes()), output_dir, ".aec", kwargs,
                      address=address, workers=workers, threads=threads, files_per_task=files_per_task,
                      max_task_retries=max_task_retries, num_gpus=num_gpus, progress=progress)


def decompress_files(inputs: Iterable[str | Path], output_dir: str | Path, *, fmt: str = "png",
                     model: str | None = None, existing: str = "skip", max_pixels: int | None = None,
                     max_seconds: float | None = None, address: str | None = None, workers: int | None = None,
                     threads: int = 1, files_per_task: int | None = None, max_task_retries: int = 2,
                     num_gpus: float | None = None, providers: str | None = None, precision: str | None = None,
                     progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Decompress .aec files and folders into output_dir/STEM.<fmt> (audio: STEM.wav) on a Ray cluster; the
    results and options as for `compress_files`."""
    suffix = "." + fmt.lower().replace("jpeg", "jpg")
    kwargs = dict(fmt=fmt, model=model, existing=existing, max_pixels=max_pixels, max_seconds=max_seconds,
                  providers=providers, precision=precision)
    return _run_files(DecompressFiles, _expand(inputs, {".aec"}), output_dir, suffix, kwargs, address=address,
                      workers=workers, threads=threads, files_per_task=files_per_task,
                      max_task_retries=max_task_retries, num_gpus=num_gpus, progress=progress)


# ---- the command line: `aecodec compress|decompress ... --ray [ADDRESS]` -----------------------------------------


def check_address(address: str) -> None:
    """`--ray` takes an optional value, so `--ray photos/ -o out` would read photos/ as the address: refuse that."""
    from .cli.batch import UsageError

    if address in ("", "auto", "local") or ("://" in address or ":" in address) and not Path(address).exists():
        return
    raise UsageError(f"--ray took {address!r} as the cluster address: put --ray after the inputs, or write "
                     "--ray=ADDRESS (auto, HOST:PORT or ray://HOST:PORT)")


def run_cli(args, out_suffix: str, wanted: Callable[[Path], bool]) -> int:
    """Folder mode on a Ray cluster: the same inputs, output names, bytes, per-file errors, exit status and progress
    line as `run_files`; existing outputs are skipped (counted) unless -f is given."""
    import sys

    from .cli.batch import EXIT_ERROR, EXIT_OK, CliError, batch_output_dir, collect_inputs

    check_address(args.ray)
    if "-" in args.input:
        raise CliError("--ray codes files: '-' (stdin) cannot be used")
    require_ray()
    args.batch = True
    files = [str(f) for f in collect_inputs(args.input, wanted)]
    # --backend and --precision, on every node (the workers do not see this process's environment)
    common = dict(model=args.model, existing="overwrite" if args.force else "skip", max_pixels=args.max_pixels,
                  max_seconds=args.max_seconds, providers=getattr(args, "backend", None),
                  precision=job_precision(getattr(args, "precision", None)))
    if args.command == "compress":
        worker: type[_FileWorker] = CompressFiles
        kwargs = dict(common, quality=args.quality, bitrate=args.bitrate, lossless=bool(getattr(args, "lossless", 0)),
                      first_frame=bool(getattr(args, "first_frame", False)), refine=int(getattr(args, "refine", 0) or 0))
    else:
        worker, kwargs = DecompressFiles, dict(common, fmt=args.format)
    check_model(args.model, kwargs["precision"], kwargs["providers"], worker.default_bundles(files))
    out_dir = batch_output_dir(args.output)
    rows = plan_outputs(files, out_dir, out_suffix)
    if not rows:  # nothing to code: no cluster to start
        print("aecodec: 0 done, 0 failed", file=sys.stderr)
        return EXIT_ERROR
    progress = sys.stderr.isatty() and not args.quiet
    counts = {"done": 0, "skipped": 0, "failed": 0}
    start = time.perf_counter()

    def report(res: dict) -> None:
        counts[res["status"]] += 1
        label = rows[int(res["i"])]["label"]
        if progress:
            n = sum(counts.values())
            print(f"\r[{n}/{len(rows)}] {Path(label).name[:60]:60s}", end="", file=sys.stderr, flush=True)
        if not args.quiet:
            for note in json.loads(res["notices"]):
                print(f"{chr(10) if progress else ''}aecodec: notice: {note}", file=sys.stderr)
        if res["status"] == "failed":
            print(f"{chr(10) if progress else ''}aecodec: error: {label}: {res['error']}", file=sys.stderr)
        elif res["status"] == "done" and not args.quiet and not progress:
            print(res["summary"], file=sys.stderr)
        elif res["status"] == "skipped" and args.verbose and not progress:
            print(f"aecodec: {res['summary']}", file=sys.stderr)

    init = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        with connected(None if args.ray in ("", "local") else args.ray, **init):
            for res in run_rows(rows, worker, kwargs, quiet=True):
                report(res)
    except (AecError, KeyboardInterrupt):
        raise
    except Exception as e:  # the cluster, not a file: say how far it got; a rerun skips what is done
        if progress:
            print(file=sys.stderr)
        done = counts["done"] + counts["skipped"]
        raise CliError(f"ray: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} ({done} of "
                       f"{len(rows)} files were finished; rerun to do the rest, finished outputs are skipped)") from None
    if progress:
        print(file=sys.stderr)
    if not args.quiet or counts["failed"]:
        skipped = f", {counts['skipped']} skipped (output exists; -f redoes them)" if counts["skipped"] else ""
        took = f" in {time.perf_counter() - start:.1f} s" if args.verbose else ""
        print(f"aecodec: {counts['done']} done{skipped}, {counts['failed']} failed{took}", file=sys.stderr)
    return EXIT_ERROR if counts["failed"] or not files else EXIT_OK
