"""The model's side of the contract: the kinds of model, their optional attributes, and the
contract checks that hold a model to what it declares."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

import zoo_core
from zoo_core import ModelSpec, hookimpl, protocols
from zoo_core.testing import run_checks

MODELS = '''
from dataclasses import dataclass

import torch
from torch import nn

from zoo_core import protocols


@dataclass
class Config:
    vocab_size: int = 32
    width: int = 8


class Plain(nn.Module):
    """Embedding and head: reads any length, as it declares by declaring nothing."""

    config_class = Config

    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, idx):
        return self.head(self.embed(idx))  # (B, T, V)


class Positions(Plain):
    """Learned positions for ``positions`` tokens, and no word of it: fails beyond them."""

    positions = 20

    def __init__(self, config):
        super().__init__(config)
        self.pos = nn.Embedding(self.positions, config.width)

    def forward(self, idx):
        x = self.embed(idx) + self.pos(torch.arange(idx.size(1)))  # (B, T, C)
        return self.head(x)


@dataclass
class WindowConfig(Config):
    context_length: int = 8


class Overreach(Positions):
    """Trains on 8 tokens, has positions for 8, and declares 16."""

    config_class = WindowConfig
    positions = 8
    max_context = 16


class Fractional(Plain):
    max_context = 20.5


@dataclass
class ReachConfig(WindowConfig):
    @property
    def max_context(self):
        return self.context_length


class Disagrees(Plain):
    """Its config says 8 tokens, the model any length: the tasks read both."""

    config_class = ReachConfig
    max_context = None


class Running(Plain):
    """Logits of the running sum of the embeddings: a state worth carrying."""

    def forward(self, idx):
        return self.forward_step(idx)[0]

    def forward_step(self, idx, state=None):
        h = self.embed(idx).cumsum(dim=1)  # (B, T, C)
        if state is not None:
            h = h + state
        return self.head(h), h[:, -1:]


class Forgetful(Running):
    """Drops the state it is given: each call starts afresh."""

    def forward_step(self, idx, state=None):
        return super().forward_step(idx, None)


@dataclass
class PairConfig:
    latent_dim: int = 4
    data_dim: int = 2
    keep_ema: bool = False


class Lonely(nn.Module):
    """A generator without a discriminator to train against."""

    config_class = PairConfig

    def __init__(self, config):
        super().__init__()
        self.latent_dim = config.latent_dim
        self.generator = nn.Linear(config.latent_dim, config.data_dim)

    def forward(self, z):
        return self.generator(z)


@dataclass
class ImageConfig:
    num_classes: int = 3
    image_size: int = 8


class NoForward(nn.Module):
    """Has layers, but never says what to do with an image."""

    config_class = ImageConfig

    def __init__(self, config):
        super().__init__()
        self.head = nn.Linear(3 * config.image_size**2, config.num_classes)
'''


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "zoo_declaring_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "zoo_declaring_models"


def failures(name: str) -> dict[str, str]:
    """Check name -> message of every failed contract check of model ``name``."""
    return {r.check: r.message for r in run_checks(name) if not r.ok}


def test_the_protocols_module_imports_no_torch():
    code = "import sys, zoo_core.protocols; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_absent_optional_attributes_read_as_their_defaults():
    bare = SimpleNamespace()
    assert protocols.max_context(bare) is None
    assert protocols.context_length(bare) is None
    assert protocols.forward_step(bare) is None
    assert protocols.channels_last(bare) is False
    assert protocols.in_channels(bare) == 3
    assert protocols.num_classes(bare) == 0
    assert protocols.keep_ema(bare) is False
    assert protocols.generator_ema(bare) is None
    declared = SimpleNamespace(max_context=64, channels_last=True, in_channels=1, num_classes=4)
    assert protocols.max_context(declared) == 64
    assert protocols.channels_last(declared) is True
    assert protocols.in_channels(declared) == 1
    assert protocols.num_classes(declared) == 4


def test_the_reference_models_are_of_their_kind():
    small = {"n_layer": 1, "n_embd": 16, "n_head": 2, "context_length": 32}
    lm = zoo_core.create_model("transformer", pos_encoding="learned", **small)
    assert isinstance(lm, protocols.LanguageModel)
    assert protocols.forward_step(lm) is not None
    assert protocols.max_context(lm) == protocols.max_context(lm.config) == 32
    assert protocols.max_context(zoo_core.create_model("transformer", **small)) is None  # rope
    for name in ("gan", "gan-mlp"):
        pair = zoo_core.create_model(name, keep_ema=True)
        assert isinstance(pair, protocols.AdversarialPair)
        assert protocols.generator_ema(pair) is not None
    resnet = zoo_core.create_model("resnet20")
    assert isinstance(resnet, protocols.ImageClassifier) and protocols.channels_last(resnet)
    assert not isinstance(resnet, protocols.AdversarialPair)  # no generator, no discriminator


def new_checks(name: str, overrides: dict | None = None) -> dict[str, bool]:
    return {
        r.check: r.ok
        for r in run_checks(name, overrides)
        if r.check.endswith((": members", ": max_context", ": forward_step"))
    }


@pytest.mark.parametrize(
    "name, overrides, kind",
    [
        ("lstm", None, "lm"),
        ("transformer", {"pos_encoding": "learned"}, "lm"),  # max_context: context_length
        ("transformer", None, "lm"),
        ("transformer", {"pos_encoding": "alibi"}, "lm"),
        ("transformer", {"mixer": "lstm", "pos_encoding": "none"}, "lm"),
        ("transformer-encoder", None, "sequence-classification"),
        ("resnet", None, "image-classification"),
    ],
)
def test_every_reference_model_meets_what_it_declares(name, overrides, kind):
    checks = new_checks(name, overrides)
    assert all(checks.values()), checks
    expected = {f"{kind}: members"}
    if kind != "image-classification":
        expected.add(f"{kind}: max_context")
    if kind == "lm":
        expected.add("lm: forward_step")
    assert expected <= set(checks), f"checks not run: {expected - set(checks)}"


def test_a_wrong_max_context_fails_the_checks(register_plugin, models):
    class Declaring:
        @hookimpl
        def register_models(self, register):
            for name, cls in (
                ("plain", "Plain"),
                ("no-reach", "Positions"),
                ("overreach", "Overreach"),
                ("fractional", "Fractional"),
                ("disagrees", "Disagrees"),
            ):
                register(ModelSpec(name, f"{models}:{cls}", ("lm",), "x"))

    register_plugin(Declaring(), "declaring")
    assert failures("plain") == {}
    assert list(failures("no-reach")) == ["lm: max_context"]
    assert (
        "it declares no max_context (it reads any length) but fails on 33 tokens (IndexError"
        in failures("no-reach")["lm: max_context"]
    )
    assert list(failures("overreach")) == ["lm: max_context"]
    assert (
        "it declares max_context 16 but fails on 16 tokens (IndexError"
        in failures("overreach")["lm: max_context"]
    )
    assert failures("fractional") == {
        "lm: max_context": "AssertionError: the model declares max_context 20.5; declare a whole "
        "number of tokens, or None for any length"
    }
    assert failures("disagrees") == {
        "lm: max_context": "AssertionError: the model declares max_context None and its config "
        "8; the tasks read both, so they must agree"
    }


def test_a_forward_step_that_disagrees_with_forward_fails_the_checks(register_plugin, models):
    class Stepping:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("running", f"{models}:Running", ("lm", "copy"), "x"))
            register(ModelSpec("forgetful", f"{models}:Forgetful", ("lm", "copy"), "x"))

    register_plugin(Stepping(), "stepping")
    assert failures("running") == {}
    (message,) = failures("forgetful").values()
    assert list(failures("forgetful")) == ["lm: forward_step"]  # once per kind, not per task
    assert message.startswith(
        "AssertionError: forward_step disagrees with forward: fed 1 token(s), then one at a "
        "time, its logits at position 1 differ by up to "
    )
    assert message.endswith("must continue exactly where the state left off")


def test_a_model_lacking_a_member_of_its_tasks_kind_fails_the_checks(register_plugin, models):
    class Lacking:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("lonely", f"{models}:Lonely", ("toy-2d",), "x"))
            register(ModelSpec("no-forward", f"{models}:NoForward", ("image-classification",), "x"))
            register(ModelSpec("paired", "zoo_gan.model:MLPGAN", ("toy-2d",), "x"))

    register_plugin(Lacking(), "lacking")
    see = "see 'What the zoo expects of a model' in docs/hooks.md"
    assert failures("lonely")["toy-2d: members"] == (
        "AssertionError: task 'toy-2d' trains a model of the kind AdversarialPair, and "
        f"this one lacks discriminator; {see}"
    )
    assert failures("no-forward")["image-classification: members"] == (
        "AssertionError: task 'image-classification' trains a model of the kind ImageClassifier, "
        f"and this one lacks forward; {see}"
    )
    assert failures("paired") == {}  # the reference MLP GAN has all a pair needs
