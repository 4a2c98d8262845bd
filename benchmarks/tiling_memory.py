"""Peak memory of tiled inference on CPU, in a fresh process each: a 3840x2160 output (x4 from 960x540) for tile
sizes from 'auto' down, plus the untiled forward where it fits; and a 12-megapixel photo (4000x3000) at x4 through
`freqnet upscale`'s file path, whose PNG output (192 MP) is streamed band by band.

    python benchmarks/tiling_memory.py --out docs/tiling_memory.md [--model PATH|NAME] [--preset small]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, machine, write_report  # noqa: E402


def child(model: str, preset: str, tile: str, size: tuple[int, int]) -> dict:
    import numpy as np

    import freqnet
    from freqnet.inference import Upscaler
    from freqnet.runtime import keep_freed_memory

    keep_freed_memory()
    source = model or freqnet.fuse(freqnet.build_model(preset, 4))
    upscaler = Upscaler(source, tile if tile == "auto" else (int(tile) or None))
    image = np.random.default_rng(0).random((size[1], size[0], 3)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = upscaler.run(image)
    return {"seconds": time.perf_counter() - start, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "before_mb": before / 1024, "tile": upscaler.tile, "shape": list(out.shape)}


def photo_child(model: str, preset: str, size: tuple[int, int]) -> dict:
    """A whole `upscale_files` job: decode a PNG, upscale it tiled, stream the PNG out."""
    import tempfile

    import numpy as np
    from PIL import Image

    import freqnet
    from freqnet.inference import Upscaler, upscale_files
    from freqnet.runtime import keep_freed_memory

    keep_freed_memory()
    upscaler = Upscaler(model or freqnet.fuse(freqnet.build_model(preset, 4)), "auto")
    with tempfile.TemporaryDirectory() as work:
        pixels = (np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(f"{work}/photo.png")
        del pixels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        summary = upscale_files([f"{work}/photo.png"], f"{work}/out.png", upscaler, show_progress=False)
        seconds = time.perf_counter() - start
        assert summary["done"], summary
        with open(f"{work}/out.png", "rb") as out:  # the IHDR: Pillow refuses to open 192 MP at all
            header = out.read(24)
        shape = [int.from_bytes(header[20:24], "big"), int.from_bytes(header[16:20], "big"), 3]
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "before_mb": before / 1024, "tile": upscaler.tile, "shape": shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="", help="a model path or shipped name (default: an untrained preset)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--tiles", nargs="+", default=["auto", "256", "128"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--photo", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"),
                        help="the photo of the file-path case (0 0 skips it)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "photo":
        print(json.dumps(photo_child(args.model, args.preset, tuple(args.photo))))
        return
    if args.child:
        print(json.dumps(child(args.model, args.preset, args.child, (960, 540))))
        return
    rows = ["| tile | seconds | peak RSS | output |", "|---|---|---|---|"]
    for tile in args.tiles:
        r = in_fresh_process(__file__, tile, "--model", args.model, "--preset", args.preset)
        rows.append(f"| {tile} ({r['tile']}) | {r['seconds']:.1f} | {r['peak_mb']:.0f} MB | "
                    f"{r['shape'][1]}×{r['shape'][0]} |")
        print(rows[-1], flush=True)
    photo_rows = []
    if all(args.photo):
        r = in_fresh_process(__file__, "photo", "--model", args.model, "--preset", args.preset,
                             "--photo", *map(str, args.photo))
        photo_rows = ["", f"A {args.photo[0]}×{args.photo[1]} photo ({args.photo[0] * args.photo[1] / 1e6:.0f} MP) "
                      "through `upscale_files` (the CLI's path: PNG decode, tiled ×4, PNG output streamed band by "
                      "band):", "", "| tile | seconds | peak RSS | output |", "|---|---|---|---|",
                      f"| auto ({r['tile']}) | {r['seconds']:.1f} | {r['peak_mb']:.0f} MB | "
                      f"{r['shape'][1]}×{r['shape'][0]} ({r['shape'][0] * r['shape'][1] / 1e6:.0f} MP) |"]
        print(photo_rows[-1], flush=True)
    write_report(["# Tiled inference memory (generated by benchmarks/tiling_memory.py)", "",
                        f"Machine: {machine()}. ×4 from 960×540 to 3840×2160, fp32, model "
                        f"`{args.model or args.preset + ' (untrained weights: memory and time do not depend on them)'}`; "
                        "peak RSS of the whole process (Python, PyTorch and the image buffers included).", "",
                        *rows, *photo_rows], args.out)


if __name__ == "__main__":
    main()
