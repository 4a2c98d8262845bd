"""`freqnet eval --benchmark`: the standard-set layout, official LR vs made LR, HR cropping, ONNX models, and the
literature's numbers reproduced on ../shared/benchmarks (skipped where a clone has no ../shared)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from freqnet import metrics
from freqnet.cli import main
from freqnet.data import LoadedImage, imresize, write_image
from freqnet.evaluation import evaluate, means, standard_datasets

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCHMARKS, ANCHORS = SHARED / "benchmarks", SHARED / "anchors"
needs_shared = pytest.mark.skipif(not (BENCHMARKS / "Set5" / "HR").is_dir() or not (ANCHORS / "IMDN_x4.onnx").is_file(),
                                  reason=f"{SHARED} (standard sets and anchor ONNX files) is not beside this clone")


def csv_means(path: Path) -> dict[str, float]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key[: -len("_psnr")]: float(np.mean([float(r[key]) for r in rows])) for key in rows[0] if key.endswith("_psnr")}


@needs_shared
def test_bicubic_and_imdn_reproduce_the_literature_on_set5(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "set5.csv"
    assert main(["eval", "--benchmark", str(BENCHMARKS), "--sets", "Set5", "--scale", "4",
                 "--model", str(ANCHORS / "IMDN_x4.onnx"), "--csv", str(out), "--markdown", str(tmp_path / "t.md")]) == 0
    scores = csv_means(out)
    assert scores["bicubic"] == pytest.approx(28.43, abs=0.01)
    assert scores["IMDN_x4"] == pytest.approx(32.21, abs=0.01)
    table = (tmp_path / "t.md").read_text()
    assert "| IMDN_x4 | 32.21 / 0.8948 |" in table and "Set5 official LR" in table


def toy_benchmark(root: Path, rng: np.random.Generator, official_lr: bool = True) -> dict[str, np.ndarray]:
    """Toy/HR with sizes that are not multiples of 4 (extra rows and columns are noise), and Toy/LR_bicubic/X4
    made from the cropped HR with a *different* resampler than ours, so a test can tell which LR was used."""
    kept = {}
    (root / "Toy" / "HR").mkdir(parents=True)
    if official_lr:
        (root / "Toy" / "LR_bicubic" / "X4").mkdir(parents=True)
    for index, (h, w) in enumerate([(50, 46), (41, 67)]):
        hr = rng.random((h, w, 3), dtype=np.float32)
        hr[: h - h % 4, : w - w % 4] = np.clip(imresize(rng.random((h // 8 + 1, w // 8 + 1, 3), dtype=np.float32), 8.0),
                                               0, 1)[: h - h % 4, : w - w % 4]
        write_image(root / "Toy" / "HR" / f"im{index}.png", LoadedImage(hr))
        kept[f"im{index}"] = hr
        if official_lr:
            lr = hr[: h - h % 4: 4, : w - w % 4: 4]  # nearest-neighbour: not what our bicubic makes
            write_image(root / "Toy" / "LR_bicubic" / "X4" / f"im{index}x4.png", LoadedImage(lr))
    return kept


def test_official_lr_is_used_and_hr_is_cropped_not_resized(tmp_path):
    hrs = toy_benchmark(tmp_path, np.random.default_rng(0))
    datasets = standard_datasets(tmp_path, ["Toy"], 4)
    assert datasets[0].note == "official LR"
    rows = evaluate({}, datasets, 4, baselines=("bicubic",))
    for row in rows:
        hr = metrics.quantise(hrs[Path(row.image).stem])
        h, w = hr.shape[0] // 4 * 4, hr.shape[1] // 4 * 4
        lr = hr[:h:4, :w:4].astype(np.float32) / 255
        expected = metrics.psnr(np.clip(imresize(lr, 4.0), 0, 1), hr[:h, :w].astype(np.float32) / 255, 4, True)
        assert row.scores["bicubic"]["psnr"] == pytest.approx(expected, abs=1e-6)


def test_without_official_lr_it_is_made_with_matlab_bicubic_and_said(tmp_path):
    toy_benchmark(tmp_path, np.random.default_rng(1), official_lr=False)
    datasets = standard_datasets(tmp_path, ["Toy"], 4)
    assert datasets[0].lr is None and "made with MATLAB-exact bicubic" in datasets[0].note
    made = means(evaluate({}, datasets, 4, baselines=("bicubic",)), lambda r: ())[()]["bicubic"]["psnr"]
    toy_benchmark(tmp_path / "official", np.random.default_rng(1))
    official = means(evaluate({}, standard_datasets(tmp_path / "official", ["Toy"], 4), 4, baselines=("bicubic",)),
                     lambda r: ())[()]["bicubic"]["psnr"]
    assert made > official + 1.0  # antialiased bicubic LR is far easier to invert than decimated LR


def test_missing_pair_and_missing_hr_name_the_folder(tmp_path, capsys):
    toy_benchmark(tmp_path, np.random.default_rng(2))
    (tmp_path / "Toy" / "LR_bicubic" / "X4" / "im1x4.png").unlink()
    args = ["eval", "--benchmark", str(tmp_path), "--sets", "Toy", "--model", "x4"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "im1" in error and str(tmp_path / "Toy" / "LR_bicubic" / "X4") in error

    (tmp_path / "Empty").mkdir()
    assert main(["eval", "--benchmark", str(tmp_path), "--sets", "Empty", "--model", "x4"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{tmp_path / 'Empty'}: no HR folder" in error


def test_onnx_model_scores_as_its_pytorch_original(tmp_path):
    pytest.importorskip("onnxruntime")
    from freqnet import build_model
    from freqnet.export import export_onnx
    from freqnet.inference import Upscaler
    from freqnet.onnx_model import OnnxModel

    toy_benchmark(tmp_path, np.random.default_rng(3))
    model = build_model("tiny", scale=4).eval()
    export_onnx(model, tmp_path / "tiny.onnx", dynamic=True)
    onnx = OnnxModel(tmp_path / "tiny.onnx")
    assert onnx.scale == 4 and onnx.parameters() > 100_000
    rows = evaluate({"torch": Upscaler(model, tile=None), "onnx": onnx}, standard_datasets(tmp_path, ["Toy"], 4), 4,
                    baselines=())
    for row in rows:
        assert row.scores["onnx"]["psnr"] == pytest.approx(row.scores["torch"]["psnr"], abs=0.01)


def test_the_table_says_which_channel_and_crop_it_scored(tmp_path, capsys):
    """`--rgb` and `--crop-border` change the numbers and the line under the table says so."""
    toy_benchmark(tmp_path, np.random.default_rng(2))
    tables = {}
    for name, flags in {"y": [], "rgb": ["--rgb", "--crop-border", "2"]}.items():
        assert main(["eval", "--benchmark", str(tmp_path), "--sets", "Toy", "--scale", "4", "--markdown",
                     str(tmp_path / f"{name}.md"), *flags]) == 0
        tables[name] = (tmp_path / f"{name}.md").read_text()
    assert "PSNR / SSIM on Y, crop = scale. LR: Toy official LR." in tables["y"]
    assert "PSNR / SSIM on RGB, crop = 2. LR: Toy official LR." in tables["rgb"]
    assert tables["y"].splitlines()[2] != tables["rgb"].splitlines()[2]  # the bicubic row's scores differ
