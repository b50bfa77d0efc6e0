"""VGG19 feature loss with a randomly initialised VGG19 state dict saved by the test (nothing downloaded)."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from mrisr.errors import ConfigError, InputError
from mrisr.losses import VGG19_WEIGHTS_ENV, VGG19FeatureLoss, vgg19_features
from mrisr.losses.perceptual import vgg19_layer_names

# torchvision's vgg19().features: conv layers at these indices, ReLU after each, max pools at 4, 9, 18, 27, 36
TORCHVISION_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    feats = vgg19_features()
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full torchvision checkpoint are ignored
    d = tmp_path_factory.mktemp("vgg")
    torch.save(state, d / "vgg19.pth")
    save_file(state, str(d / "vgg19.safetensors"))
    return d


def test_layout_is_torchvisions():
    feats = vgg19_features()
    expected = {f"{i}.{p}" for i in TORCHVISION_CONVS for p in ("weight", "bias")}
    assert set(feats.state_dict()) == expected
    assert len(feats) == 37
    assert all(isinstance(feats[i], torch.nn.MaxPool2d) for i in (4, 9, 18, 27, 36))
    names = vgg19_layer_names()
    assert names[34] == "conv5_4" and names[35] == "relu5_4" and names[8] == "relu2_2"


@pytest.mark.parametrize("fname", ["vgg19.pth", "vgg19.safetensors"])
def test_loss_from_local_file(weights, fname):
    loss = VGG19FeatureLoss(weights / fname, layers=("relu2_2", "conv5_4"), layer_weights=(0.5, 1.0))
    t = torch.rand(2, 1, 32, 32)
    p = t.clone().requires_grad_(True)
    assert loss(p, t).item() == pytest.approx(0.0, abs=1e-7)
    p2 = (t + 0.1 * torch.randn_like(t)).requires_grad_(True)
    value = loss(p2, t)
    assert value.item() > 0
    value.backward()
    assert p2.grad is not None and p2.grad.abs().sum() > 0
    assert not any(q.requires_grad for q in loss.parameters())
    # weights really came from the file
    ref = torch.load(weights / "vgg19.pth", weights_only=True)
    assert torch.equal(loss.features[0].weight, ref["features.0.weight"])


def test_one_channel_is_repeated_and_3d_is_slicewise(weights):
    loss = VGG19FeatureLoss(weights / "vgg19.pth", layers=("relu1_2",))
    x1, y1 = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    assert torch.allclose(loss(x1, y1), loss(x1.repeat(1, 3, 1, 1), y1.repeat(1, 3, 1, 1)))
    v = torch.rand(2, 1, 3, 16, 16)
    w = torch.rand(2, 1, 3, 16, 16)
    slices = lambda a: a.transpose(1, 2).reshape(6, 1, 16, 16)  # noqa: E731
    assert torch.allclose(loss(v, w), loss(slices(v), slices(w)))


def test_environment_variable(weights, monkeypatch):
    monkeypatch.setenv(VGG19_WEIGHTS_ENV, str(weights / "vgg19.safetensors"))
    assert VGG19FeatureLoss(layers=("relu1_1",)).layers == ["relu1_1"]


def test_missing_weights_explain_how_to_provide_them(monkeypatch, tmp_path):
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        VGG19FeatureLoss()
    msg = str(info.value)
    assert VGG19_WEIGHTS_ENV in msg and "torchvision" in msg and "downloads nothing" in msg
    with pytest.raises(InputError, match="does not exist"):
        VGG19FeatureLoss(tmp_path / "nope.pth")


def test_wrong_file_contents(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="is this VGG19"):
        VGG19FeatureLoss(tmp_path / "bad.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match=r"lacks VGG19 weight 'features\.0\.bias'"):
        VGG19FeatureLoss(tmp_path / "partial.pth")
    with pytest.raises(ConfigError, match="unknown VGG19 layer"):
        VGG19FeatureLoss(tmp_path / "bad.pth", layers=("conv9_9",))


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_in_a_weights_file_is_not_executed(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"features.0.weight": _Evil(marker)}, protocol=2))
    with pytest.raises(InputError, match="weights-only") as err:
        VGG19FeatureLoss(tmp_path / "evil.pth")
    assert not marker.exists()
    assert "\n" not in str(err.value)  # torch's long multi-line explanation squeezed onto one line
