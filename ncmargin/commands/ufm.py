"""``ncmargin ufm``: gradient dynamics of the unconstrained feature model under unregularized CE."""

from __future__ import annotations

from ncmargin.errors import positive_float

HELP = "gradient descent on the unregularized UFM cross-entropy over (W, H) in float64; logs margins and NC"
EXAMPLE = """\
ncmargin ufm --classes 4 --per-class 5 --dim 6 --steps 2000 --out runs/ufm
ncmargin ufm --classes 10 --per-class 20 --dim 16 --steps 3000 --step loss_adaptive --lr 0.1"""


def add_arguments(p) -> None:
    p.add_argument("--classes", "-K", type=int, required=True, help="number of classes K (>= 2)")
    p.add_argument("--per-class", "-n", type=int, required=True, help="samples per class n")
    p.add_argument("--dim", "-d", type=int, required=True, help="feature dimension d (>= K-1)")
    p.add_argument("--steps", "-T", type=int, required=True, help="gradient steps")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="step size (default 1.0 for --step gd, 0.1 for loss_adaptive)")
    p.add_argument("--init-scale", type=positive_float, default=0.1, help="std of the Gaussian init of W and H")
    p.add_argument("--step", choices=("gd", "loss_adaptive"), default="gd",
                   help="gd: fixed lr; loss_adaptive: lr / (L log(1/L)) (Lyu & Li 2020), much faster margin growth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--logs", type=int, default=40, help="number of log-spaced records")
    p.add_argument("--out", help="directory for ufm.jsonl, ufm_config.json, ufm_final.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ncmargin.empirical.ufm import ufm_dynamics

    lr = args.lr if args.lr is not None else (1.0 if args.step == "gd" else 0.1)
    recs = ufm_dynamics(args.classes, args.per_class, args.dim, args.steps, lr=lr, init_scale=args.init_scale,
                        step=args.step, seed=args.seed, num_logs=args.logs, out=args.out, quiet=args.quiet)
    print(f"{'step':>8} {'loss':>11} {'p_min':>10} {'norm.margin':>11} {'sandwich':>8} {'nc1_topk':>10} "
          f"{'nc3':>10}")
    for r in recs:
        print(f"{r['step']:>8d} {r['loss']:>11.4e} {r['p_min']:>10.4g} {r['normalized_margin']:>11.5g} "
              f"{r['sandwich_holds']!s:>8} {r['nc1_topk']:>10.3e} {r['nc3_self_duality']:>10.3e}")
    print(f"optimal UFM normalized margin 1/((K-1) sqrt(n)) = {recs[-1]['normalized_margin_optimal']:.6g}")
    if "stopped" in recs[-1]:
        print(f"stopped early: {recs[-1]['stopped']}")
    if args.out:
        print(f"wrote {args.out}/ufm.jsonl, ufm_config.json, ufm_final.npz")
    return 0 if all(r["sandwich_holds"] for r in recs) else 1
