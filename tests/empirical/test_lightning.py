"""The Lightning callback writes the run directory the Recorder writes (skipped without lightning)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")

from ncmargin.empirical.lightning import RecorderCallback
from ncmargin.empirical.runs import load_run
from ncmargin.io import load_features


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def test_lightning_callback_records_a_fit(tmp_path):
    torch.manual_seed(0)
    X, y = torch.randn(60, 6), torch.arange(60) % 3
    module = Module()
    cb = RecorderCallback(tmp_path / "run", train=(X, y), test=(X[:15], y[:15]), num_checkpoints=3,
                          metadata={"framework": "lightning"})
    trainer = pl.Trainer(max_epochs=6, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[cb])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=20, shuffle=True)
    trainer.fit(module, loader)
    run = load_run(tmp_path / "run")
    assert run.checkpoint_epochs[0] == 0 and run.checkpoint_epochs[-1] == 6
    assert run.meta["config"] == {"framework": "lightning"} and run.meta["model"]["head_name"] == "net.2"
    assert run.log[-1]["lr"] == pytest.approx(0.1)
    tr = load_features(tmp_path / "run" / "checkpoints" / "epoch_0006.npz", "train")
    module.eval()
    with torch.no_grad():
        H = module.net[1](module.net[0](X)).numpy()
    np.testing.assert_allclose(tr.features, H, atol=1e-6, rtol=0)
