"""Benchmark: exact certified multi-class SVM (ncmargin.solvers.multiclass_svm, working-set method)
against the cvxpy+Clarabel full reference and scikit-learn's LinearSVC (Crammer–Singer), issue 3.

    python benchmarks/bench_svm.py                       # the three issue sizes
    python benchmarks/bench_svm.py --sizes 5000,64,10    # one size
    python benchmarks/bench_svm.py --features RUN/checkpoints/epoch_0100.npz --split train

Synthetic "terminal-phase" features (make_features): class means on a scaled simplex ETF, anisotropic
within-class noise (a decaying spectrum in a random basis), and a few hard samples placed between two
class means (near the decision boundary). All solvers run in the same process; the table prints times,
objectives (½||W||² of the hard-margin problem; for LinearSVC at C=1e6 the hard-margin objective of its W
and its max violation), the certificate of our solver, and speed ratios. The cvxpy reference is run only
where the measured scaling predicts it finishes within --cvxpy-budget seconds (else a printed reason).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_features(N, d, K, seed=0, scale=4.0, noise=1.0, hard_frac=0.002):
    """(H, y, M): N samples in d dims, K balanced classes. Class means scale·M (M a unit simplex ETF),
    within-class noise of total std scale·noise/2 with spectrum ∝ 1/sqrt(j) in a random orthonormal basis,
    and a fraction hard_frac of samples moved 30-45% of the way towards another class mean."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((d, K)))
    if d >= K:
        M = np.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K) @ U.T
    else:
        raise ValueError(f"make_features needs d >= K (got d={d}, K={K})")
    y = np.arange(N) % K
    rng.shuffle(y)
    sd = noise * (np.arange(1, d + 1) ** -0.5)
    sd /= np.sqrt((sd ** 2).sum())
    R, _ = np.linalg.qr(rng.standard_normal((d, d)))
    E = (rng.standard_normal((N, d)) * sd) @ R.T
    H = scale * M[y] + scale * 0.5 * E
    nh = max(1, int(hard_frac * N))
    idx = rng.choice(N, nh, replace=False)
    k2 = (y[idx] + rng.integers(1, K, nh)) % K
    t = rng.uniform(0.3, 0.45, nh)[:, None]
    H[idx] = scale * ((1 - t) * M[y[idx]] + t * M[k2]) + \
        scale * 0.05 * (rng.standard_normal((nh, d)) @ R.T) / np.sqrt(d)
    return H, y, M


def _cvxpy_estimate(N, d, K):
    """Seconds predicted for the full cvxpy+Clarabel problem from the issue's measurements on this machine:
    ~13 s at (5k,32,10), ~65 s at (20k,32,10) (≈ N^1.16), and >290 s at (1k,512,10) (≳ d^1.7·N)."""
    base = 13.0 * (N / 5000) ** 1.16 * (K / 10) ** 1.5
    return base * max(1.0, (d / 32)) ** 1.7


def _hard_stats(H, y, W):
    from ncmargin.theory import margins

    p = margins(H, y, W)
    return 0.5 * float(np.sum(W * W)), max(0.0, float(1 - p.min()))


def bench(H, y, label, *, C=None, cvxpy_budget=600.0, run_svc=True, max_seconds=None):
    from ncmargin.solvers import multiclass_svm

    N, d = H.shape
    K = int(y.max()) + 1
    print(f"\n=== {label}: N={N} d={d} K={K} " + ("hard margin" if C is None else f"C={C}"), flush=True)
    rows = []
    sol = multiclass_svm(H, y, C=C, max_seconds=max_seconds)
    rows.append(("ncmargin working_set", sol.seconds, sol.objective, sol.max_violation, sol.duality_gap,
                 sol.status))
    print(f"  ours: {sol.seconds:.2f} s, status {sol.status}, objective {sol.objective:.12g}, "
          f"gap {sol.duality_gap:.2e}, max violation {sol.max_violation:.2e}, support {sol.n_support} "
          f"samples / {sol.support_pairs.shape[0]} pairs, rounds {sol.n_iter}, working set "
          f"{sol.working_set_size}, restricted QP {sol.info.get('seconds_restricted_qp', 0):.1f} s, "
          f"full passes {sol.info.get('seconds_full_passes', 0):.1f} s", flush=True)
    t_svc = None
    if run_svc:
        try:
            from sklearn.svm import LinearSVC
        except ImportError:
            print("  LinearSVC: skipped (scikit-learn not installed; pip install -e .[test])")
        else:
            Csvc = 1e6 if C is None else C
            t = time.perf_counter()
            clf = LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=Csvc, tol=1e-8,
                            max_iter=100_000).fit(H, y)
            t_svc = time.perf_counter() - t
            obj, viol = _hard_stats(H, y, clf.coef_)
            if C is not None:
                from ncmargin.theory import margins

                obj = obj + C * float(np.maximum(0, 1 - margins(H, y, clf.coef_)).sum())
            rows.append((f"LinearSVC CS C={Csvc:g}", t_svc, obj, viol, float("nan"), "uncertified"))
            print(f"  LinearSVC CS (C={Csvc:g}, tol=1e-8): {t_svc:.2f} s, objective {obj:.12g} "
                  f"(rel. diff to ours {(obj - sol.objective) / sol.objective:+.2e}), max violation "
                  f"{viol:.2e}; speed ratio LinearSVC/ours = {t_svc / sol.seconds:.2f}", flush=True)
    est = _cvxpy_estimate(N, d, K)
    if est > cvxpy_budget:
        print(f"  cvxpy+Clarabel reference: skipped, predicted ~{est:.0f} s > budget {cvxpy_budget:.0f} s "
              f"(issue measurements: 13 s at (5k,32,10), 65 s at (20k,32,10), >290 s at (1k,512,10))")
    else:
        ref = multiclass_svm(H, y, C=C, method="cvxpy")
        rows.append(("cvxpy+Clarabel (full)", ref.seconds, ref.objective, ref.max_violation,
                     ref.duality_gap, ref.status))
        print(f"  cvxpy+Clarabel: {ref.seconds:.2f} s, status {ref.status}, objective {ref.objective:.12g} "
              f"(rel. diff {(ref.objective - sol.objective) / sol.objective:+.2e}), ||W-W_ref||_max "
              f"{np.abs(ref.W - sol.W).max():.1e}; speed ratio cvxpy/ours = {ref.seconds / sol.seconds:.1f}",
              flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["5000,64,10", "50000,512,10", "50000,512,100"],
                    help="N,d,K triples")
    ap.add_argument("--features", default=None, help="a feature file (.npz) instead of synthetic data")
    ap.add_argument("--split", default=None, help="split of a trainer checkpoint (train/test)")
    ap.add_argument("--soft", type=float, default=None, help="soft margin C (default hard margin)")
    ap.add_argument("--cvxpy-budget", type=float, default=600.0, help="skip cvxpy if predicted above (s)")
    ap.add_argument("--no-svc", action="store_true", help="skip LinearSVC")
    ap.add_argument("--max-seconds", type=float, default=None, help="time limit for our solver")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=1.0, help="within-class noise level (default 1)")
    ap.add_argument("--hard-frac", type=float, default=0.002, help="fraction of near-boundary samples")
    a = ap.parse_args(argv)
    import os

    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    table = []
    if a.features:
        from ncmargin.io import load_features

        fs = load_features(a.features, split=a.split)
        table += [(a.features, *r) for r in bench(fs.features, fs.labels, a.features, C=a.soft,
                                                   cvxpy_budget=a.cvxpy_budget, run_svc=not a.no_svc,
                                                   max_seconds=a.max_seconds)]
    else:
        for s in a.sizes:
            N, d, K = (int(v) for v in s.split(","))
            H, y, _ = make_features(N, d, K, seed=a.seed, noise=a.noise, hard_frac=a.hard_frac)
            table += [(s, *r) for r in bench(H, y, f"synthetic terminal phase ({s})", C=a.soft,
                                             cvxpy_budget=a.cvxpy_budget, run_svc=not a.no_svc,
                                             max_seconds=a.max_seconds)]
    print("\n| size (N,d,K) | solver | seconds | objective | max violation | rel. gap | status |")
    print("|---|---|---|---|---|---|---|")
    for size, name, sec, obj, viol, gap, st in table:
        print(f"| {size} | {name} | {sec:.2f} | {obj:.10g} | {viol:.1e} | {gap:.1e} | {st} |")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
