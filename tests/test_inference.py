"""Upscaling: seam-free tiling, the Python API, and `freqnet upscale` / `freqnet eval` end to end."""

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

import freqnet
from freqnet.cli import main
from freqnet.data import LoadedImage, read_image, write_image
from freqnet.inference import Upscaler, self_ensemble, tiled_forward, upscale


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny x2 model with perturbed weights (an untrained one is plain bicubic and would hide seams)."""
    torch.manual_seed(0)
    model = freqnet.build_model("tiny", 2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    path = tmp_path_factory.mktemp("model") / "tiny_x2.safetensors"
    freqnet.save_model(freqnet.fuse(model), path)
    return path


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 6 + 2, w // 6 + 2, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def test_tiled_equals_untiled_three_tiles_wide(model_file):
    model = freqnet.load_model(model_file)
    x = torch.from_numpy(photo(70, 150).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = model(x)
        tiled = tiled_forward(model, x, tile=64, overlap=32)  # alignment 32: tiles at 0, 32, 64, 96 (>= 3 wide)
    largest = (tiled - whole).abs().max().item()
    psnr = 10 * math.log10(1 / (tiled - whole).square().mean().item())
    print(f"tiled vs untiled: {psnr:.1f} dB, largest pixel difference {largest:.5f}")
    assert psnr >= 50.0
    assert largest < 0.05


def test_self_ensemble_is_equivariant_and_exact_for_an_equivariant_map(model_file):
    x = torch.from_numpy(photo(18, 26).copy()).permute(2, 0, 1)[None].float() / 255
    bicubic = lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(self_ensemble(bicubic, x), bicubic(x), atol=1e-6)  # bicubic commutes with flips and turns
    model = freqnet.load_model(model_file).eval()
    with torch.no_grad():
        plain, mean = model(x), self_ensemble(model, x)
        turned = self_ensemble(model, torch.rot90(x, 1, (2, 3)))
    assert (plain - mean).abs().max() > 1e-3, "the perturbed model is not equivariant: the mean must differ"
    assert torch.allclose(turned, torch.rot90(mean, 1, (2, 3)), atol=1e-5), "each output must be turned back"
    tiled = Upscaler(str(model_file), tile=32, ensemble=True).run(photo(40, 70).astype(np.float32) / 255)
    assert tiled.shape == (80, 140, 3)


def test_api_keeps_types_alpha_and_grey(model_file):
    rgba = np.dstack([photo(20, 18), np.full((20, 18), 200, np.uint8)])
    out = upscale(rgba, model=str(model_file), tile=None)
    assert out.dtype == np.uint8 and out.shape == (40, 36, 4)
    alone = upscale(rgba[..., 3], model=str(model_file), tile=None)
    assert np.array_equal(out[..., 3], alone), "alpha is upscaled on its own (as a grey image) and re-attached"
    grey = photo(16, 16)[..., 0]
    assert upscale(grey, model=str(model_file)).shape == (32, 32)
    as_float = upscale(grey.astype(np.float32) / 255, model=str(model_file))
    assert as_float.dtype == np.float32 and as_float.max() <= 1.0
    pil = upscale(Image.fromarray(photo(12, 10)), model=str(model_file))
    assert isinstance(pil, Image.Image) and pil.size == (20, 24)
    sixteen = upscale((photo(8, 8).astype(np.uint16) * 257), model=str(model_file))
    assert sixteen.dtype == np.uint16 and sixteen.shape == (16, 16, 3)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_casts_the_weights_once_and_leaves_the_callers_model_alone(model_file, precision):
    """Autocast alone re-casts every fp32 weight in every forward (kernel launches that a GPU's small-model forward
    is bound by); the Upscaler runs a cast copy instead: far fewer casts, the caller's module still fp32."""
    from torch.profiler import ProfilerActivity, profile

    def casts(forward):
        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
            forward()
        return sum(event.name == "aten::_to_copy" for event in prof.events())

    model = freqnet.load_model(model_file)
    pixels = photo(48, 64).astype(np.float32) / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    upscaler = Upscaler(model, tile=None, precision=precision)
    dtype = upscaler.dtype
    with torch.autocast("cpu", dtype=dtype):
        autocast_casts = casts(lambda: model(x))
    assert casts(lambda: upscaler.infer(x)) * 3 < autocast_casts
    assert all(p.dtype == torch.float32 for p in model.parameters())
    reference = Upscaler(model, tile=None).run(pixels)
    error = upscaler.run(pixels) - reference
    assert 10 * math.log10(1 / float(np.mean(error ** 2))) > 40


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_keeps_the_image_itself_in_fp32(precision):
    """An untrained model's output is its bicubic path alone: at reduced precision that path and the final sum stay
    fp32, so the output still matches fp32 to float rounding (a bf16 sum would be off by up to 2e-3, a grey level's
    half step: Set5 x4 lost 0.012 dB instead of 0.005)."""
    model = freqnet.build_model("tiny", 4).eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        reference = model(x)
        reduced = Upscaler(model, tile=None, precision=precision).infer(x)
    assert reduced.dtype == torch.float32
    torch.testing.assert_close(reduced, reference, rtol=0, atol=1e-6)


def test_auto_precision_is_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    from freqnet.precision import resolve_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for capabilities, expected in [({"avx512_bf16": True}, "bf16"), ({"amx_bf16": True}, "bf16"),
                                   ({"avx512_bf16": False, "avx2": True}, "fp32"), ({}, "fp32")]:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
        assert resolve_precision("auto", cpu) == expected
        assert resolve_precision("auto", cuda) == "fp32"  # launch-bound on GPUs: bf16 measured slower there
        assert resolve_precision("fp16", cpu) == "fp16"
    with pytest.raises(ValueError, match="precision 'int8': allowed auto, fp32, bf16, fp16"):
        resolve_precision("int8", cpu)


def test_unknown_model_name_is_explained():
    with pytest.raises(ValueError, match="no model 'x7'"):
        Upscaler("x7")


def test_upscale_command_end_to_end(model_file, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(photo(21, 17)).save(inputs / "rgb.jpg")
    Image.fromarray(photo(10, 12)[..., 0]).save(inputs / "grey.png")
    Image.fromarray(np.dstack([photo(9, 9), np.arange(81, dtype=np.uint8).reshape(9, 9)])).save(inputs / "rgba.png")
    write_image(inputs / "deep.png", LoadedImage(photo(8, 6).astype(np.float32) / 255, bit_depth=16))
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (inputs / "empty.webp").write_bytes(b"")
    out = tmp_path / "out"
    code = main(["upscale", str(inputs), "-o", str(out), "--model", str(model_file), "--suffix", "_x2"])
    captured = capsys.readouterr()
    assert code == 1, "failures make the exit code non-zero"
    assert "4 upscaled, 0 skipped, 2 failed" in captured.out
    assert "broken.png" in captured.err and "empty.webp" in captured.err
    assert read_image(out / "rgb_x2.png").pixels.shape == (42, 34, 3)
    grey = read_image(out / "grey_x2.png")
    assert grey.grey and grey.pixels.shape == (20, 24, 1)
    rgba = read_image(out / "rgba_x2.png")
    assert rgba.alpha is not None and rgba.alpha.shape == (18, 18)
    assert read_image(out / "deep_x2.png").bit_depth == 16
    # second run: outputs exist -> skipped, exit 0 once the bad files are gone
    (inputs / "broken.png").unlink(), (inputs / "empty.webp").unlink()
    assert main(["upscale", str(inputs), "-o", str(out), "--model", str(model_file), "--suffix", "_x2"]) == 0
    assert "0 upscaled, 4 skipped, 0 failed" in capsys.readouterr().out


def test_single_file_output_and_no_overwrite_of_inputs(model_file, tmp_path, capsys):
    source = tmp_path / "a.png"
    Image.fromarray(photo(12, 12)).save(source)
    assert main(["upscale", str(source), "-o", str(tmp_path / "b.jpg"), "--model", str(model_file)]) == 0
    assert Image.open(tmp_path / "b.jpg").size == (24, 24)
    before = source.read_bytes()
    assert main(["upscale", str(source), "-o", str(source), "--model", str(model_file), "--overwrite"]) == 1
    assert "would overwrite an input" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert main(["upscale", str(tmp_path / "missing.png"), "-o", str(tmp_path), "--model", str(model_file)]) == 2


def test_eval_command_tables_and_csv(model_file, tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(2):
        Image.fromarray(photo(40, 36, seed=i)).save(hr / f"img{i}.png")
    csv_path = tmp_path / "scores.csv"
    assert main(["eval", "--model", str(model_file), "--hr", str(hr), "--recipe", "denoise", "--csv", str(csv_path),
                 "--markdown", str(tmp_path / "scores.md")]) == 0
    out = capsys.readouterr().out
    assert f"{model_file.stem} psnr" in out and "bicubic psnr" in out and "lanczos psnr" in out
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["img0.png", "img1.png"]
    assert rows[0]["label"].startswith("denoise/sigma")
    assert float(rows[0][f"{model_file.stem}_psnr"]) > 10
    assert main(["eval", "--model", str(model_file), "--hr", str(hr), "--recipe", "bicubic", "--ensemble"]) == 0
    assert f"{model_file.stem}+ psnr" in capsys.readouterr().out  # the papers' name for a self-ensemble row


def test_exif_orientation_and_icc_profile_are_respected(model_file, tmp_path):
    from PIL import ImageCms

    image = Image.fromarray(photo(10, 16))  # 16 wide, 10 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "rotated.jpg"
    image.save(source, exif=exif, icc_profile=icc)
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.png"), "--model", str(model_file)]) == 0
    out = Image.open(tmp_path / "out.png")
    assert out.size == (20, 32), "displayed orientation (10 wide, 16 high) doubled"
    assert out.info.get("icc_profile") == icc
