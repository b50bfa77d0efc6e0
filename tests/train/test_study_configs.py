"""The study configs say what the studies did (pediatric SRGAN, cardiac RRDB GAN, cardiac 3D WGAN-GP)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mrisr.errors import ConfigError
from mrisr.losses.adversarial import build_adversarial, smooth_l1_d_loss, smooth_l1_g_loss
from mrisr.models.registry import build_model
from mrisr.train.config import load_config
from mrisr.train.run import build_loss_terms
from tests.train.helpers import CONFIGS


def test_pediatric_config_is_the_published_recipe() -> None:
    cfg = load_config(CONFIGS / "pediatric_srgan_x2.yaml")
    (ph,) = cfg.phases
    assert ph.epochs == 10 and ph.ratio == "4:1" and set(ph.train) == {"generator", "discriminator"}
    assert ph.adversarial == "smooth_l1"
    assert [t.name for t in ph.losses] == ["bce_content", "adversarial"]
    assert cfg.data.batch_size == 8 and cfg.data.degradation == "bicubic:scale=2"
    g, d = cfg.optim.generator.optimizer, cfg.optim.discriminator.optimizer
    assert (g.name, g.lr) == ("adam", pytest.approx(2e-3)) and (d.name, d.lr) == ("sgd", pytest.approx(2e-4))
    gen = build_model(cfg.model.generator.name, **{**cfg.model.generator.args, "channels": 4, "n_blocks": 1})
    assert any(isinstance(m, nn.LeakyReLU) for m in gen.modules())
    assert not any(isinstance(m, nn.ReLU | nn.PReLU) for m in gen.modules())
    assert isinstance([m for m in gen.modules() if not list(m.children())][-1], nn.Tanh)
    disc_args = {**cfg.model.discriminator.args, "channels": 4, "n_layers": 2, "fc_channels": 8}
    assert any(isinstance(m, nn.Dropout) and m.p > 0 for m in build_model(cfg.model.discriminator.name,
                                                                           **disc_args).modules())


def test_smooth_l1_adversarial_objective() -> None:
    sure_real, sure_fake = torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)
    assert smooth_l1_d_loss(sure_real, sure_fake) < 1e-6  # a perfect discriminator
    assert smooth_l1_d_loss(sure_fake, sure_real) == pytest.approx(1.0)  # all wrong: 2 x smooth_l1(1) = 2 x 0.5
    assert smooth_l1_g_loss(None, sure_real) < 1e-6 and smooth_l1_g_loss(None, sure_fake) == pytest.approx(0.5)
    fake = torch.zeros(4, 1, requires_grad=True)
    build_adversarial("smooth_l1").g_loss(None, fake).backward()
    assert fake.grad is not None and (fake.grad < 0).all()  # the generator pushes its scores up


def test_cardiac_configs_are_the_studies_recipes() -> None:
    srgan = load_config(CONFIGS / "cardiac_srgan_x3.yaml")
    assert srgan.model.generator.name == "rrdbnet"
    assert [t.name for t in srgan.phases[0].losses] == ["mse", "vgg19", "adversarial"]
    assert srgan.phases[1].data["root"] != srgan.data.root  # heart-crop fine-tuning on a second dataset
    wgan = load_config(CONFIGS / "cardiac_wgan3d_x2.yaml")
    assert wgan.model.generator.name == "mdcsrn" and wgan.data.dims == 3 and len(wgan.phases) == 5
    gan_phases = [p for p in wgan.phases if "discriminator" in p.train]
    assert gan_phases and all(p.adversarial == "wgan" and p.gp_weight == 10.0 for p in gan_phases)


def test_missing_vgg19_weights_is_one_line_naming_the_term(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mrisr.losses.perceptual import VGG19_WEIGHTS_ENV

    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    cfg = load_config(CONFIGS / "cardiac_srgan_x3.yaml")
    with pytest.raises(ConfigError, match=rf"^phases\.0\.losses\.1 \(vgg19\): .*{VGG19_WEIGHTS_ENV}") as err:
        build_loss_terms(cfg.phases[0], 0, torch.device("cpu"))
    assert "\n" not in str(err.value)
    cfg = load_config(CONFIGS / "cardiac_srgan_x3.yaml", [f"phases.0.losses.1.args.weights_path={tmp_path}/no.pth"])
    with pytest.raises(ConfigError, match=r"^phases\.0\.losses\.1\.args\.weights_path: .*does not exist"):
        build_loss_terms(cfg.phases[0], 0, torch.device("cpu"))
    text = (CONFIGS / "cardiac_srgan_x3.yaml").read_text()
    assert VGG19_WEIGHTS_ENV in text and "torchvision.models.vgg19" in text  # the config says how
