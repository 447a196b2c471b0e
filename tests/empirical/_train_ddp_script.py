"""Worker for tests/empirical/test_train_ddp.py (not a test module).

    python _train_ddp_script.py OUT_DIR                  # single process
    RANK=r WORLD_SIZE=2 NCMARGIN_TEST_INIT=file:///tmp/rdzv python _train_ddp_script.py OUT_DIR

``ncmargin train`` on a tiny digits config; under 2 gloo ranks the trainer evaluates through the
Recorder's shard + gather path (ncmargin.empirical.evaluation) and rank 0 writes.
"""

import os
import sys

import torch


def main(out: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(1)
    if world > 1:
        import torch.distributed as dist

        # a file rendezvous (no TCP port that another process on the machine could take); train() then
        # finds the process group initialised
        dist.init_process_group("gloo", init_method=os.environ["NCMARGIN_TEST_INIT"],
                                rank=int(os.environ["RANK"]), world_size=world)
    from ncmargin.empirical.train import train

    train("quick_digits", out, overrides={"epochs": 4, "n_per_class": 12, "num_checkpoints": 3, "quiet": True,
                                          "device": "cpu", "batch_size": 0})


if __name__ == "__main__":
    main(sys.argv[1])
