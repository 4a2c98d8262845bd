"""Recipes, datasets, validation sets, sub-images and the `degrade` command on images the tests make."""

import itertools
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from freqnet.cli import main
from freqnet.data import (
    Degrader, HRFolderDataset, LoadedImage, PairedFolderDataset, build_validation_set, extract_subimages,
    modcrop, read_image, write_image)
from freqnet.data.datasets import lost_detail


def photo(h=96, w=80, seed=0):
    """A smooth random 'photo' (low-pass noise): texture for degradations to act on."""
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 2, w // 8 + 2, 3))
    return np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32) / 255


def save(path, array):
    Image.fromarray((array * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("recipe", ["bicubic", "realesrgan", "denoise", "deblur", "mixed"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_recipes_give_the_right_size_and_are_deterministic(recipe, scale):
    hr = modcrop(photo(61, 47), scale)  # odd sizes, cropped to a multiple of the scale
    degrader = Degrader(recipe, scale)
    attributes = set(vars(degrader))
    lr1, info1 = degrader(hr, np.random.default_rng(7))
    assert set(vars(degrader)) == attributes  # no per-image state on a degrader that loaders share
    lr2, info2 = degrader(hr, np.random.default_rng(7))
    assert lr1.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
    assert np.array_equal(lr1, lr2) and info1 == info2
    assert lr1.min() >= 0 and lr1.max() <= 1
    json.dumps(info1)  # every record is plain data
    assert info1["label"].split("/")[0] in (recipe, "bicubic", "realesrgan", "denoise", "deblur")


def test_denoise_label_names_sigma_and_records_parameters():
    _, info = Degrader("denoise", 1)(photo(), np.random.default_rng(3))
    noise = [s for s in info["steps"] if s["type"] == "noise"][0]
    assert info["label"] == f"denoise/sigma{noise['sigma']:g}" and noise["sigma"] in (15, 25, 50)


@pytest.mark.parametrize("recipe, kind, value", [("denoise_sigma15", "noise", 15), ("denoise_sigma50", "noise", 50),
                                                  ("deblur_iso", "blur", "iso"), ("deblur_aniso", "blur", "aniso"),
                                                  ("deblur_motion", "blur", "motion")])
def test_fixed_level_recipes_draw_only_their_level(recipe, kind, value):
    hr = 0.45 + 0.1 * photo(64, 64)  # mid-grey, so sigma 50 noise is seldom clipped
    for seed in range(6):  # the mixed recipes would draw another level within six seeds
        lr, info = Degrader(recipe, 1)(hr, np.random.default_rng(seed))
        step = [s for s in info["steps"] if s["type"] == kind][0]
        assert step["sigma" if kind == "noise" else "kernel"] == value
        assert info["label"] == recipe
    if kind == "noise":  # the noise on the last draw has the stated level
        assert abs(float(np.std(lr - hr)) * 255 - value) < 0.05 * value


def test_recipe_from_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: light\nsteps:\n  - {type: blur, kernel_size: 7, sigma: [1.0, 1.0]}\n"
                    "  - {type: to_scale, mode: matlab_bicubic}\n  - {type: jpeg, quality: 90}\n")
    lr, info = Degrader(str(path), 2)(photo(), np.random.default_rng(0))
    assert info["recipe"] == "light" and [s["type"] for s in info["steps"]] == ["blur", "to_scale", "jpeg"]
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        Degrader("nope", 2)


def test_mixture_recipe_from_yaml_file(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("name: mostly_clean\nmixture: {bicubic: 0.75, real_jpeg: 0.25}\n")
    degrader, image, rng = Degrader(str(path), 2), photo(32, 32), np.random.default_rng(0)
    labels = [degrader(image, rng)[1]["label"] for _ in range(400)]
    assert set(labels) == {"bicubic", "real_jpeg"} and 270 <= labels.count("bicubic") <= 330  # 300 expected, sd 8.7
    path.write_text("name: nested\nmixture: {bicubic: 0.5, real: 0.5}\n")
    with pytest.raises(ValueError, match="mixture entry 'real' must name a step recipe"):
        Degrader(str(path), 2)


def test_hr_dataset_determinism_sizes_and_epochs(tmp_path):
    for i in range(3):
        save(tmp_path / f"img{i}.png", photo(70 + i, 90, seed=i))
    data = HRFolderDataset(tmp_path, scale=3, patch_size=48, recipe="realesrgan", seed=5)
    a, b = data[1], data[1]
    assert a["lr"].shape == (3, 16, 16) and a["hr"].shape == (3, 48, 48)
    assert np.array_equal(a["lr"], b["lr"]) and np.array_equal(a["hr"], b["hr"])
    data.set_epoch(1)
    assert not np.array_equal(a["hr"], data[1]["hr"]), "a new epoch draws new crops"


def test_lost_detail_measures_what_the_downscale_removes():
    rng = np.random.default_rng(0)
    blocky = np.repeat(np.repeat(rng.random((8, 8, 3)), 4, axis=0), 4, axis=1)  # constant over every 4x4 block
    assert lost_detail(np.full((32, 32, 3), 0.5), 4) == 0.0
    assert lost_detail(blocky, 4) < 1e-12  # the block average keeps all of it
    checker = np.repeat((np.indices((32, 32)).sum(axis=0) % 2)[..., None], 3, axis=2)  # all energy at the Nyquist frequency
    assert lost_detail(checker, 4) == pytest.approx(0.25)
    assert lost_detail(checker, 2) == pytest.approx(0.25)


def test_detail_candidates_spend_samples_on_detailed_crops(tmp_path):
    rng = np.random.default_rng(1)
    save(tmp_path / "a_flat.png", np.full((64, 64, 3), 0.4) + 0.002 * rng.random((64, 64, 3)))
    save(tmp_path / "b_detailed.png", rng.random((64, 64, 3)))
    plain = HRFolderDataset(tmp_path, 2, 32, augment=False, repeat=100)
    picky = HRFolderDataset(tmp_path, 2, 32, augment=False, repeat=100, detail_candidates=4)
    assert [plain[i]["name"] for i in range(200)].count("b_detailed.png") == 100  # one sample per file per pass
    names = [picky[i]["name"] for i in range(200)]
    # a flat sample survives only if all three extra draws are the flat image too: (1/2)^3 of 100, about 12
    assert 180 <= names.count("b_detailed.png") < 198
    assert np.array_equal(picky[7]["hr"], picky[7]["hr"]) and picky[7]["name"] == names[7]
    with pytest.raises(ValueError, match="detail_candidates must be at least 1"):
        HRFolderDataset(tmp_path, 2, 32, detail_candidates=0)
    with pytest.raises(ValueError, match="1 at scale 1"):
        HRFolderDataset(tmp_path, 1, 32, detail_candidates=2)


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    save(tmp_path / "good.png", photo())
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("this is not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = HRFolderDataset(tmp_path, 2, 32)
    messages = " ".join(str(w.message) for w in caught)
    assert "empty.png" in messages and "notes.jpg" in messages
    assert [p.name for p in data.files] == ["good.png"]


def test_truncated_file_is_replaced_at_load_time(tmp_path):
    save(tmp_path / "a.png", photo(seed=1))
    good = tmp_path / "b.png"
    save(good, photo(seed=2))
    data = HRFolderDataset(tmp_path, 2, 32, cache=False)
    good.write_bytes(good.read_bytes()[:200])  # header intact, pixel data cut
    with pytest.warns(UserWarning, match="b.png"):
        sample = data[1]
    assert sample["name"] == "a.png"


def test_small_images_padded_or_skipped(tmp_path):
    save(tmp_path / "tiny.png", photo(20, 24))
    save(tmp_path / "big.png", photo(64, 64))
    with pytest.warns(UserWarning, match="tiny.png: 24x20 is smaller than the 32 patch; reflect-padded"):
        padded = HRFolderDataset(tmp_path, 2, 32)
    assert len(padded) == 2 and all(padded[i]["hr"].shape == (3, 32, 32) for i in range(2))
    with pytest.warns(UserWarning, match="skipping .*tiny.png"):
        skipped = HRFolderDataset(tmp_path, 2, 32, small="skip")
    assert len(skipped) == 1


def test_paired_dataset_matches_names_and_crops_aligned(tmp_path):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    hr = photo(64, 48)
    save(tmp_path / "hr" / "0001.png", hr)
    hr = np.round(hr * 255) / 255
    blocks = hr.reshape(16, 4, 12, 4, 3).mean(axis=(1, 3))  # 4x4 box average commutes with flips and rotations
    save(tmp_path / "lr" / "0001x4.png", blocks)
    for color_permute in (False, True):  # a channel order, like a flip, must be the same for LR and HR
        data = PairedFolderDataset(tmp_path / "lr", tmp_path / "hr", 4, patch_size=16, augment=True,
                                   color_permute=color_permute)
        for epoch in range(4):
            data.set_epoch(epoch)
            sample = data[0]
            assert sample["lr"].shape == (3, 4, 4) and sample["hr"].shape == (3, 16, 16)
            pooled = sample["hr"].reshape(3, 4, 4, 4, 4).mean(dim=(2, 4))
            np.testing.assert_allclose(pooled, sample["lr"], atol=0.6 / 255)


def test_color_permute_reorders_the_channels_of_the_same_crop(tmp_path):
    save(tmp_path / "a.png", photo(64, 64))
    plain = HRFolderDataset(tmp_path, 2, 32, repeat=60)
    permuted = HRFolderDataset(tmp_path, 2, 32, repeat=60, color_permute=True)
    orders = []
    for index in range(60):
        a, b = plain[index], permuted[index]
        matches = [order for order in itertools.permutations(range(3))
                   if torch.equal(a["hr"][list(order)], b["hr"]) and torch.equal(a["lr"][list(order)], b["lr"])]
        assert len(matches) == 1  # the same crop and flip, its channels in one order, LR and HR alike
        orders.append(matches[0])
    assert len(set(orders)) == 6  # every order turns up in 60 draws (a miss has probability < 1e-3)


def test_paired_dataset_mismatch_names_files_and_expected_sizes(tmp_path):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    save(tmp_path / "hr" / "a.png", photo(64, 48))
    save(tmp_path / "lr" / "a.png", photo(20, 12))
    with pytest.raises(ValueError, match=r"a.png is 12x20, so a.png should be 48x80 at x4 but is 48x64"):
        PairedFolderDataset(tmp_path / "lr", tmp_path / "hr", 4)
    save(tmp_path / "hr" / "b.png", photo(64, 48))
    with pytest.raises(ValueError, match=r"no partner for \['b'\]"):
        PairedFolderDataset(tmp_path / "lr", tmp_path / "hr", 4)


def test_missing_validation_folders_fail_at_start_up(tmp_path):
    """A validation folder that is not there (a lease that lost it) lists no images; the trainer must stop at
    start-up, not crash at its first validation hundreds of iterations later."""
    with pytest.raises(ValueError, match=r"no images under LR .*missing/lr / HR .*missing/hr"):
        PairedFolderDataset(tmp_path / "missing" / "lr", tmp_path / "missing" / "hr", 4)
    with pytest.raises(ValueError, match=r"no usable images under .*missing"):
        build_validation_set(tmp_path / "missing", tmp_path / "val", "bicubic", 4)


def test_validation_set_is_built_once_and_reused(tmp_path):
    (tmp_path / "src").mkdir()
    for i in range(2):
        save(tmp_path / "src" / f"p{i}.png", photo(50, 38, seed=i))
    first = build_validation_set(tmp_path / "src", tmp_path / "val", "denoise", 2, seed=1)
    stamp = (tmp_path / "val" / "lr" / "p0.png").stat().st_mtime_ns
    second = build_validation_set(tmp_path / "src", tmp_path / "val", "denoise", 2, seed=1)
    assert (tmp_path / "val" / "lr" / "p0.png").stat().st_mtime_ns == stamp, "reused, not rebuilt"
    assert np.array_equal(first[0]["lr"], second[0]["lr"])
    assert first[0]["hr"].shape == (3, 50, 38) and first[0]["label"].startswith("denoise/sigma")


def test_extract_subimages_covers_the_image(tmp_path):
    (tmp_path / "src").mkdir()
    save(tmp_path / "src" / "big.png", photo(100, 130))
    written = extract_subimages(tmp_path / "src", tmp_path / "subs", crop_size=48, step=40, min_remainder=8)
    # rows: 0, 40 (+52 since 100-88=12 > 8); cols: 0, 40, 80 (+82 since 130-128=2 <= 8 -> no)
    assert len(written) == 3 * 3
    assert read_image(written[0]).pixels.shape == (48, 48, 3)


def test_image_io_keeps_bit_depth_alpha_and_grey(tmp_path):
    rng = np.random.default_rng(0)
    rgb16 = LoadedImage((rng.integers(0, 65536, (5, 7, 3)) / 65535).astype(np.float32), bit_depth=16)
    write_image(tmp_path / "c16.png", rgb16)
    back = read_image(tmp_path / "c16.png")
    assert back.bit_depth == 16 and np.abs(back.pixels - rgb16.pixels).max() < 1e-6
    grey16 = LoadedImage(rgb16.pixels[..., :1], bit_depth=16)
    write_image(tmp_path / "g16.png", grey16)
    back = read_image(tmp_path / "g16.png")
    assert back.grey and back.bit_depth == 16 and np.abs(back.pixels - grey16.pixels).max() < 1e-6
    rgba = LoadedImage(rgb16.pixels, alpha=rgb16.pixels[..., 0])
    write_image(tmp_path / "a.png", rgba)
    back = read_image(tmp_path / "a.png")
    assert back.alpha is not None and np.abs(back.alpha - rgba.alpha).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp", ".tif"])
def test_image_io_reads_common_formats(tmp_path, suffix):
    image = LoadedImage(photo(16, 20))
    write_image(tmp_path / f"x{suffix}", image)
    back = read_image(tmp_path / f"x{suffix}").pixels
    assert back.shape == (16, 20, 3)
    if suffix != ".jpg":  # every format but JPEG is written losslessly
        assert np.abs(back - image.pixels).max() <= 0.5 / 255 + 1e-6


def test_degrade_command_writes_images_params_and_sheet(tmp_path, capsys):
    source = save(tmp_path / "in.png", photo(64, 48))
    assert main(["degrade", str(source), "--recipe", "realesrgan", "--scale", "4", "--seed", "3", "--n", "2",
                 "-o", str(tmp_path / "out"), "--sheet", str(tmp_path / "sheet.png")]) == 0
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert len(params["samples"]) == 2 and params["seed"] == 3
    first = next(iter(params["samples"]))
    assert read_image(tmp_path / "out" / first).pixels.shape == (16, 12, 3)
    assert read_image(tmp_path / "sheet.png").pixels.shape == (64, 48 * 3 + 8, 3)
