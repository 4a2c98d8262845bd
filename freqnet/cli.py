"""`freqnet` command line: a thin layer over the Python API; each subcommand lives beside the code it calls."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from collections.abc import Callable, Sequence

from .config import PRESETS, SCALES, ModelConfig
from .precision import PRECISIONS

Handler = Callable[[argparse.Namespace], int]


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with the value parsed as JSON where possible (numbers, booleans, lists), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_info(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("info", help="parameters, MACs per output pixel and a module summary")
    parser.add_argument("model", nargs="?", default=None,
                        help="a shipped name, .safetensors or run folder: its card fields and structure (else --preset)")
    parser.add_argument("--preset", default="base", choices=sorted(PRESETS))
    parser.add_argument("--scale", type=int, default=4, choices=SCALES)
    parser.add_argument("--size", type=int, default=128, help="input side used to count MACs")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        metavar="FIELD=VALUE", help=f"override a config field ({len(ModelConfig.__dataclass_fields__)} fields)")
    parser.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    from .info import card_fields, describe
    from .models import build_model, load_model, locate, read_metadata

    if args.model:
        path = locate(args.model)
        print(f"file: {path}")
        print(card_fields(read_metadata(path)))
        model = load_model(path)
    else:
        model = build_model(args.preset, args.scale, **dict(args.overrides))
        print(f"preset: {args.preset}")
    print(describe(model, args.size))
    return 0


def add_degrade(commands: argparse._SubParsersAction) -> None:
    from .data.recipes import NAMED_RECIPES

    parser = commands.add_parser("degrade", help="write K degraded versions of an image with their parameters")
    parser.add_argument("input", help="an image file")
    parser.add_argument("--recipe", default="realesrgan", help=f"one of {sorted(NAMED_RECIPES)} or a .yaml recipe")
    parser.add_argument("--scale", type=int, default=4, choices=SCALES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=4, help="how many samples")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet (HR beside each LR) here")
    parser.set_defaults(handler=run_degrade)


def run_degrade(args: argparse.Namespace) -> int:
    from .data.tools import degrade_file

    written = degrade_file(args.input, args.recipe, args.scale, args.seed, args.n, args.out, args.sheet)
    print(f"wrote {len(written)} images and params.json to {args.out}" + (f", sheet {args.sheet}" if args.sheet else ""))
    return 0


def add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train from a YAML config (torchrun for several processes)")
    parser.add_argument("config", help="YAML run description (see configs/)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/<name>)")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value by dotted key, e.g. optim.lr=1e-4")
    parser.add_argument("--resume", default=None, help="'auto' (newest valid checkpoint in the run) or a checkpoint path")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .training import TrainingStopped, load_config, train

    config = load_config(args.config, args.overrides)
    try:
        return train(config, args.out or f"runs/{config.name}", args.resume)
    except TrainingStopped as error:
        print(f"freqnet train: stopped: {error}", file=sys.stderr)
        return 3


def add_upscale(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("upscale", help="upscale or restore images with a trained model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--out", required=True, help="an output file (one input) or folder")
    parser.add_argument("--model", default="default",
                        help="default, a shipped name (x2, x4, ...), a .safetensors path or a training run folder "
                        "(its newest EMA weights)")
    parser.add_argument("--tile", default="auto", help="tile side in input pixels, 'auto' (fits memory) or 0 (no tiling)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles in input pixels")
    parser.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS),
                        help="auto (default): bf16 on CPUs with native bf16 (AVX512-BF16 or AMX: 1.3-1.9x faster, "
                        "the same scores to 0.01 dB), fp32 elsewhere")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--detail", type=float, default=1.0,
                        help="HF gain, 0 to 2: 1 = as trained, lower = smoother, higher = crisper (default 1)")
    parser.add_argument("--ensemble", action="store_true",
                        help="average over the 8 flips/rotations of the input: 8x slower, slightly sharper and cleaner")
    parser.add_argument("--suffix", default="", help="appended to each output's file stem")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (never inputs)")
    parser.add_argument("--max-pixels", type=float, default=None,
                        help="refuse inputs larger than this many pixels, checked before decoding (default 40e6; 0 = no limit)")
    video = parser.add_argument_group("video inputs (.mp4 .mkv .mov .webm .avi; needs PyAV)")
    video.add_argument("--codec", default=None, help="video encoder (default libx264; libvpx-vp9 for .webm)")
    video.add_argument("--crf", type=int, default=None, help="encoder quality, lower = better (default 18 for x264)")
    video.add_argument("--batch", type=int, default=4, help="frames per model call")
    parser.set_defaults(handler=run_upscale)


def parse_tile(text: str) -> int | str | None:
    if text == "auto":
        return "auto"
    try:
        return int(text) or None
    except ValueError:
        raise ValueError(f"--tile {text!r}: give 'auto', 0 (off) or a side in input pixels") from None


def run_upscale(args: argparse.Namespace) -> int:
    from .inference import Upscaler, upscale_files
    from .video import is_video

    videos = [path for path in args.inputs if is_video(path)]
    if videos and len(videos) != len(args.inputs):
        raise ValueError("give videos and images in separate runs")
    upscaler = Upscaler(args.model, parse_tile(args.tile), args.tile_overlap, args.precision, args.device, args.compile,
                        args.detail, args.ensemble)
    if videos:
        return run_upscale_videos(videos, args, upscaler)
    max_pixels = None if args.max_pixels is None else int(args.max_pixels)
    summary = upscale_files(args.inputs, args.out, upscaler, args.suffix, args.overwrite, sys.stderr.isatty(),
                            max_pixels)
    for source, reason in summary["skipped"]:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    for source, reason in summary["failed"]:
        print(f"failed {source}: {reason}", file=sys.stderr)
    verb = "upscaled" if upscaler.scale > 1 else "restored"
    print(f"{len(summary['done'])} {verb}, {len(summary['skipped'])} skipped, {len(summary['failed'])} failed")
    return 1 if summary["failed"] else 0


def run_upscale_videos(videos: list[str], args: argparse.Namespace, upscaler) -> int:
    """One output per clip: `-o clip_x4.mp4` for one clip, else `-o folder/` gets `<stem><suffix>.<ext>` each."""
    from .video import is_video, upscale_video

    single = len(videos) == 1 and is_video(args.out)
    for source in videos:
        source = Path(source)
        target = Path(args.out) if single else Path(args.out) / f"{source.stem}{args.suffix or f'_x{upscaler.scale}'}{source.suffix}"
        summary = upscale_video(source, target, upscaler, args.codec, args.crf, args.batch, args.overwrite,
                                sys.stderr.isatty())
        for dropped in summary.dropped_streams:
            print(f"{source}: not copied: {dropped}", file=sys.stderr)
        kept = f", kept {', '.join(summary.copied_streams)}" if summary.copied_streams else ""
        print(f"{target}: {summary.frames} frames ({summary.seconds:.1f} s){kept}")
    return 0


def parse_dataset(text: str):
    """NAME=HR_DIR or NAME=HR_DIR,LR_DIR"""
    from .evaluation import Dataset

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=HR_DIR[,LR_DIR], got {text!r}")
    name, folders = text.split("=", 1)
    hr, _, lr = folders.partition(",")
    return Dataset(name, hr, lr or None)


def add_eval(commands: argparse._SubParsersAction) -> None:
    from .evaluation import STANDARD_SETS

    parser = commands.add_parser("eval", help="PSNR/SSIM (and LPIPS) against bicubic and Lanczos, or on the standard sets")
    parser.add_argument("--model", action="append", default=None, metavar="MODEL",
                        help="default, a shipped name, a .safetensors path, a run folder or an .onnx file (float32 "
                        "NCHW RGB in [0, 1]); repeat for several models in one table")
    parser.add_argument("--benchmark", default=None, metavar="ROOT",
                        help="folder of the standard sets (<Set>/HR, <Set>/LR_bicubic/X<s>): one row per set")
    parser.add_argument("--sets", default=",".join(STANDARD_SETS), help="with --benchmark: comma-separated set names")
    parser.add_argument("--hr", help="HR folder")
    parser.add_argument("--lr", help="paired LR folder (else LR is made from --hr by --recipe)")
    parser.add_argument("--recipe", default=None, help="degradation recipe for --hr only (default bicubic)")
    parser.add_argument("--dataset", type=parse_dataset, action="append", default=[], metavar="NAME=HR[,LR]",
                        help="a named dataset; repeat for several (e.g. Set5=bench/Set5/HR,bench/Set5/LR_bicubic/X4)")
    parser.add_argument("--scale", type=int, default=None, choices=SCALES, help="default: the models' scale")
    parser.add_argument("--crop-border", type=int, default=None, help="pixels cropped per side (default: scale)")
    parser.add_argument("--rgb", action="store_true", help="score RGB instead of the Y channel")
    parser.add_argument("--lpips", action="store_true", help="also LPIPS-VGG (needs the VGG16 weights installed)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the bicubic (and Lanczos) columns")
    parser.add_argument("--tile", default="auto", help="tile side, 'auto' or 0")
    parser.add_argument("--ensemble", action="store_true",
                        help="our models: mean over the 8 flips/rotations of the input (the papers' '+' rows)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="our models' arithmetic, as `upscale --precision` runs them")
    parser.add_argument("--seed", type=int, default=0, help="seed of the recipe's degradations")
    parser.add_argument("--csv", default=None, help="write one row per image here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from .evaluation import (Dataset, evaluate, load_runner, markdown, means, model_label, standard_datasets,
                             method_table, write_csv)

    models: dict[str, object] = {}
    for spec in args.model or ["default"]:
        runner = load_runner(spec, parse_tile(args.tile), args.ensemble, args.precision)
        label = model_label(spec)
        if hasattr(runner, "ensemble"):  # ours; ONNX files run as exported
            label += ("+" if runner.ensemble else "") + ("" if args.precision == "fp32" else f" {args.precision}")
        models[label if label not in models else f"{label} ({len(models) + 1})"] = runner
    scales = {label: model.scale for label, model in models.items()}
    scale = args.scale or next(iter(scales.values()))
    wrong = {label: s for label, s in scales.items() if s != scale}
    if wrong:
        raise ValueError(f"--scale {scale} but " + ", ".join(f"{label} upscales x{s}" for label, s in wrong.items()))

    datasets = list(args.dataset)
    if args.benchmark:
        datasets += standard_datasets(args.benchmark, [s.strip() for s in args.sets.split(",") if s.strip()], scale)
    if args.hr:
        datasets.append(Dataset(Path(args.hr).name or "data", args.hr, args.lr, args.recipe))
    if not datasets:
        raise ValueError("give --benchmark ROOT, --hr (with --lr or --recipe) or at least one --dataset")
    lpips = None
    if args.lpips:
        from .losses import LPIPS

        lpips = LPIPS()
    baselines = () if args.no_baselines else ("bicubic",) if args.benchmark else ("bicubic", "lanczos")
    rows = evaluate(models, datasets, scale, args.crop_border, not args.rgb, lpips, baselines, args.seed,
                    progress=sys.stderr.isatty())
    scored = f"on {'RGB' if args.rgb else 'Y'}, crop = {'scale' if args.crop_border is None else args.crop_border}"
    report = "\n".join(method_table(rows, datasets, scored=scored)) if args.benchmark else markdown(rows)
    print(report)
    for (dataset,), scores in means(rows, lambda r: (r.dataset,)).items():
        print(f"{dataset}: " + ", ".join(f"{m} {v['psnr']:.3f} dB / {v['ssim']:.4f}" for m, v in scores.items()))
    if args.csv:
        write_csv(rows, args.csv)
    if args.markdown:
        Path(args.markdown).write_text(report + "\n")
    return 0


def add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help="export the fused model to ONNX or TorchScript")
    parser.add_argument("model", help="a shipped name, a .safetensors path or a training run folder")
    parser.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    parser.add_argument("-o", "--out", required=True, help="output file")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (ONNX)")
    parser.add_argument("--fp16", action="store_true", help="half-precision weights and input")
    parser.add_argument("--size", type=int, default=64, help="side of the example input used for tracing")
    parser.add_argument("--detail", type=float, default=1.0,
                        help="HF gain, 0 to 2: 1 = as trained, lower = smoother, higher = crisper (baked into the graph)")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx, export_torchscript
    from .inference import resolve_model

    model = resolve_model(args.model)
    model.set_detail(args.detail)
    if args.format == "onnx":
        difference = export_onnx(model, args.out, args.opset, args.dynamic, args.fp16, args.size)
        checker = "onnxruntime"
    else:
        difference = export_torchscript(model, args.out, args.fp16, args.size)
        checker = "TorchScript"
    limit = 1e-2 if args.fp16 else 1e-3
    print(f"wrote {args.out}; max |{checker} - PyTorch| = {difference:.3g} (limit {limit:g})")
    return 0 if difference < limit else 1


def add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="a local web page: drop images, compare before/after, download")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: this computer only); another host needs --allow-remote")
    parser.add_argument("--allow-remote", action="store_true",
                        help="let --host expose the page to other machines (anyone who reaches it can use your CPU/GPU)")
    parser.add_argument("--max-upload-mb", type=float, default=50)
    parser.add_argument("--max-pixels", type=float, default=40e6, help="largest input, checked from its header")
    parser.add_argument("--queue", type=int, default=8, help="images allowed to wait; more are refused (HTTP 429)")
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    local = args.host in ("127.0.0.1", "localhost", "::1")
    if not local and not args.allow_remote:
        raise ValueError(f"--host {args.host} would expose the page beyond this computer; add --allow-remote to mean it")
    try:
        from .web.server import serve
    except ImportError as error:
        raise ValueError(f'the web app needs its extra: pip install "freqnet[web]" ({error.name} missing)') from None
    if not local:
        print(f"warning: serving on {args.host}:{args.port}: anyone who can reach it can upload images and use this "
              "machine's compute", file=sys.stderr)
    print(f"freqnet: open http://{'127.0.0.1' if local else args.host}:{args.port}/  (Ctrl-C stops and deletes "
          "uploads and results)", file=sys.stderr)
    serve(args.host, args.port, max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_pixels) or None,
          max_waiting=args.queue)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="freqnet", description="HybridMoE-FreqNet super-resolution and restoration")
    parser.add_argument("--version", action="version", version=f"freqnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_info(commands)
    add_degrade(commands)
    add_train(commands)
    add_upscale(commands)
    add_eval(commands)
    add_export(commands)
    add_serve(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .runtime import keep_freed_memory

    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:  # bad input, missing or unwritable files: one line, no traceback
        print(f"freqnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"freqnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
