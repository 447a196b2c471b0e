"""``ncmargin extract``: saved state dicts of someone else's training -> a run directory."""

from __future__ import annotations

HELP = "turn saved checkpoints (state dicts) of any model into a run directory (docs/recorder.md)"
EXAMPLE = """\
ncmargin extract --model mypkg.nets:resnet18 --kwargs '{"num_classes": 10}' \\
    --weights 'ckpts/epoch_*.pt' --data cifar10_eval.npz --out runs/theirs
ncmargin extract --model mypkg.nets:SmallCNN --weights 'w/*.pt' --epochs 1,10,100 --data mnist5k --out R
ncmargin extract --model torchvision.models:resnet18 --kwargs '{"num_classes": 10}' \\
    --weights 'c/*.pt' --data torchvision:CIFAR10:/data --normalize 0.49,0.48,0.45/0.25,0.24,0.26 --out R
ncmargin analyze R                                  # then the usual analysis"""


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, metavar="PKG.MODULE:FACTORY",
                   help="callable that builds the (untrained) model; must be importable")
    p.add_argument("--kwargs", default=None, metavar="JSON", help="keyword arguments for the factory (JSON)")
    p.add_argument("--weights", required=True, metavar="GLOB",
                   help="state-dict files (quote the glob); loaded with torch.load(weights_only=True)")
    p.add_argument("--epochs", default=None,
                   help="comma-separated epochs, one per file in sorted name order (default: the last "
                        "integer of each file name)")
    p.add_argument("--data", required=True,
                   help="FILE.npz (images, labels[, test_images, test_labels]), a registry dataset "
                        "(digits, mnist5k, cifar10, ...) or torchvision:NAME:ROOT")
    p.add_argument("--data-set", dest="data_set", action="append", default=[], metavar="KEY=VALUE",
                   help="registry dataset option (TrainConfig key, e.g. data_root=/data, n_per_class=500)")
    p.add_argument("--normalize", default=None, metavar="MEANS/STDS",
                   help="torchvision data: per-channel normalization, e.g. 0.5,0.5,0.5/0.25,0.25,0.25")
    p.add_argument("--head", default=None, help="dotted name of the classifier layer (default: automatic)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata for config.json (e.g. weight_decay=5e-4, lr=0.1); JSON values parsed")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory to create")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=1024, help="evaluation batch size (tensors)")
    p.add_argument("--subsample", type=int, default=0, help="at most this many train samples per class")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for the forward passes")
    p.add_argument("--spectral", action="store_true",
                   help="also store the whole-network spectral complexity per checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _kv(items, what: str) -> dict:
    import json

    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"{what} {it!r}: use KEY=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def run(args) -> int:
    import json

    from ncmargin.empirical.extract import extract_run
    from ncmargin.empirical.runs import load_run

    try:
        kwargs = json.loads(args.kwargs) if args.kwargs else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"--kwargs {args.kwargs!r}: not valid JSON ({exc})") from None
    epochs = None
    if args.epochs:
        try:
            epochs = [int(e) for e in args.epochs.split(",") if e.strip()]
        except ValueError:
            raise ValueError(f"--epochs {args.epochs!r}: use integers like 1,10,100") from None
    normalize = None
    if args.normalize:
        try:
            m, s = args.normalize.split("/")
            normalize = ([float(v) for v in m.split(",")], [float(v) for v in s.split(",")])
        except ValueError:
            raise ValueError(f"--normalize {args.normalize!r}: use MEANS/STDS like 0.5,0.5,0.5/0.2,0.2,0.2") \
                from None
    out = extract_run(args.out, args.model, args.weights, data=args.data, epochs=epochs, factory_kwargs=kwargs,
                      head=args.head, metadata=_kv(args.meta, "--meta"),
                      data_options=_kv(args.data_set, "--data-set"), normalize=normalize, device=args.device,
                      eval_batch_size=args.batch_size, subsample=args.subsample, amp=args.amp,
                      spectral=args.spectral, quiet=args.quiet)
    r = load_run(out)
    last = r.log[-1] if r.log else {}
    print(f"run: {out}  checkpoints: {r.checkpoint_epochs}  onset (as resolved by the checkpoints): "
          f"{r.onset_epoch}  last train acc: {last.get('train_acc')}  test acc: {last.get('test_acc')}")
    return 0
