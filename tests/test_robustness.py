"""Everyday robustness of the commands: no traceback, no lost output, no silent wrong result, bounded input size.
Each test reproduces a reported failure end to end (through the CLI where the report was about the CLI)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import freqnet
from freqnet.cli import main
from freqnet.data import image_io
from freqnet.data.image_io import read_image


@pytest.fixture(scope="module")
def tiny_x2(tmp_path_factory):
    model = freqnet.build_model("tiny", 2)
    path = tmp_path_factory.mktemp("model") / "tiny_x2.safetensors"
    freqnet.save_model(freqnet.fuse(model), path)
    return str(path)


def save(path, size=(24, 20), mode="RGB", seed=0, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **options)
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_fuse_right_after_a_training_forward():
    model = freqnet.build_model("tiny", 2).train()
    loss = model(torch.rand(1, 3, 16, 16)).mean() + model.aux_loss()
    fused = freqnet.fuse(model)  # used to fail: the MoE's aux loss is a graph tensor, which deepcopy refuses
    loss.backward()  # the original's graph is untouched
    assert fused(torch.rand(1, 3, 16, 16)).shape == (1, 3, 32, 32)


def test_output_tree_mirrors_the_input_tree(tiny_x2, tmp_path, capsys):
    save(tmp_path / "nested" / "2023" / "img.bmp", seed=1)
    save(tmp_path / "nested" / "2024" / "img.png", seed=2)
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "nested"), "-o", str(out), "--model", tiny_x2]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["2023/img.png", "2024/img.png"]
    assert "2 upscaled, 0 skipped, 0 failed" in capsys.readouterr().out


def test_same_stem_inputs_keep_both_outputs(tiny_x2, tmp_path, capsys):
    a, b = save(tmp_path / "a.bmp", seed=1), save(tmp_path / "a.tif", seed=2)
    out = tmp_path / "out"
    assert main(["upscale", str(a), str(b), "-o", str(out), "--model", tiny_x2, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_bmp.png", "a_tif.png"]
    assert not np.array_equal(np.asarray(Image.open(out / "a_bmp.png")), np.asarray(Image.open(out / "a_tif.png")))


def test_an_interrupted_write_leaves_no_file_a_rerun_would_skip(tiny_x2, tmp_path, monkeypatch, capsys):
    source = save(tmp_path / "in.png")
    real = image_io.PngStream.write

    def png_dies_half_way(self, band):
        real(self, band)  # some rows are in the file when the kill comes
        raise KeyboardInterrupt

    def jpeg_dies_half_way(path, image, suffix):
        path.write_bytes(b"\xff\xd8 half a JPEG")
        raise KeyboardInterrupt

    for target in (tmp_path / "out.png", tmp_path / "out.jpg"):
        if target.suffix == ".png":
            monkeypatch.setattr(image_io.PngStream, "write", png_dies_half_way)
        else:
            monkeypatch.setattr(image_io, "encode_image", jpeg_dies_half_way)
        assert main(["upscale", str(source), "-o", str(target), "--model", tiny_x2]) == 130
        assert one_line_error(capsys) == "freqnet upscale: interrupted"
        assert sorted(tmp_path.iterdir()) == [source]
        monkeypatch.undo()
        assert main(["upscale", str(source), "-o", str(target), "--model", tiny_x2]) == 0
        assert Image.open(target).size == (48, 40)
        target.unlink()


def test_a_fresh_run_into_an_existing_run_folder_is_refused(tmp_path):
    from freqnet.training import Trainer, load_config

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "iter_00000500.json").write_text("{}")
    config = load_config(base={"iterations": 1, "model": {"preset": "tiny", "scale": 2},
                               "data": {"train": {"hr": "builtin:samples", "workers": 0}, "val": {"every": 0}}})
    with pytest.raises(ValueError, match="already holds a run .*--resume auto"):
        Trainer(config, tmp_path)
    assert not (tmp_path / "config.yaml").exists()


def test_unwritable_output_is_an_error_before_any_compute(tiny_x2, tmp_path, capsys, monkeypatch):
    source = save(tmp_path / "in.png")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    calls = []
    monkeypatch.setattr(freqnet.inference.Upscaler, "upscale_loaded", lambda *a, **k: calls.append(1))
    assert main(["upscale", str(source), "-o", str(tmp_path / "blocker" / "sub") + "/", "--model", tiny_x2]) == 2
    assert "is a file, not a folder" in one_line_error(capsys) and not calls


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu'"), ("meta", "not supported")])
def test_bad_device_is_one_line(tiny_x2, tmp_path, capsys, device, message):
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / "o.png"), "--model", tiny_x2,
                 "--device", device]) == 2
    assert message in one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only build")
def test_cuda_on_a_cpu_only_build_is_one_line(tiny_x2, tmp_path, capsys):
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / "o.png"), "--model", tiny_x2,
                 "--device", "cuda"]) == 2
    assert "no usable CUDA" in one_line_error(capsys)


def test_eval_and_train_input_errors_are_one_line(tiny_x2, tmp_path, capsys):
    assert main(["eval", "--model", tiny_x2, "--hr", str(tmp_path / "missing")]) == 2
    assert "does not exist" in one_line_error(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--model", tiny_x2, "--hr", str(tmp_path / "empty")]) == 2
    assert "no images in" in one_line_error(capsys)
    (tmp_path / "bad.yaml").write_text("model: {preset: tiny\nscale: [")
    assert main(["train", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "not valid YAML" in one_line_error(capsys)


def test_eval_refuses_an_unreadable_pair_instead_of_a_smaller_mean(tiny_x2, tmp_path, capsys):
    for i in range(2):
        save(tmp_path / "hr" / f"im{i}.png", size=(24, 24), seed=i)
        save(tmp_path / "lr" / f"im{i}.png", size=(12, 12), seed=i)
    (tmp_path / "lr" / "im1.png").write_bytes(b"not an image")
    assert main(["eval", "--model", tiny_x2, "--hr", str(tmp_path / "hr"), "--lr", str(tmp_path / "lr")]) == 2
    assert "pair 'im1': cannot read" in one_line_error(capsys)


def test_one_failing_file_does_not_stop_the_batch(tiny_x2, tmp_path, capsys, monkeypatch):
    for name in ("a", "b", "c"):
        save(tmp_path / "in" / f"{name}.png")
    real = image_io.read_image

    def decoder_crashes_on_b(path, *args):
        if path.name == "b.png":
            raise MemoryError("simulated decoder crash")  # not an UnreadableImage
        return real(path, *args)

    monkeypatch.setattr(image_io, "read_image", decoder_crashes_on_b)
    assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", tiny_x2]) == 1
    captured = capsys.readouterr()
    assert "2 upscaled, 0 skipped, 1 failed" in captured.out and "simulated decoder crash" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    big = tmp_path / "big.png"
    Image.new("1", (10000, 10000)).save(big)  # a small file that decodes to 100 megapixels
    with pytest.raises(image_io.UnreadableImage, match="100 megapixels, over the limit of 40"):
        read_image(big)
    header16 = tmp_path / "big16.png"  # a 16-bit colour PNG header claiming 12000x12000, and no pixel data
    header16.write_bytes(b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + (12000).to_bytes(4, "big")
                         + (12000).to_bytes(4, "big") + bytes([16, 2, 0, 0, 0]) + b"\0" * 4)
    with pytest.raises(image_io.UnreadableImage, match="144 megapixels"):
        read_image(header16)
    small = save(tmp_path / "small.png", size=(40, 30))
    with pytest.raises(image_io.UnreadableImage, match="over the limit"):
        read_image(small, max_pixels=1000)
    assert read_image(small, max_pixels=0).pixels.shape == (30, 40, 3)


def test_non_finite_output_is_an_error_naming_the_model(tmp_path, capsys):
    model = freqnet.build_model("tiny", 2)
    with torch.no_grad():
        model.reconstruct.apply(lambda m: m.weight.fill_(float("nan")) if hasattr(m, "weight") else None)
    path = tmp_path / "diverged.safetensors"
    freqnet.save_model(freqnet.fuse(model), path)
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / "o.png"), "--model", str(path)]) == 1
    assert "diverged.safetensors produced NaN" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_empty_folder_and_unmatched_glob_exit_non_zero(tiny_x2, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["upscale", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--model", tiny_x2]) == 2
    assert "no images in folder" in one_line_error(capsys)
    assert main(["upscale", str(tmp_path / "*.png"), "-o", str(tmp_path / "out"), "--model", tiny_x2]) == 2
    assert "no file matches" in one_line_error(capsys)


def test_cmyk_profile_is_not_carried_into_rgb_output(tiny_x2, tmp_path):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = save(tmp_path / "cmyk.jpg", mode="CMYK", icc_profile=profile)
    assert Image.open(source).mode == "CMYK" and Image.open(source).info.get("icc_profile")
    loaded = read_image(source)
    assert loaded.pixels.shape[2] == 3 and loaded.icc_profile is None
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.png"), "--model", tiny_x2]) == 0
    assert "icc_profile" not in Image.open(tmp_path / "out.png").info


@pytest.mark.parametrize("out, message", [("out.gif", ".gif is not a format we write"),
                                          ("out", "has no image extension")])
def test_output_name_must_say_file_or_folder(tiny_x2, tmp_path, capsys, out, message):
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / out), "--model", tiny_x2]) == 2
    assert message in one_line_error(capsys) and not (tmp_path / out).exists()


def test_trailing_slash_makes_a_folder(tiny_x2, tmp_path):
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / "out") + os.sep, "--model", tiny_x2]) == 0
    assert (tmp_path / "out" / "in.png").is_file()


@pytest.mark.parametrize("tile", ["-5", "17", "big"])
def test_bad_tile_is_refused_not_rounded(tiny_x2, tmp_path, capsys, tile):
    assert main(["upscale", str(save(tmp_path / "in.png")), "-o", str(tmp_path / "o.png"), "--model", tiny_x2,
                 "--tile", tile]) == 2
    assert "tile" in one_line_error(capsys)


@pytest.mark.parametrize("mode, bits", [("RGB", 8), ("RGBA", 8), ("L", 8), ("RGB", 16)])
def test_streamed_png_equals_the_whole_image_written_at_once(tiny_x2, tmp_path, mode, bits):
    from freqnet.data.image_io import LoadedImage, write_image
    from freqnet.inference import Upscaler

    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 3, "L": 1}[mode]
    image = LoadedImage(rng.random((100, 70, channels), dtype=np.float32),
                        rng.random((100, 70), dtype=np.float32) if mode == "RGBA" else None, bits, b"fake-icc")
    upscaler = Upscaler(tiny_x2, tile=32)  # overlapping 32-pixel tiles: the output comes in 6 bands
    assert len(list(upscaler.bands(image.pixels))) == 6
    upscaler.upscale_to_png(image, tmp_path / "streamed.png")
    write_image(tmp_path / "whole.png", upscaler.upscale_loaded(image))
    streamed, whole = read_image(tmp_path / "streamed.png"), read_image(tmp_path / "whole.png")
    assert streamed.bit_depth == bits and streamed.pixels.shape == (200, 140, channels)
    np.testing.assert_array_equal(streamed.pixels, whole.pixels)
    if mode == "RGBA":
        np.testing.assert_array_equal(streamed.alpha, whole.alpha)
    assert Image.open(tmp_path / "streamed.png").info["icc_profile"] == b"fake-icc"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
