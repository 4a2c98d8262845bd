import subprocess
import sys

from freqnet.cli import main


def test_info_reports_parameters_and_macs(capsys):
    assert main(["info", "--preset", "tiny", "--scale", "2", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "parameters:" in out and "(fused)" in out
    assert "per output pixel" in out
    assert "SelectiveMoEFFN" in out


def test_info_of_a_shipped_model_shows_its_card_and_training_history(capsys):
    assert main(["info", "x4"]) == 0
    out = capsys.readouterr().out
    assert "scale: 4" in out and "trainingIterations:" in out
    assert "trainingHistory:" in out and "H200" in out  # its earlier stages, not only the last one


def test_info_override_error_is_reported(capsys):
    assert main(["info", "--preset", "tiny", "--set", "splitter=wavelet"]) == 2
    assert "ModelConfig.splitter='wavelet'" in capsys.readouterr().err


def test_python_dash_m_is_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "freqnet", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("freqnet ")
