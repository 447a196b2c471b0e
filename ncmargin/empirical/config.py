"""Typed training configuration with ``key=value`` overrides (karpathy/nanoGPT ``configurator.py`` style).

A :class:`TrainConfig` is a flat dataclass; every field has a type and a default. Presets are JSON files
in ``ncmargin/configs/`` (also reachable as the repository's ``configs/``); a JSON path works too.
Overrides are ``key=value`` strings, converted to the field's type; an unknown key raises a ValueError
that lists the valid keys. Nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ncmargin.store import PRESET_DIR, find_preset, is_safe_name
from ncmargin.store import list_presets as _store_presets

__all__ = ["PRESET_DIR", "TrainConfig", "apply_overrides", "list_presets", "load_config", "parse_overrides"]

# PRESET_DIR (ncmargin/configs) and preset lookup belong to the disk owner, ncmargin.store


@dataclass
class TrainConfig:
    """Everything that determines a training run (docs/formats.md lists the meaning of each key)."""

    # --- data -------------------------------------------------------------------------------------
    dataset: str = "digits"          # digits | mnist5k | synthetic | mnist | fashionmnist | cifar10 | cifar100 | svhn
    data_root: str = ""              # torchvision datasets; "" -> $NCMARGIN_DATA or ~/.cache/ncmargin/data
    download: bool = False           # torchvision datasets: fetch when absent (needs network)
    n_per_class: int = 0             # balanced train subsample, samples per class (0 = all)
    n_test_per_class: int = 0        # balanced test subsample (0 = all)
    test_fraction: float = 0.2       # digits / mnist5k / synthetic: stratified test share
    split_seed: int = 0              # seed of the train/test split and of the subsampling
    standardize: str = "auto"        # auto | feature | channel | none  (fitted on the train split)
    # synthetic Gaussian mixture
    syn_classes: int = 10
    syn_dim: int = 32
    syn_per_class: int = 100         # samples per class before the train/test split
    syn_separation: float = 3.0      # distance scale of the group centres (noise std is 1)
    syn_groups: int = 0              # 0 = no structure; g > 0: classes in g groups, closer inside a group
    syn_group_spread: float = 0.3    # class means within a group: spread relative to syn_separation
    # --- model ------------------------------------------------------------------------------------
    model: str = "mlp"               # mlp | cnn | resnet18
    depth: int = 3                   # mlp: hidden layers
    width: int = 256                 # mlp/cnn: feature dimension d (resnet18: 512, fixed)
    batchnorm: bool = False          # mlp: BatchNorm1d after each hidden Linear
    head: str = "linear"             # linear | etf (fixed simplex ETF, never updated)
    head_bias: bool = True           # linear head: learn a bias
    etf_perm_seed: int = -1          # etf head: -1 identity alignment, else seed of a random permutation
    etf_rotation_seed: int = -1      # etf head: -1 canonical orientation, else seed of a Haar rotation
    etf_scale: float = 1.0           # etf head: multiplies the unit-norm ETF rows
    # --- optimisation -----------------------------------------------------------------------------
    optimizer: str = "sgd"           # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9            # sgd
    nesterov: bool = False           # sgd
    weight_decay: float = 0.0
    schedule: str = "constant"       # constant | step | cosine (per epoch)
    milestones: str = ""             # step: comma-separated epochs, e.g. "116,233"
    gamma: float = 0.1               # step: lr factor at each milestone
    epochs: int = 100
    batch_size: int = 128            # 0 = full batch
    loss_dtype: str = "float32"      # float32 | float64: dtype of the training CE (stable form, losses.py)
    # --- run --------------------------------------------------------------------------------------
    seed: int = 0                    # model init and batch order
    device: str = "cpu"              # cpu | cuda | auto
    deterministic: bool = False      # torch.use_deterministic_algorithms(True)
    amp: bool = True                 # cuda only: bf16 autocast forward, loss in float32+
    channels_last: bool = True       # cuda only, image models
    compile: bool = False            # torch.compile the training forward
    num_checkpoints: int = 12        # log-spaced checkpoint epochs in 1..epochs (plus 0, onset, end)
    save_every: int = 10             # also write the resume state every this many epochs (0 = only at checkpoints)
    eval_batch_size: int = 2048      # feature extraction batch
    quiet: bool = False              # no tqdm progress bar
    num_threads: int = 0             # torch.set_num_threads (0 = leave torch's default); 1 avoids OpenMP
                                     # spin contention on small models and busy machines

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def milestone_list(self) -> list[int]:
        s = self.milestones.strip()
        if not s:
            return []
        try:
            return sorted(int(v) for v in s.replace(";", ",").split(",") if v.strip())
        except ValueError:
            raise ValueError(f"milestones={self.milestones!r}: give comma-separated integer epochs, "
                             "e.g. milestones=116,233") from None

    def validate(self) -> TrainConfig:
        """Check choices and ranges; raise ValueError naming the key and the valid values."""
        choices = {
            "dataset": DATASET_NAMES, "standardize": ("auto", "feature", "channel", "none"),
            "model": ("mlp", "cnn", "resnet18"), "head": ("linear", "etf"), "optimizer": ("sgd", "adam"),
            "schedule": ("constant", "step", "cosine"), "loss_dtype": ("float32", "float64"),
            "device": ("cpu", "cuda", "auto"),
        }
        for key, allowed in choices.items():
            v = getattr(self, key)
            if key == "device" and v.startswith("cuda:"):
                continue
            if v not in allowed:
                raise ValueError(f"{key}={v!r} is not valid; choose one of {', '.join(allowed)}")
        positive = ("epochs", "depth", "width", "eval_batch_size", "syn_classes", "syn_dim", "syn_per_class")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 1")
        for key in ("batch_size", "n_per_class", "n_test_per_class", "weight_decay", "num_checkpoints",
                    "save_every", "syn_groups", "momentum", "num_threads"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be > 0")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction={self.test_fraction} must lie in (0, 1)")
        if self.schedule == "step" and not self.milestone_list():
            raise ValueError("schedule=step needs milestones, e.g. --set milestones=116,233")
        self.milestone_list()
        return self


DATASET_NAMES = ("digits", "mnist5k", "synthetic", "mnist", "fashionmnist", "cifar10", "cifar100", "svhn")

_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _valid_keys() -> str:
    return ", ".join(sorted(_FIELDS))


def _convert(key: str, value: Any) -> Any:
    """Convert ``value`` (str from the command line, or a JSON value) to the type of field ``key``."""
    if key not in _FIELDS:
        raise ValueError(f"unknown config key {key!r}; valid keys: {_valid_keys()}")
    default = _FIELDS[key].default
    typ = type(default)
    if typ is bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}={value!r}: expected a boolean (true/false)")
    if typ is int:
        if isinstance(value, bool):
            raise ValueError(f"{key}={value!r}: expected an integer")
        if isinstance(value, int):
            return value
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}={value!r}: expected an integer") from None
        if f != int(f):
            raise ValueError(f"{key}={value!r}: expected an integer")
        return int(f)
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}={value!r}: expected a number") from None
    if typ is str:
        if isinstance(value, (list, tuple)):  # e.g. milestones given as a JSON list
            return ",".join(str(v) for v in value)
        return str(value)
    raise AssertionError(f"unsupported field type {typ}")  # pragma: no cover


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["lr=0.1", "epochs=5"]`` -> ``{"lr": "0.1", "epochs": "5"}``; malformed items raise ValueError."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value; e.g. --set lr=0.1")
        k, v = item.split("=", 1)
        k = k.strip().lstrip("-").replace("-", "_")
        if k not in _FIELDS:
            raise ValueError(f"unknown config key {k!r} in --set {item!r}; valid keys: {_valid_keys()}")
        out[k] = v
    return out


def apply_overrides(config: TrainConfig, overrides: dict[str, Any] | list[str] | None) -> TrainConfig:
    """A new config with ``overrides`` (a dict or a list of ``key=value``) applied and type-converted."""
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    changes = {k: _convert(k, v) for k, v in (overrides or {}).items()}
    return dataclasses.replace(config, **changes).validate()


def _is_train_preset(path: Path) -> bool:
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and all(str(k).startswith("_") or k in _FIELDS for k in obj)


def _owner_command(stem: str) -> str:
    """Which command takes the non-training preset ``stem`` of ``ncmargin/configs``."""
    if stem.startswith("sweep_"):
        return f"it is a sweep preset: run `ncmargin sweep {stem}`"
    if stem.startswith("verify_"):
        return f"it is a verify preset: run `ncmargin verify --preset {stem[len('verify_'):]}`"
    return "it belongs to another command, e.g. `ncmargin sweep` or `ncmargin verify --preset`"


def list_presets() -> list[str]:
    """Training presets in ``ncmargin/configs`` (ncmargin.store.list_presets("train")) whose keys are all
    TrainConfig fields."""
    return [n for n in _store_presets("train") if _is_train_preset(PRESET_DIR / f"{n}.json")]


def load_config(source: str | os.PathLike | dict | TrainConfig | None = None,
                overrides: dict[str, Any] | list[str] | None = None) -> TrainConfig:
    """Resolve a config from a preset name, a JSON path, a dict or a TrainConfig, then apply overrides.

    Unknown keys (in the file or the overrides) raise ValueError listing the valid keys. Keys starting
    with an underscore in a JSON file are comments and are skipped.
    """
    if source is None:
        base: dict[str, Any] = {}
    elif isinstance(source, TrainConfig):
        base = source.to_dict()
    elif isinstance(source, dict):
        base = dict(source)
    else:
        s = str(source)
        path = Path(s)
        if not path.is_file():
            if s.endswith(".json") or not is_safe_name(s) or not (PRESET_DIR / f"{s}.json").is_file():
                raise FileNotFoundError(
                    f"config {s!r} is neither a JSON file nor a preset; presets: {', '.join(list_presets())}")
            path = find_preset("train", s)
        try:
            base = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: malformed JSON ({exc}); fix the file") from exc
        if not isinstance(base, dict):
            raise ValueError(f"{path}: a config file must hold a JSON object of key: value pairs")
        if path.parent.resolve() == PRESET_DIR.resolve() and not _is_train_preset(path):
            raise ValueError(f"preset {path.stem!r} is not a training config ({_owner_command(path.stem)}); "
                             "training presets: " + ", ".join(list_presets()))
    base = {k: v for k, v in base.items() if not str(k).startswith("_")}
    cfg = TrainConfig(**{k: _convert(k, v) for k, v in base.items()})
    return apply_overrides(cfg, overrides)
