from __future__ import annotations

from collections import Counter

import pytest

from mrisr.data.splits import assign_splits, parse_split_spec
from mrisr.errors import ConfigError


def test_parse_fractions_counts_and_rest() -> None:
    assert parse_split_spec("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert parse_split_spec({"test": 64, "val": 16, "train": "rest"}) == {"test": 64, "val": 16, "train": "rest"}


@pytest.mark.parametrize("spec", ["train=0.8,val=0.1", "train=0.5,test=3", "train=rest,val=rest", "train", "a=-1", "a=1.5"])
def test_bad_specs_raise(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_split_spec(spec)


@pytest.mark.parametrize("seed", range(5))
def test_every_patient_in_exactly_one_split(seed: int) -> None:
    patients = [f"p{i:02d}" for i in range(13)]
    split = assign_splits(patients, "train=0.7,val=0.15,test=0.15", seed=seed)
    assert set(split) == set(patients)
    counts = Counter(split.values())
    assert counts == {"train": 9, "val": 2, "test": 2}


def test_seeded_and_order_independent() -> None:
    patients = [f"p{i}" for i in range(10)]
    a = assign_splits(patients, "train=0.6,val=0.2,test=0.2", seed=3)
    assert a == assign_splits(list(reversed(patients)), "train=0.6,val=0.2,test=0.2", seed=3)
    assert a != assign_splits(patients, "train=0.6,val=0.2,test=0.2", seed=4)


def test_small_cohort_still_fills_every_split() -> None:
    assert Counter(assign_splits(["a", "b", "c"], "train=0.8,val=0.1,test=0.1").values()) == {"train": 1, "val": 1, "test": 1}


def test_counts_and_image_weights() -> None:
    patients = [f"p{i}" for i in range(10)]
    assert Counter(assign_splits(patients, "test=3,val=1,train=rest").values()) == {"test": 3, "val": 1, "train": 6}
    # counts without 'rest' leave patients unused
    assert len(assign_splits(patients, "test=3,val=1")) == 4
    # image counts: whole patients until the target is reached (5 images each -> 3 patients for 12)
    split = assign_splits(patients, "test=12,train=rest", weights={p: 5 for p in patients})
    assert Counter(split.values()) == {"test": 3, "train": 7}


def test_counts_beyond_the_cohort_are_errors() -> None:
    patients = [f"p{i}" for i in range(5)]
    # all five patients would land in test, train (rest) empty: caught here, not when training starts
    with pytest.raises(ConfigError, match=r"test=10, val=1 asks for 11 patients but there are 5"):
        assign_splits(patients, "test=10,val=1,train=rest")
    with pytest.raises(ConfigError, match="leaving none for 'train'"):
        assign_splits(patients, "test=4,val=1,train=rest")
    with pytest.raises(ConfigError, match="asks for 30 images but there are 25"):
        assign_splits(patients, "test=30", weights={p: 5 for p in patients})
    with pytest.raises(ConfigError, match="none for 'train'"):  # whole patients: 4 x 5 images >= 17
        assign_splits(patients, "test=17,val=4,train=rest", weights={p: 5 for p in patients})
    assert len(assign_splits(patients, "test=5")) == 5
