"""Worker for tests/empirical/test_recorder.py::test_ddp_gloo_equals_single_process (not a test module).

    python _recorder_ddp_script.py OUT_DIR            # single process
    RANK=r WORLD_SIZE=2 NCMARGIN_TEST_INIT=file:///tmp/rdzv python _recorder_ddp_script.py OUT_DIR

Every rank trains the same DDP-wrapped MLP on the full data (identical gradients, so the averaged gradient
equals the single-process one exactly) and records with the Recorder, which shards the evaluation.
"""

import os
import sys

import torch
from torch import nn


def main(out: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(1)
    if world > 1:
        import torch.distributed as dist

        # a file rendezvous (no TCP port that another process on the machine could take)
        init = os.environ.get("NCMARGIN_TEST_INIT", "env://")
        dist.init_process_group("gloo", init_method=init, rank=int(os.environ["RANK"]), world_size=world)
    from ncmargin import Recorder

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(150, 12, generator=g), torch.arange(150) % 5
    Xt, yt = torch.randn(61, 12, generator=g), torch.arange(61) % 5
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(12, 48), nn.BatchNorm1d(48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU(),
                        nn.Linear(24, 5))
    model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xt, yt), batch_size=16)
    rec = Recorder(out, model, train=(X, y), test=test, epochs=30, num_checkpoints=6, eval_batch_size=32,
                   metadata={"lr": 0.2, "seed": 1, "world": "ignored-in-comparison"}, spectral=True)
    rec.epoch_end(0)
    for ep in range(1, 31):
        model.train()
        for i in range(0, 150, 50):
            loss = nn.functional.cross_entropy(model(X[i:i + 50]), y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
        rec.epoch_end(ep, lr=0.2, batch_loss=float(loss))
    rec.close()
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
