"""Train ResNet-18 on CIFAR-10 with a plain PyTorch loop and record it for ncmargin (docs/recorder.md).

    python examples/train_cifar10_resnet18.py --data-root /data --epochs 350 --out runs/c10_r18   # one GPU
    torchrun --nproc_per_node 4 examples/train_cifar10_resnet18.py --data-root /data --out runs/c10_ddp
    python examples/train_cifar10_resnet18.py --fake-data --n-train 64 --image-size 8 --epochs 2 --out /tmp/r
    ncmargin analyze runs/c10_r18

The loop is the user's own (SGD with momentum and weight decay, cosine lr, random-crop/flip augmentation,
bf16 autocast on CUDA); ncmargin only appears in the three Recorder lines. The recorder evaluates the train
set *without* augmentation (a second, deterministic view of the same images) and the test set.

Model: torchvision's ``resnet18(num_classes=10)`` with the CIFAR stem (3x3 conv, stride 1, no max-pool);
without torchvision, ncmargin's own CIFAR ResNet-18 (``ncmargin.empirical.models.ResNet18`` + a Linear head).
``--fake-data`` trains on random tensors (no download, runs on a CPU in seconds at a small size).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from torch import nn


def build_resnet18(num_classes: int, image_size: int):
    try:
        import torchvision

        m = torchvision.models.resnet18(num_classes=num_classes)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # CIFAR stem
        m.maxpool = nn.Identity()
        return m
    except ImportError:
        from ncmargin.empirical.models import ResNet18

        m = ResNet18((3, image_size, image_size))
        m.head = nn.Linear(m.feature_dim, num_classes)
        return m


def cifar10(root: str, workers: int, batch_size: int, world: int, rank: int):
    try:
        import torchvision
        from torchvision import transforms as T
    except ImportError as exc:
        raise SystemExit("real CIFAR-10 needs torchvision (pip install torchvision); or pass --fake-data") from exc
    norm = T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    aug = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    plain = T.Compose([T.ToTensor(), norm])
    train_aug = torchvision.datasets.CIFAR10(root, train=True, transform=aug, download=False)
    train_eval = torchvision.datasets.CIFAR10(root, train=True, transform=plain, download=False)
    test = torchvision.datasets.CIFAR10(root, train=False, transform=plain, download=False)
    sampler = torch.utils.data.DistributedSampler(train_aug, world, rank) if world > 1 else None
    train_loader = torch.utils.data.DataLoader(train_aug, batch_size=batch_size, shuffle=sampler is None,
                                               sampler=sampler, num_workers=workers, pin_memory=True,
                                               drop_last=True, persistent_workers=workers > 0)
    ev = {"batch_size": 1024, "num_workers": workers, "pin_memory": True}
    return (train_loader, sampler, torch.utils.data.DataLoader(train_eval, **ev),
            torch.utils.data.DataLoader(test, **ev))


def fake(n_train: int, n_test: int, size: int, batch_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n_train, 3, size, size, generator=g), torch.randint(0, 10, (n_train,), generator=g)
    Xt, yt = torch.randn(n_test, 3, size, size, generator=g), torch.randint(0, 10, (n_test,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size,
                                         shuffle=True, generator=torch.Generator().manual_seed(seed))
    return loader, None, (X, y), (Xt, yt)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=os.environ.get("NCMARGIN_DATA", "data"))
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=350)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-checkpoints", type=int, default=20)
    p.add_argument("--subsample", type=int, default=0, help="recorded train samples per class (0 = all)")
    p.add_argument("--fake-data", action="store_true", help="random tensors instead of CIFAR-10")
    p.add_argument("--n-train", type=int, default=512)
    p.add_argument("--n-test", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(a.device)
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(a.seed)
    if a.fake_data:
        train_loader, sampler, rec_train, rec_test = fake(a.n_train, a.n_test, a.image_size, a.batch_size, a.seed)
        size = a.image_size
    else:
        train_loader, sampler, rec_train, rec_test = cifar10(a.data_root, a.workers, a.batch_size, world, rank)
        size = 32
    net = build_resnet18(10, size).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else net
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * e / a.epochs)))
    amp = device.type == "cuda"

    from ncmargin import Recorder

    rec = Recorder(a.out, model, train=rec_train, test=rec_test, epochs=a.epochs, num_checkpoints=a.num_checkpoints,
                   subsample=a.subsample, amp=amp,
                   metadata={"dataset": "fake" if a.fake_data else "cifar10", "model": "resnet18", "lr": a.lr,
                             "weight_decay": a.weight_decay, "batch_size": a.batch_size, "seed": a.seed,
                             "epochs": a.epochs, "optimizer": "sgd", "schedule": "cosine", "world_size": world})
    rec.epoch_end(0)
    for epoch in range(1, a.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * y.numel()
            count += y.numel()
        lr = sched.get_last_lr()[0]
        sched.step()
        line = rec.epoch_end(epoch, lr=lr, batch_loss=total / max(count, 1))
        if rank == 0 and line is not None:
            print(f"epoch {epoch}: loss {line['loss']:.4g} train acc {line['train_acc']:.4f} "
                  f"test acc {line['test_acc']:.4f} p_min {line['p_min']:.4g} ({time.perf_counter() - t0:.1f}s)",
                  flush=True)
    rec.close()
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
