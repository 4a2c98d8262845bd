"""`freqnet` command line: a thin layer over the Python API; each subcommand lives beside the code it calls."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .config import PRESETS, SCALES, ModelConfig

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
    parser.add_argument("--preset", default="base", choices=sorted(PRESETS))
    parser.add_argument("--scale", type=int, default=4, choices=SCALES)
    parser.add_argument("--size", type=int, default=128, help="input side used to count MACs")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        metavar="FIELD=VALUE", help=f"override a config field ({len(ModelConfig.__dataclass_fields__)} fields)")
    parser.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    from .info import describe
    from .models import build_model

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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="freqnet", description="HybridMoE-FreqNet super-resolution and restoration")
    parser.add_argument("--version", action="version", version=f"freqnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_info(commands)
    add_degrade(commands)
    add_train(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .runtime import keep_freed_memory

    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"freqnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
