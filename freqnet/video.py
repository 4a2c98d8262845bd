"""Video in, video out: decode -> batches of frames -> the model (tiled when a frame needs it) -> encode, with the
audio and subtitle streams copied packet for packet (never re-encoded). Needs PyAV (`pip install "freqnet[video]"`).

Memory follows the batch, never the clip. The output is written under a temporary name in the target folder and
renamed at the end, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .inference import NonFiniteOutput, Upscaler

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi"})
# CRF 18 is x264's "visually lossless" point; VP9 and AV1 count quality on another scale.
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 28}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def default_codec(target: Path) -> str:
    return "libvpx-vp9" if target.suffix.lower() == ".webm" else "libx264"


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    copied_streams: list[str]  # "audio aac", "subtitle mov_text"
    dropped_streams: list[str]  # streams the output container cannot carry, with why


def import_av():
    try:
        import av
    except ImportError:
        raise ValueError('video needs PyAV: pip install "freqnet[video]" (or pip install av)') from None
    return av


def upscale_video(source: str | Path, target: str | Path, upscaler: Upscaler, codec: str | None = None,
                  crf: int | None = None, batch: int = 4, overwrite: bool = False,
                  progress: bool = True) -> VideoSummary:
    """Upscale every frame of `source` into `target` at the same frame rate, keeping audio and subtitles."""
    av = import_av()
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
    if target.resolve() == source.resolve():
        raise ValueError(f"{target}: the output would replace its input")
    if batch < 1:
        raise ValueError(f"batch {batch}: give at least 1 frame")
    codec = codec or default_codec(target)
    crf = DEFAULT_CRF.get(codec, 20) if crf is None else crf
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")  # the suffix picks the muxer
    try:
        summary = transcode(av, source, partial, upscaler, codec, crf, batch, progress)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return summary


def transcode(av, source: Path, target: Path, upscaler: Upscaler, codec: str, crf: int, batch: int,
              progress: bool) -> VideoSummary:
    s = upscaler.scale
    with av.open(str(source)) as inp:
        if not inp.streams.video:
            raise ValueError(f"{source}: no video stream")
        vin = inp.streams.video[0]
        with av.open(str(target), "w") as out:
            rate = vin.average_rate or vin.guessed_rate or Fraction(25)
            vout = out.add_stream(codec, rate=rate)
            vout.width, vout.height = vin.codec_context.width * s, vin.codec_context.height * s
            vout.pix_fmt = "yuv420p"
            vout.time_base = vin.time_base
            vout.options = {"crf": str(crf), **({"b:v": "0"} if codec == "libvpx-vp9" else {})}
            copies, copied, dropped = {}, [], []
            for stream in inp.streams:
                if stream.type not in ("audio", "subtitle"):
                    continue
                label = f"{stream.type} {stream.codec_context.name}"
                try:
                    copies[stream.index] = out.add_stream_from_template(stream)
                    copied.append(label)
                except (ValueError, av.FFmpegError) as error:
                    dropped.append(f"{label}: {error}")
            total = vin.frames or None
            bar = tqdm(total=total, unit="frame", desc=source.name, disable=not progress, leave=False)
            frames = 0
            for frame in upscale_frames(av, decode_and_copy(inp, vin, copies, out), upscaler, batch):
                for packet in vout.encode(frame):
                    out.mux(packet)
                frames += 1
                bar.update(1)
            for packet in vout.encode(None):
                out.mux(packet)
            bar.close()
            seconds = float(vin.duration * vin.time_base) if vin.duration else frames / float(rate)
    return VideoSummary(frames, seconds, copied, dropped)


def decode_and_copy(inp, vin, copies: dict, out) -> Iterator:
    """Video frames in decode order; audio/subtitle packets are muxed unchanged on the way past."""
    for packet in inp.demux(vin, *(inp.streams[i] for i in copies)):
        if packet.stream.index == vin.index:
            yield from packet.decode()
        elif packet.dts is not None:  # the demuxer's flush packets carry no data
            packet.stream = copies[packet.stream.index]
            out.mux(packet)


def upscale_frames(av, frames: Iterator, upscaler: Upscaler, batch: int) -> Iterator:
    pending = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch:
            yield from upscale_batch(av, pending, upscaler)
            pending = []
    if pending:
        yield from upscale_batch(av, pending, upscaler)


@torch.no_grad()
def upscale_batch(av, frames: list, upscaler: Upscaler) -> Iterator:
    pixels = [frame.to_ndarray(format="rgb24") for frame in frames]
    h, w = pixels[0].shape[:2]
    if upscaler.tiles_for(h, w) == 1:  # one forward for the whole batch
        x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float().div_(255).to(upscaler.device)
        outputs = [y.permute(1, 2, 0).cpu().numpy() for y in upscaler.infer(x).float()]
    else:  # big frames: each one tiled like a big photo
        outputs = [upscaler.run(p.astype(np.float32) / 255) for p in pixels]
    for source, y in zip(frames, outputs):
        if not np.isfinite(y).all():
            raise NonFiniteOutput(f"model {upscaler.name} produced NaN or infinite values; nothing was written")
        rgb = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = source.pts, source.time_base
        yield frame


def synthetic_clip(path: str | Path, frames: int = 6, size: tuple[int, int] = (32, 24), fps: int = 10) -> Path:
    """A small H.264 clip (a bar sweeping right over noise) with a 16 kHz AAC sine track of the same duration,
    for tests and the speed benchmark: real containers and codecs, no files to ship."""
    av = import_av()
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(frames):
            image = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
            image[:, : (5 * i) % w] += 180
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * frames // fps) / 16000)).astype(np.float32)[None]
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            out.mux(audio.encode(chunk))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return Path(path)
