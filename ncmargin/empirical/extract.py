"""Checkpoints someone else saved -> an ncmargin run directory (``ncmargin extract``; docs/recorder.md).

    extract_run("runs/theirs", "mypkg.models:resnet18", "ckpts/ckpt_*.pt", data="cifar10.npz",
                factory_kwargs={"num_classes": 10})

Each file is a PyTorch state dict saved with ``torch.save(model.state_dict(), path)`` (or a dict holding it
under ``state_dict`` / ``model_state_dict`` / ``model`` / ``net``, as Lightning and common trainers save
it); it is loaded with ``torch.load(..., weights_only=True)``, so arbitrary pickled objects are refused. The
epoch of each file is the last integer in its name unless ``epochs`` are given. The model is built by the
factory, loaded with every checkpoint in epoch order and evaluated by the :class:`Recorder` (schedule =
exactly these epochs), so the run directory is the one a recorded training loop writes.

Data (``data=``):

- a ``.npz`` file of model-ready inputs: train as ``images``/``labels`` (or ``x_train``/``y_train``), test
  as ``test_images``/``test_labels`` (or ``x_test``/``y_test``; required: claim 2 uses the test error);
- a dataset name of the package's registry (``digits``, ``mnist5k``, ``synthetic``, ``cifar10`` ...;
  ``ncmargin.empirical.data.load_dataset``, with ``data_options`` as TrainConfig keys such as
  ``data_root``, ``standardize``, ``split_seed``, ``n_per_class``);
- ``torchvision:NAME:ROOT`` (e.g. ``torchvision:CIFAR10:/data``): the torchvision dataset from a local root
  (never downloaded), converted with ``ToTensor`` and an optional ``normalize=(mean, std)``.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ExtractError", "epoch_from_name", "extract_run", "load_data", "load_factory", "load_state_dict"]

_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


class ExtractError(ValueError):
    """Bad input to extract (the message names the problem and the fix)."""


def epoch_from_name(path: str | os.PathLike) -> int:
    """The last integer in the file name (without extension): ``ckpt_epoch=0042.pt`` -> 42."""
    nums = re.findall(r"\d+", Path(path).name.rsplit(".", 1)[0])
    if not nums:
        raise ExtractError(f"{path}: no epoch number in the file name; pass the epochs explicitly "
                           "(--epochs 10,20,...) in the order of the sorted file names")
    return int(nums[-1])


def load_factory(spec: str):
    """``pkg.module:factory`` -> the callable."""
    if ":" not in spec:
        raise ExtractError(f"--model {spec!r}: use the form pkg.module:factory (a function or class that "
                           "builds the untrained model)")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ExtractError(f"--model {spec!r}: cannot import {mod_name!r} ({exc}); put it on PYTHONPATH") from exc
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ExtractError(f"--model {spec!r}: {mod_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ExtractError(f"--model {spec!r}: {attr} is not callable")
    return obj


def load_state_dict(path: str | os.PathLike) -> dict:
    """A state dict from ``path`` with ``torch.load(weights_only=True)``; wrapper dicts are unwrapped and
    the ``module.`` (DDP) / ``_orig_mod.`` (torch.compile) key prefixes removed."""
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ExtractError(f"{path}: refused by torch.load(weights_only=True) — the file holds pickled "
                           "Python objects, not only tensors. Re-save the weights with "
                           "torch.save(model.state_dict(), path) (ncmargin never unpickles arbitrary code)") \
            from exc
    except (RuntimeError, OSError, EOFError) as exc:
        raise ExtractError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for k in _STATE_KEYS:
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ExtractError(f"{path}: not a state dict (a dict of tensors, or one under the key "
                           f"{'/'.join(_STATE_KEYS)}); save model.state_dict()")
    out = {}
    for k, v in obj.items():
        for pre in ("module.", "_orig_mod."):
            while k.startswith(pre):
                k = k[len(pre):]
        out[k] = v
    return out


def _npz_pair(f, names: list[tuple[str, str]], path, what: str, required: bool):
    keys = set(f.files)
    for xk, yk in names:
        if xk in keys and yk in keys:
            return f[xk], f[yk]
    if required:
        raise ExtractError(f"{path}: no {what} arrays; expected one of "
                           f"{', '.join(f'{a}+{b}' for a, b in names)} (arrays present: {sorted(keys)})")
    return None


def load_data(spec: str, data_options: dict | None = None, normalize=None) -> tuple[tuple, tuple, dict]:
    """``((X_train, y_train), (X_test, y_test), info)``: torch tensors, or DataLoaders for torchvision data
    (see the module docstring)."""
    import torch

    opts = dict(data_options or {})
    if spec.endswith(".npz"):
        p = Path(spec)
        if not p.is_file():
            raise FileNotFoundError(f"--data {spec}: no such file")
        with np.load(p, allow_pickle=False) as f:
            tr = _npz_pair(f, [("images", "labels"), ("x_train", "y_train")], p, "train", True)
            te = _npz_pair(f, [("test_images", "test_labels"), ("x_test", "y_test")], p, "test", True)
            tr = tuple(np.asarray(a) for a in tr)
            te = tuple(np.asarray(a) for a in te)
        conv = lambda a: (torch.from_numpy(np.ascontiguousarray(a[0], dtype=np.float32)),
                          torch.from_numpy(np.asarray(a[1]).astype(np.int64)))
        return conv(tr), conv(te), {"dataset": p.name, "source": str(p)}
    if spec.startswith("torchvision:"):
        parts = spec.split(":", 2)
        if len(parts) != 3:
            raise ExtractError(f"--data {spec!r}: use torchvision:NAME:ROOT, e.g. torchvision:CIFAR10:/data")
        _, name, root = parts
        try:
            import torchvision
            from torchvision import transforms
        except ImportError as exc:
            from .data import TORCHVISION_PIP

            raise ExtractError(f"--data {spec}: needs the optional torchvision package ({TORCHVISION_PIP}); or "
                               "export the images to a .npz (images, labels, test_images, test_labels)") from exc
        cls = getattr(torchvision.datasets, name, None)
        if cls is None:
            raise ExtractError(f"--data {spec}: torchvision.datasets has no {name!r}")
        tf = [transforms.ToTensor()]
        if normalize is not None:
            tf.append(transforms.Normalize(*normalize))
        tf = transforms.Compose(tf)
        out = []
        for train in (True, False):
            try:
                ds = cls(root, train=train, download=False, transform=tf)
            except RuntimeError as exc:
                raise FileNotFoundError(f"--data {spec}: {exc} (extract never downloads; put the files under "
                                        f"{root})") from exc
            loader = torch.utils.data.DataLoader(ds, batch_size=int(opts.get("batch_size", 512)),
                                                 num_workers=int(opts.get("num_workers", 0)))
            out.append(loader)
        return out[0], out[1], {"dataset": name, "data_root": root, "normalize": normalize}
    from .config import DATASET_NAMES, load_config
    from .data import load_dataset

    if spec not in DATASET_NAMES:
        raise ExtractError(f"--data {spec!r}: give a .npz file, torchvision:NAME:ROOT, or a registry dataset "
                           f"({', '.join(DATASET_NAMES)})")
    cfg = load_config({"dataset": spec, **opts, "quiet": True, "device": "cpu"})
    d = load_dataset(cfg)
    return (d.x_train, d.y_train), (d.x_test, d.y_test), dict(d.info)


def extract_run(out_dir: str | os.PathLike, model: str, weights: str | list[str], *, data: str,
                epochs: list[int] | None = None, factory_kwargs: dict | None = None, head: str | None = None,
                metadata: dict | None = None, data_options: dict | None = None, normalize=None,
                device: str = "cpu", eval_batch_size: int = 1024, subsample: int = 0, amp: bool = False,
                spectral: bool = False, quiet: bool = True) -> Path:
    """Evaluate every checkpoint of ``weights`` (a glob or a list of paths) with the model built by the
    ``model`` factory (``pkg.module:factory``) on ``data`` and write the run directory ``out_dir``."""
    import torch

    from .recorder import Recorder

    files = sorted(glob.glob(weights)) if isinstance(weights, str) else [str(w) for w in weights]
    if not files:
        raise FileNotFoundError(f"--weights {weights!r}: no file matches")
    if epochs is not None:
        if len(epochs) != len(files):
            raise ExtractError(f"--epochs has {len(epochs)} entries but {len(files)} checkpoint files match; "
                               "give one epoch per file (in sorted file-name order)")
        pairs = list(zip([int(e) for e in epochs], files))
    else:
        pairs = [(epoch_from_name(f), f) for f in files]
    pairs.sort(key=lambda t: t[0])
    eps = [e for e, _ in pairs]
    if len(set(eps)) != len(eps):
        dup = sorted({e for e in eps if eps.count(e) > 1})
        raise ExtractError(f"several checkpoint files give the same epoch {dup}; pass --epochs or a narrower glob")
    factory = load_factory(model)
    net = factory(**(factory_kwargs or {}))
    if not isinstance(net, torch.nn.Module):
        raise ExtractError(f"--model {model}: the factory returned {type(net).__name__}, not a torch.nn.Module")
    net = net.to(device)
    # every file must fit the model before anything is written (no half-made run directory)
    ref = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for _, f in pairs:
        got = {k: tuple(v.shape) for k, v in load_state_dict(f).items()}
        if got != ref:
            missing = sorted(set(ref) - set(got))[:5]
            extra = sorted(set(got) - set(ref))[:5]
            shape = [k for k in ref if k in got and got[k] != ref[k]][:5]
            raise ExtractError(f"{f}: does not fit the model built by {model}: missing keys {missing}, "
                               f"unexpected keys {extra}, shape mismatch {shape}; check --model/--kwargs")
    train, test, info = load_data(data, data_options, normalize)
    meta: dict[str, Any] = {"source": "ncmargin extract", "model_factory": model,
                            "factory_kwargs": factory_kwargs or {}, "data": data, "data_info": info,
                            "weights": [os.path.abspath(f) for _, f in pairs], **(metadata or {})}
    rec = Recorder(out_dir, net, train=train, test=test, head=head, epochs=eps[-1], schedule=eps,
                   metadata=meta, device=device, eval_batch_size=eval_batch_size, subsample=subsample, amp=amp,
                   spectral=spectral, check_onset=False, model_factory=model)
    it = pairs
    if not quiet:
        from tqdm.auto import tqdm

        it = tqdm(pairs, desc="extract", unit="ckpt")
    for ep, f in it:
        sd = load_state_dict(f)
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise ExtractError(f"{f}: does not fit the model built by {model}: {str(exc)[:800]}") from exc
        rec.epoch_end(ep)
    rec.close()
    return Path(out_dir)
