"""Shared pieces of the robustness suite: a tiny trained run and hostile files."""

from __future__ import annotations

import shutil
from pathlib import Path

TINY = ["n_per_class=10", "n_test_per_class=5", "depth=1", "width=16", "batch_size=50", "lr=0.05",
        "num_checkpoints=2", "save_every=2", "quiet=true", "num_threads=1"]
SET_TINY = [a for s in TINY for a in ("--set", s)]  # the same, as CLI arguments


class WriteMarker:
    """Unpickling this object opens (creates) ``marker``: a harmless stand-in for code execution."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_state(path: Path, marker: Path) -> None:
    """A ``last.pt`` that runs code (creates ``marker``) when loaded with ``weights_only=False``."""
    import torch

    torch.save({"epoch": 1, "onset_epoch": None, "model": {}, "optimizer": {}, "payload": WriteMarker(str(marker))},
               path)


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
