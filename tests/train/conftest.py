"""Synthetic patients prepared once per session for the training tests, and a stub VGG19 weights file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Prepared folders keyed by the data roots the shipped configs name."""
    from mrisr.data.example import make_example_data
    from mrisr.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("train_data")
    ex = make_example_data(root / "raw", n_patients=3, seed=0, pediatric_shape=(64, 64, 6),
                           cardiac_shape=(48, 48, 8, 3), bad_inputs=False)
    split = {"train": 1, "val": 1, "test": 1}
    ped = prepare_dataset(ex["pediatric"], root / "pediatric", split=split)["out"]
    full = prepare_dataset(ex["cardiac"], root / "cardiac_full", split=split)["out"]
    heart = prepare_dataset(ex["cardiac"], root / "cardiac_heart", split=split, roi_from_masks=True,
                            roi_margin=4, crop=(30, 30))["out"]
    return {
        "data/prepared/pediatric": str(ped),
        "data/prepared/brain": str(ped),
        "data/prepared/cardiac_full": str(full),
        "data/prepared/cardiac_heart": str(heart),
        "data/prepared/cardiac_3d": str(full),
    }


@pytest.fixture(scope="session")
def vgg19_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights for VGG19's first block in torchvision's layout (enough for layer relu1_2)."""
    from safetensors.torch import save_file

    from mrisr.losses.perceptual import vgg19_features

    path = tmp_path_factory.mktemp("vgg") / "vgg19_block1.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in vgg19_features(upto=3).state_dict().items()}, str(path))
    return path


@pytest.fixture
def vgg19_env(vgg19_stub: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from mrisr.losses.perceptual import VGG19_WEIGHTS_ENV

    monkeypatch.setenv(VGG19_WEIGHTS_ENV, str(vgg19_stub))
    return vgg19_stub


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny networks run fastest on one thread (and OpenMP spin-waits on a busy machine are costly);
    subprocesses (``mrisr train``, torchrun workers) inherit the setting."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(old)
