"""``ncmargin svm``: the exact, certified multi-class max-margin classifier of a feature file."""

from __future__ import annotations

from ncmargin.errors import positive_float

HELP = "solve the exact (certified) multi-class SVM on a feature file and print its JSON summary"
EXAMPLE = """
ncmargin svm features.npz                         # hard margin; exits 2 if not separable
ncmargin svm run/checkpoints/epoch_0100.npz --split train --bias --out svm.json
ncmargin svm features.npz --soft 1.0 --method cvxpy --tol 1e-9
"""


def add_arguments(p) -> None:
    p.add_argument("features", metavar="FEATURES.npz", help="feature file (docs/formats.md)")
    p.add_argument("--soft", type=positive_float, default=None, metavar="C",
                   help="soft margin (Crammer-Singer hinge) with penalty C; default: hard margin")
    p.add_argument("--bias", action="store_true",
                   help="fit a bias (a constant feature is appended, so the bias is regularized)")
    p.add_argument("--method", choices=("auto", "dcd", "working_set", "cvxpy"), default="auto",
                   help="auto: dual coordinate descent + exact finish (default); dcd; working_set; "
                        "cvxpy: full reference problem")
    p.add_argument("--max-seconds", type=positive_float, default=None, help="wall-time limit (status time_limit)")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="products over the data with numpy or torch (CPU threads, CUDA when available)")
    p.add_argument("--tol", type=positive_float, default=1e-8, help="max constraint violation for 'optimal' (1e-8)")
    p.add_argument("--gap-tol", type=positive_float, default=1e-6, help="relative duality gap for 'optimal' (1e-6)")
    p.add_argument("--split", choices=("train", "test"), default=None,
                   help="which split of a trainer checkpoint (train_/test_ arrays) to use")
    p.add_argument("--out", metavar="SOL.json", default=None, help="also write the summary here (atomic)")
    p.add_argument("--no-arrays", action="store_true", help="omit W, b and support indices from the output")


def run(args) -> int:
    import json

    from ncmargin.io import atomic_write_json, load_features, to_jsonable
    from ncmargin.solvers import Status, multiclass_svm

    fs = load_features(args.features, split=args.split)
    K = fs.num_classes if fs.classifier is not None else None
    sol = multiclass_svm(fs.features, fs.labels, C=args.soft, bias=args.bias, tol=args.tol,
                         gap_tol=args.gap_tol, method=args.method, K=K, max_seconds=args.max_seconds,
                         backend=args.backend)
    summary = sol.to_dict(include_arrays=not args.no_arrays)
    summary.pop("rounds", None)
    summary["features"] = str(fs.path)
    summary["split"] = fs.split
    if args.out:
        atomic_write_json(args.out, summary)
    print(json.dumps(to_jsonable(summary), indent=2, allow_nan=False))
    return 0 if sol.status == Status.OPTIMAL else 1
