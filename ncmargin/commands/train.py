"""``ncmargin train``: cross-entropy training into the terminal phase, writing a run directory."""

from __future__ import annotations

HELP = "train a model into the terminal phase and checkpoint features (run directory: docs/formats.md)"
EXAMPLE = """\
ncmargin train quick_digits --out runs/quick
ncmargin train quick_digits --set epochs=50 --set lr=0.1 --out runs/short --quiet
ncmargin train --resume runs/quick                 # continue an interrupted run
ncmargin train paper_cifar10 --set data_root=/data --out runs/c10   # GPU, needs torchvision
ncmargin train --list                              # presets and every config key"""


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", help="preset name (see --list) or a JSON config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable); unknown keys are rejected")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last state")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms(True) (bitwise-reproducible CPU runs)")
    p.add_argument("--list", action="store_true", help="list presets and config keys, then exit")


def run(args) -> int:
    import dataclasses
    from pathlib import Path

    from ncmargin.empirical.config import TrainConfig, list_presets
    from ncmargin.empirical.train import train
    from ncmargin.store import load_run

    if args.list:
        print("presets:", ", ".join(list_presets()))
        print("config keys (default):")
        for f in dataclasses.fields(TrainConfig):
            print(f"  {f.name} = {f.default!r}")
        return 0
    overrides = list(args.overrides)
    if args.quiet:
        overrides.append("quiet=true")
    if args.deterministic:
        overrides.append("deterministic=true")
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise ValueError("--resume RUN_DIR continues in RUN_DIR; drop --out")
        run_dir = train(args.config, args.resume, resume=True, overrides=overrides or None)
    else:
        if not args.config:
            raise ValueError("give a CONFIG (a preset name or a JSON file; `ncmargin train --list` shows "
                             "the presets) or --resume RUN_DIR")
        if args.out:
            out = args.out
        else:  # the default run name comes from the config's name: one safe path component
            from ncmargin.store import run_path

            out = str(run_path("runs", Path(args.config).stem, "run name (from the CONFIG name; pass --out)"))
        run_dir = train(args.config, out, overrides=overrides)
    r = load_run(run_dir)
    last = r.log[-1] if r.log else {}
    print(f"run: {run_dir}  epochs: {last.get('epoch')}  onset of 100% train acc: {r.onset_epoch}  "
          f"train acc: {last.get('train_acc')}  test acc: {last.get('test_acc')}  loss: {last.get('loss')}  "
          f"p_min: {last.get('p_min')}  checkpoints: {r.checkpoint_epochs}")
    return 0
