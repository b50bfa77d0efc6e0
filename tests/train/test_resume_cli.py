"""``--resume`` edge cases: a different config, a finished run, a folder that is not a run, changed networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mrisr.cli import main
from mrisr.errors import ConfigError
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train
from mrisr.train.run import load_run_config
from tests.train.helpers import small_gan

SUP = [{"name": "sup", "steps": 2, "losses": [{"name": "l1"}]}]


@pytest.fixture
def finished_run(prepared: dict[str, str], tmp_path: Path) -> Path:
    return train(config_from_dict(small_gan(prepared["data/prepared/pediatric"], SUP)), out=str(tmp_path / "run"))


def test_a_config_named_with_resume_must_match_the_snapshot(finished_run: Path, tmp_path: Path) -> None:
    snap = yaml.safe_load((finished_run / "config.yaml").read_text())
    same, other = tmp_path / "same.yaml", tmp_path / "other.yaml"
    same.write_text(yaml.safe_dump(snap))
    snap["optim"]["generator"]["optimizer"]["lr"] = 0.5
    other.write_text(yaml.safe_dump(snap))
    assert load_run_config(finished_run, ["phases.0.steps=3"], config=str(same)).phases[0].steps == 3
    with pytest.raises(ConfigError, match=r"differs from the run's config.yaml at optim\.generator\.optimizer\.lr "
                                          r"\(0\.5 vs 0\.001\)"):
        load_run_config(finished_run, [], config=str(other))


def test_resuming_a_finished_run_changes_nothing(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in (finished_run / "summary.json", finished_run / "metrics.csv")}
    assert main(["train", "--resume", str(finished_run)]) == 0
    assert "already complete (2/2 steps)" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before


def test_resume_of_what_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "no config.yaml (not a run folder)" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("nonsense: 1\n")
    assert main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.yaml: nonsense: unknown key" in err


def test_changing_the_network_on_resume_says_which_weight(finished_run: Path) -> None:
    cfg = load_run_config(finished_run, ["phases.0.steps=3", "model.generator.args.channels=6"])
    with pytest.raises(ConfigError, match=r"weights do not fit this network .*size mismatch for \S+"):
        train(cfg, resume=str(finished_run))
