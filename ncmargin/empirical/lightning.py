"""PyTorch Lightning callback around the :class:`~ncmargin.empirical.recorder.Recorder` (optional extra
``pip install 'ncmargin[lightning]'``; docs/recorder.md).

    from ncmargin.empirical.lightning import RecorderCallback

    cb = RecorderCallback("runs/mine", train=(X_tr, y_tr), test=test_loader, metadata={"lr": 0.1})
    lightning.Trainer(max_epochs=350, callbacks=[cb]).fit(module, train_loader)

The LightningModule is the model the recorder hooks (its final ``nn.Linear`` is the head unless ``head=``
names it); ``epochs`` defaults to ``trainer.max_epochs``. The initialization is recorded at ``on_fit_start``
(epoch 0), every finished training epoch ``e`` (1-based) at ``on_train_epoch_end``, and the run is closed at
``on_fit_end``. Under Lightning's DDP strategy every rank runs the hooks and the recorder gathers to
rank 0, which alone writes. Extra keyword arguments go to the Recorder.
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package name of Lightning 1.x/2.x
    try:
        from pytorch_lightning import Callback
    except ImportError as exc:
        raise ImportError("ncmargin.empirical.lightning needs PyTorch Lightning: pip install 'ncmargin[lightning]' "
                          "(or pip install lightning); without it use the Recorder directly "
                          "(docs/recorder.md)") from exc

from .recorder import Recorder

__all__ = ["RecorderCallback"]


class RecorderCallback(Callback):
    """Record a Lightning fit into ``out_dir`` (module docstring)."""

    def __init__(self, out_dir, *, train, test, record_init: bool = True, **recorder_kwargs):
        super().__init__()
        self.out_dir, self.train, self.test = out_dir, train, test
        self.record_init = record_init
        self.kwargs = recorder_kwargs
        self.recorder: Recorder | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        kw = dict(self.kwargs)
        kw.setdefault("epochs", trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None)
        kw.setdefault("device", pl_module.device)
        self.recorder = Recorder(self.out_dir, pl_module, train=self.train, test=self.test, **kw)
        if self.record_init:
            self.recorder.epoch_end(0)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        lr = None
        if trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0].get("lr")
        self.recorder.epoch_end(trainer.current_epoch + 1, lr=lr)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.close()
