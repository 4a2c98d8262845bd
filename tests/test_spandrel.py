"""freqnet files through spandrel (what chaiNNer and ComfyUI load models with): detection, descriptor fields,
outputs equal to freqnet's own loader, foreign files left alone. Skipped without spandrel
(`pip install --no-deps spandrel==0.4.2 einops`)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import freqnet
from freqnet.integrations import import_spandrel
from freqnet.models import shipped_models

if importlib.util.find_spec("spandrel") is None:
    pytest.skip("spandrel not installed (pip install --no-deps spandrel==0.4.2 einops)", allow_module_level=True)

import freqnet.integrations.spandrel as bridge  # noqa: E402  (imports spandrel, torchvision or not)

spandrel = import_spandrel()

SHIPPED = {name: path for name, path in shipped_models().items() if name != "default"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_loads_through_spandrel_and_computes_the_same(name):
    descriptor = spandrel.ModelLoader().load_from_file(SHIPPED[name])
    ours = freqnet.load_model(name)
    scale = ours.config.scale
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert descriptor.architecture.id == "freqnet"
    assert descriptor.scale == scale
    assert descriptor.input_channels == descriptor.output_channels == 3
    assert descriptor.purpose == ("SR" if scale > 1 else "Restoration")
    assert descriptor.supports_half and descriptor.supports_bfloat16
    assert descriptor.tiling == spandrel.ModelTiling.SUPPORTED
    assert descriptor.size_requirements.check(13, 17)  # any size
    x = torch.rand(1, 3, 23, 29)
    with torch.no_grad():
        theirs = descriptor(x)
        expected = ours(x).clamp(0, 1)  # spandrel clamps its outputs to the image range
    assert theirs.shape == (1, 3, 23 * scale, 29 * scale)
    torch.testing.assert_close(theirs, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_through_the_descriptor_stays_close(dtype):
    descriptor = spandrel.ModelLoader().load_from_file(SHIPPED["x4"])
    x = torch.rand(1, 3, 24, 24)
    reference = descriptor(x)
    low = descriptor.to(dtype)(x.to(dtype)).float()
    assert (low - reference).abs().mean() < 0.01


def test_foreign_state_dicts_are_never_claimed():
    from spandrel.architectures.SPAN import SPAN

    span = spandrel.ModelLoader().load_from_state_dict(SPAN(num_in_ch=3, num_out_ch=3, upscale=4).state_dict())
    assert span.architecture.id == "SPAN"
    assert not bridge.is_freqnet({"freqnet_description": torch.tensor(list(b'{"architecture": "other"}'),
                                                                      dtype=torch.uint8)})
    assert not bridge.is_freqnet({"freqnet_description": torch.zeros(4)})
    stripped = {k: v for k, v in freqnet.build_model("tiny", 2).state_dict().items()}  # no description tensor
    assert not bridge.is_freqnet(stripped)


def test_registration_is_idempotent_and_the_comfyui_node_folder_registers():
    bridge.register()
    assert sum(s.architecture.id == "freqnet" for s in spandrel.MAIN_REGISTRY.architectures()) == 1
    folder = Path(__file__).resolve().parent.parent / "integrations" / "comfyui" / "freqnet_models" / "__init__.py"
    spec = importlib.util.spec_from_file_location("freqnet_models_node", folder)
    node = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(node)
    assert node.NODE_CLASS_MAPPINGS == {} and "freqnet" in spandrel.MAIN_REGISTRY


def test_spandrel_imports_without_torchvision_and_leaves_no_stand_in_behind():
    """A CPU set-up installs spandrel `--no-deps` (torchvision's wheel pulls a CUDA torch in): importing the bridge
    must work there, and other code must still see torchvision as absent."""
    assert "freqnet" in spandrel.MAIN_REGISTRY
    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" not in sys.modules
        lama = sys.modules["spandrel.architectures.LaMa.__arch.LaMa"]
        with pytest.raises(NotImplementedError, match="torchvision"):
            lama.rotate(None, 90)
