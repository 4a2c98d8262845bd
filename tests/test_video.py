"""Video upscaling on a tiny generated clip with an audio track: frames, rate, size, audio kept, no half-written
output. Skipped without PyAV (`pip install "freqnet[video]"`)."""

import numpy as np
import pytest

from freqnet.cli import main
from freqnet.inference import Upscaler
from freqnet.video import synthetic_clip, upscale_video

av = pytest.importorskip("av")

FPS, FRAMES, SIZE = 10, 6, (32, 24)


def seconds(stream):
    return float(stream.duration * stream.time_base) if stream.duration else None  # Matroska leaves it unset


def streams(path):
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return {"frames": frames, "rate": video.average_rate, "size": (video.codec_context.width, video.codec_context.height),
                "audio": [seconds(a) for a in audio], "video_seconds": seconds(video)}


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_cli_upscales_a_clip_keeping_rate_and_audio(tmp_path, capsys):
    clip = synthetic_clip(tmp_path / "clip.mp4")
    target = tmp_path / "clip_x2.mp4"
    assert main(["upscale", str(clip), "-o", str(target), "--model", "x2", "--batch", "4"]) == 0
    assert "6 frames" in capsys.readouterr().out
    before, after = streams(clip), streams(target)
    assert len(after["frames"]) == FRAMES and after["rate"] == FPS
    assert after["size"] == (2 * SIZE[0], 2 * SIZE[1])
    assert len(after["audio"]) == 1 and abs(after["audio"][0] - before["audio"][0]) < 1e-6  # copied, not re-encoded
    assert abs(after["video_seconds"] - before["video_seconds"]) < 1 / FPS
    # each output frame is the model's upscale of the matching input frame (x264 at CRF 18 costs little)
    reference = Upscaler("x2", tile=None)
    for source, frame in zip(before["frames"], after["frames"]):
        expected = np.clip(np.rint(reference.run(source.astype(np.float32) / 255) * 255), 0, 255)
        assert psnr(frame, expected) > 30


def test_tiled_frames_give_the_same_clip(tmp_path):
    clip = synthetic_clip(tmp_path / "clip.mp4", size=(72, 40))
    whole, tiled = tmp_path / "whole.mkv", tmp_path / "tiled.mkv"
    upscale_video(clip, whole, Upscaler("x2", tile=None), codec="ffv1", progress=False)  # lossless codec
    # Two 48-px tiles across with a 16-px overlap: the shipped x2, trained on LR-128 patches, leans on more context
    # than 32-px tiles give (a mean difference of 0.31 there, 0.37 and 0.23 for the two x2s before it; ~0.1 at 48).
    summary = upscale_video(clip, tiled, Upscaler("x2", tile=48, tile_overlap=16), codec="ffv1", batch=3,
                            progress=False)
    assert summary.frames == FRAMES and summary.copied_streams == ["audio aac"]
    for a, b in zip(streams(whole)["frames"], streams(tiled)["frames"]):  # tile seams and 4:2:0 rounding only
        difference = np.abs(a.astype(int) - b)
        assert difference.mean() < 0.3 and difference.max() <= 8


def test_existing_output_is_refused(tmp_path, capsys):
    clip = synthetic_clip(tmp_path / "clip.mp4")
    target = tmp_path / "out.mp4"
    target.write_bytes(b"keep me")
    assert main(["upscale", str(clip), "-o", str(target), "--model", "x2"]) == 2
    assert "exists" in capsys.readouterr().err and target.read_bytes() == b"keep me"


def test_interrupted_run_leaves_no_output(tmp_path):
    clip = synthetic_clip(tmp_path / "clip.mp4")
    upscaler = Upscaler("x2", tile=None)
    calls = {"n": 0}
    forward = upscaler.infer

    def interrupted(x):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return forward(x)

    upscaler.infer = interrupted
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, tmp_path / "out" / "clip_x2.mp4", upscaler, batch=2, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_videos_and_images_are_not_mixed(tmp_path, capsys):
    clip = synthetic_clip(tmp_path / "clip.mp4")
    assert main(["upscale", str(clip), "freqnet/assets/samples/chelsea.png", "-o", str(tmp_path / "o")]) == 2
    assert "separate runs" in capsys.readouterr().err
