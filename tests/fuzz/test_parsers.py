"""Bounded fuzzing of the text parsers: degradation specs (strings and YAML), training-config mappings and
``--set`` overrides, and the bounded YAML loader. Only :class:`~mrisr.errors.MrisrError` may escape.

Fixed seed (``derandomize=True``), fixed example counts, no example database.
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrisr.config import load_yaml
from mrisr.degrade.chain import build_degradation
from mrisr.degrade.registry import STEPS
from mrisr.errors import MrisrError
from mrisr.train.config import config_from_dict
from tests.hostile.cases import BASE_CONFIG, alias_bomb

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow])

SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.sampled_from(["1e-4", "-1", "0", "2..4", "a|b", "inf", "nan", "1:1"]))
YAML_VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=8)


# ---------------------------------------------------------------------------------------- degradation
PARAM = st.sampled_from(["scale", "window", "axes", "snr", "grid", "profile", "gap", "seed", "sigma", "bogus", ""])
VALUE = st.one_of(st.integers(-3, 1000).map(str), st.sampled_from(["hamming", "tukey", "none", "0+1", "all",
                                                                   "0+1+2+3", "20..40", "40..20", "a|b", "nan",
                                                                   "inf", "1e400", "", "2.5", "0..", "..", "|"]))
STEP = st.tuples(st.sampled_from([*STEPS, "warp", "", "KSPACE"]), st.lists(st.tuples(PARAM, VALUE), max_size=3))
SPEC = st.lists(STEP, min_size=1, max_size=3).map(
    lambda steps: ";".join(name + (":" + ",".join(f"{k}={v}" for k, v in params) if params else "")
                           for name, params in steps))


@FUZZ
@given(spec=st.one_of(SPEC, st.text(alphabet=";:,=.|+-0123456789abcdeiklmnoprstuwxyz{}[]\n ", max_size=60)),
       scale=st.one_of(st.none(), st.integers(-2, 9)))
def test_degradation_spec_fuzz(spec, scale):
    try:
        build_degradation(spec, scale=scale)
    except MrisrError:
        pass


@FUZZ
@given(obj=YAML_VALUE)
def test_degradation_mapping_fuzz(obj):
    for spec in (obj, {"method": "kspace", "scale": obj}, [{"noise": {"snr": obj}}], {"steps": obj}):
        try:
            build_degradation(spec)
        except MrisrError:
            pass


# ------------------------------------------------------------------------------------------- configs
BASE = yaml.safe_load(BASE_CONFIG.format(prepared="/nonexistent/prepared"))
KEYS = ["run", "run.seed", "run.device", "run.precision", "data", "data.root", "data.degradation",
        "data.patch_size", "data.batch_size", "data.num_workers", "data.dims", "data.context_slices",
        "data.augment", "model", "model.generator", "model.generator.name", "model.generator.args",
        "model.generator.args.scale", "model.discriminator", "optim.generator.optimizer",
        "optim.generator.optimizer.lr", "optim.generator.optimizer.name", "optim.generator.optimizer.betas",
        "optim.generator.scheduler", "optim.generator.grad_clip", "phases", "phases.0", "phases.0.steps",
        "phases.0.train", "phases.0.losses", "phases.0.ratio", "ema", "ema.decay", "validation",
        "validation.every", "validation.metric", "checkpoint.every", "init", "distributed", "unknown"]


def _set(raw: dict, key: str, value: object) -> None:
    """Set the dotted ``key`` in ``raw`` where the path exists as mappings / list indices (else nothing)."""
    node: object = raw
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = value
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            node = node.setdefault(part, {})
        else:
            return


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(KEYS), YAML_VALUE), min_size=1, max_size=3))
def test_training_config_fuzz(edits):
    raw = copy.deepcopy(BASE)
    for key, value in edits:
        _set(raw, key, value)
    try:
        config_from_dict(raw)
    except MrisrError:
        pass


@FUZZ
@given(key=st.one_of(st.sampled_from(KEYS), st.text(alphabet="abcdeilmnoprstuz.0123456789", max_size=20)),
       value=st.text(max_size=30))
def test_set_override_fuzz(key, value):
    try:
        config_from_dict(copy.deepcopy(BASE), [f"{key}={value}"])
    except MrisrError:
        pass


@settings(FUZZ, max_examples=150)
@given(text=st.one_of(st.text(max_size=80),
                      st.builds(lambda n, w: alias_bomb(n, w), st.integers(1, 12), st.integers(1, 12)),
                      st.integers(1, 300).map(lambda depth: "[" * depth + "]" * depth)))
def test_yaml_loader_fuzz(text):
    try:
        load_yaml(text, "fuzz")
    except MrisrError:
        pass
