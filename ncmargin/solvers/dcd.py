"""Dual coordinate descent driver of the multi-class SVM (docs/theory.md §3 "algorithm"): the active
pairs (slots), the passes over all pairs that grow and shrink them, the rounds around the compiled kernel
of ``_dcd.py``, and the feasible rescale of a hard-margin iterate."""

from __future__ import annotations

import time

import numpy as np

from ._dcd import kernel
from .certificate import chunk_rows, class_means, pair_violations, violation_chunks
from .limits import NotSeparableSuspect, Stop
from .separability import lp_separable
from .status import Status

__all__ = ["feasible_hard", "run_dcd", "run_dcd_continue"]


def _sqnorms(be, limits=None):
    N = be.H.shape[0]
    out = np.empty(N)
    step = chunk_rows(N, 1, be.d, limits)
    for s in range(0, N, step):
        e = min(N, s + step)
        R = be.rows(s, e)
        out[s:e] = np.einsum("nd,nd->n", R, R)
    if be.bias_val:
        out += be.bias_val ** 2
    return out


class _Slots:
    """Active pairs of DCD: per sample up to T classes (act_k, -1 = empty) and their multipliers."""

    def __init__(self, N, T):
        self.act_k = np.full((N, T), -1, dtype=np.int32)
        self.alpha = np.zeros((N, T))
        self.n_act = np.zeros(N, dtype=np.int32)

    @property
    def T(self):
        return self.act_k.shape[1]

    def nbytes(self, T=None):
        T = self.T if T is None else T
        return self.act_k.shape[0] * (12 * T + 4)

    def round_bytes(self, T=None):
        """Peak bytes of a DCD round with T slots per sample, measured against ``max_memory_bytes``: the
        slots (12 T per sample), the pass's slot violations (8 T) and the keep mask with its two operands
        (3 T), plus O(N) vectors (norms, hinge, order, n_act, skip flags, pass results: 48 per sample);
        ``keep`` and ``grow`` work in row chunks, so their temporaries are chunk-sized."""
        T = self.T if T is None else T
        return self.act_k.shape[0] * (23 * T + 48)

    def pairs(self):
        """Flat (i, k, α) of the occupied slots."""
        mask = np.arange(self.T)[None, :] < self.n_act[:, None]
        ii, tt = np.nonzero(mask)
        return ii.astype(np.int64), self.act_k[ii, tt].astype(np.int64), self.alpha[ii, tt].copy()

    def grow(self, T_new):
        N, T = self.act_k.shape
        a = np.full((N, T_new), -1, dtype=np.int32)
        a[:, :T] = self.act_k
        self.act_k = a
        al = np.zeros((N, T_new))
        al[:, :T] = self.alpha
        self.alpha = al

    def add(self, ii, kk):
        """Append pairs (ii sorted or not; at most one entry per (i, k), none already present)."""
        if ii.size == 0:
            return
        order = np.argsort(ii, kind="stable")
        ii, kk = ii[order], kk[order]
        first = np.searchsorted(ii, ii, side="left")
        rank = np.arange(ii.size) - first
        pos = self.n_act[ii] + rank
        self.act_k[ii, pos] = kk
        self.alpha[ii, pos] = 0.0
        np.add.at(self.n_act, ii, 1)

    def keep(self, mask):
        """Keep the occupied slots where mask (N, T) is True, compacting each row (in place, in row chunks of
        at most 2^16 slots, so the sort's temporaries stay small whatever N is)."""
        N, T = self.act_k.shape
        cols = np.arange(T)[None, :]
        step = max(1, (1 << 16) // max(T, 1))
        for s in range(0, N, step):
            e = min(N, s + step)
            m = mask[s:e] & (cols < self.n_act[s:e, None])
            order = np.argsort(~m, axis=1, kind="stable")
            self.act_k[s:e] = np.take_along_axis(self.act_k[s:e], order, axis=1)
            self.alpha[s:e] = np.take_along_axis(self.alpha[s:e], order, axis=1)
            self.n_act[s:e] = m.sum(axis=1)
            self.act_k[s:e][cols >= self.n_act[s:e, None]] = -1


def _dcd_pass(be, y, W, slots, C, add_per, add_floor, limits):
    """One pass over all N(K-1) pairs: max KKT violation of α = 0 pairs (1 - m_ik - ξ^ws_i, with ξ^ws_i
    the slack the active pairs of a sample at Σα = C require), the violation of each occupied slot, and up
    to ``add_per`` most violated pairs per sample outside the slots (violation > add_floor)."""
    N, K = be.H.shape[0], W.shape[0]
    T = slots.T
    slot_v = np.full((N, T), -np.inf)
    hinge = np.empty(N)
    new_i, new_k, new_v = [], [], []
    vmax = -np.inf
    step = chunk_rows(N, K + T, W.shape[1], limits)
    t_start = time.perf_counter()
    for s, e, V in violation_chunks(be, y, W, step, limits):
        hinge[s:e] = V.max(axis=1)
        ak = slots.act_k[s:e]
        occ = ak >= 0
        akc = np.where(occ, ak, 0)
        Vs = np.where(occ, np.take_along_axis(V, akc, axis=1), -np.inf)
        if C is not None:
            A = slots.alpha[s:e].sum(axis=1)
            xi = np.where(A >= C * (1 - 1e-9), np.maximum(Vs.max(axis=1, initial=-np.inf), 0.0), 0.0)
            V -= xi[:, None]
            Vs = Vs - xi[:, None]
        slot_v[s:e] = Vs
        rr, cc = np.nonzero(occ)
        V[rr, akc[rr, cc]] = -np.inf
        vmax = max(vmax, float(V.max()))
        if add_per >= 1:
            t = min(add_per, K - 1)
            top = np.argpartition(-V, t - 1, axis=1)[:, :t] if t < K else np.argsort(-V, axis=1)[:, :t]
            tv = np.take_along_axis(V, top, axis=1)
            ri, ci = np.nonzero(tv > add_floor)
            new_i.append(ri + s)
            new_k.append(top[ri, ci])
            new_v.append(tv[ri, ci])
    limits.measured_pass(time.perf_counter() - t_start)
    ni = np.concatenate(new_i) if new_i else np.zeros(0, np.int64)
    nk = np.concatenate(new_k) if new_k else np.zeros(0, np.int64)
    nv = np.concatenate(new_v) if new_v else np.zeros(0)
    return vmax, slot_v, hinge, ni.astype(np.int64), nk.astype(np.int64), nv


def run_dcd(be, y, K, C, limits, info, *, tol_final, gap_target, max_rounds, verbose, seed=0, state=None):
    """Dual coordinate descent with shrinking on the scaled problem. Returns (W, slots, status) where
    status is None (the certified relative gap of the full problem, estimated from the pass — hard margin
    with W/(1-ε), soft margin with ξ(W) — is below ``gap_target``) or a limit Status."""
    sweeps = kernel()
    N = be.H.shape[0]
    dd = be.d + (1 if be.bias_val else 0)
    sq = be.sq if getattr(be, "sq", None) is not None else _sqnorms(be, limits)
    Cn = -1.0 if C is None else float(C)
    if state is None:
        W = np.zeros((K, dd))
        T0 = min(K - 1, 2)
        if limits.mem is not None and N * (23 * T0 + 48) > 0.7 * limits.mem:
            raise Stop(Status.MEMORY_LIMIT)
        slots = _Slots(N, T0)
        info["_dcd_state"] = (W, slots)
        # first candidates: the pairs the centred class-mean classifier finds least separated
        Mu = class_means(be, y, K, limits)
        _, v0, k0, _ = pair_violations(be, y, Mu, np.zeros(N), per_sample=T0, limits=limits)
        v0, k0 = v0.reshape(N, -1), k0.reshape(N, -1)  # (N,) when T0 = 1
        # only the samples least separated by the class means start active (the others enter when a pass
        # finds them violated): starting all N from W = 0 makes every sample a (temporary) support vector
        n0 = min(N, max(1000, 20 * K, N // 10))
        first = np.argsort(-v0.max(axis=1), kind="stable")[:n0].astype(np.int64)
        n_start = n0 * T0
        slots.add(np.repeat(first, T0), k0[first].ravel().astype(np.int64))
        tol_in = 2e-2
    else:
        W, slots = state["W"], state["slots"]
        tol_in = 1e-4
        n_start = int(slots.n_act.sum())
    next_lp = 5
    t_sweep = t_pass = 0.0
    n_sweeps_total = 0
    rounds = info.setdefault("dcd_rounds", [])
    rng = np.random.default_rng(seed)
    status = Status.ITERATION_LIMIT
    for rnd in range(1, max_rounds + 1):
        # --- sweeps over the active pairs (batches, so the time limit is checked between them)
        ts = time.perf_counter()
        order = np.flatnonzero(slots.n_act > 0).astype(np.int64)
        maxd = np.inf
        n0 = n_sweeps_total
        batch = 1
        while order.size:
            if limits.out_of_time():
                raise Stop(Status.TIME_LIMIT)
            tb = time.perf_counter()
            done, maxd = sweeps(be.H, be.inv_s, float(be.bias_val), y, W, sq, slots.act_k, slots.alpha,
                                slots.n_act, order, Cn, batch, tol_in, int(rng.integers(2 ** 31)))
            n_sweeps_total += done
            if maxd <= tol_in:
                break
            el = time.perf_counter() - tb
            left = max(0.0, limits.left_for_work())
            # batches of ~0.5 s (or a tenth of the time left before the reserve for the closing passes)
            batch = int(max(1, min(1000, batch * 2 if el < 0.25 else batch, (min(0.5, left / 10) / max(
                el / max(done, 1), 1e-6)))))
            if n_sweeps_total - n0 > 500:  # per round; the pass below decides what comes next
                break
        t_sweep += time.perf_counter() - ts
        # --- pass over all pairs
        tp = time.perf_counter()
        vmax, slot_v, hinge, ni, nk, nv = _dcd_pass(be, y, W, slots, C, add_per=min(K - 1, 4),
                                                add_floor=max(tol_in, tol_final), limits=limits)
        t_pass += time.perf_counter() - tp
        n_act = int(slots.n_act.sum())
        # certified gap of this iterate (docs §3): D = Σα - ½||W||², P_ub from the pass
        nW2 = float(np.sum(W * W))
        D = float(slots.alpha.sum()) - 0.5 * nW2
        if C is None:
            eps = max(0.0, float(hinge.max()))
            P = 0.5 * nW2 / (1 - eps) ** 2 if eps < 1 else np.inf
        else:
            P = 0.5 * nW2 + C * float(np.maximum(hinge, 0.0).sum())
        gap = (P - D) / max(abs(P), 1e-300) if np.isfinite(P) else np.inf
        rounds.append({"round": rnd, "active_pairs": n_act, "max_violation": vmax, "sweep_tol": tol_in,
                       "last_change": float(maxd), "new": int(ni.size), "sweeps": n_sweeps_total,
                       "gap": gap})
        if verbose:
            print(f"[svm/dcd] round {rnd}: active {n_act} pairs, new-pair violation {vmax:.3e}, gap {gap:.2e}, "
                  f"sweep tol {tol_in:.1e}, new {ni.size}, sweeps {n_sweeps_total}")
        if C is None and rnd >= next_lp and np.any(hinge >= 1.0):
            # still misclassifying after several rounds: ask the separating LP on the suspects (the
            # active samples and the misclassified ones); infeasible = proof of non-separability
            next_lp *= 2
            sub = np.union1d(np.flatnonzero(slots.n_act > 0), np.flatnonzero(hinge >= 1.0))
            if sub.size > 4000:
                sub = np.flatnonzero(hinge >= 1.0)[:4000]
            r = lp_separable(be, y, K, sub, limits)
            info.setdefault("lp_checks", []).append({"round": rnd, "samples": int(sub.size), "separable": r})
            if r is False:
                raise NotSeparableSuspect(sub, f"still {int(np.sum(hinge >= 1.0))} misclassified after {rnd} DCD rounds")
        info["_dcd_pass"] = (W.copy(), hinge)  # the last pass, for the feasibility rescale
        if gap <= gap_target:
            status = None
            break
        # --- shrink: pairs at α = 0 whose margin exceeds what they require by a clear amount
        keep = (slots.alpha > 0) | (slot_v > -max(0.1, 10 * tol_in))
        del slot_v  # before the slots may grow (Slots.round_bytes)
        slots.keep(keep)
        del keep
        # --- grow: the most violated new pairs, at most as many as are active (plus the first batch size),
        # so that a poor early W does not pull every sample in (measured: all 200k samples of a well
        # separated d = 16 problem entered in round 2 and DCD then needed thousands of sweeps)
        cap_new = max(n_start, int(slots.n_act.sum()))
        if ni.size > cap_new:
            sel = np.argpartition(-nv, cap_new - 1)[:cap_new]
            ni, nk = ni[sel], nk[sel]
        if ni.size:
            need = int((slots.n_act + np.bincount(ni, minlength=N)).max())
            if need > slots.T:
                T_new = min(K - 1, max(need, 2 * slots.T))
                # the round's peak with T_new slots, and the copy of the old slots while growing
                if limits.mem is not None and max(slots.round_bytes(T_new), slots.nbytes(T_new) + slots.nbytes()
                                                  ) > 0.7 * limits.mem:
                    raise Stop(Status.MEMORY_LIMIT)
                slots.grow(T_new)
            slots.add(ni, nk)
        tol_in = max(tol_final, tol_in * 0.02)
    info["dcd_sweeps"] = info.get("dcd_sweeps", 0) + n_sweeps_total
    info["seconds_dcd_sweeps"] = info.get("seconds_dcd_sweeps", 0.0) + t_sweep
    info["seconds_dcd_passes"] = info.get("seconds_dcd_passes", 0.0) + t_pass
    info["_dcd_state"] = (W, slots)
    return W, slots, status


def run_dcd_continue(be, y, K, C, limits, info, W, slots, gap_tol, max_iter, verbose):
    """Continue DCD (same W, slots) to a tight tolerance."""
    info.setdefault("dcd_restarts", 0)
    info["dcd_restarts"] += 1
    state = {"W": W, "slots": slots}
    return run_dcd(be, y, K, C, limits, info, tol_final=1e-12, gap_target=0.1 * gap_tol,
                    max_rounds=max_iter, verbose=verbose, state=state)


def feasible_hard(be, y, W, last_pass=None):
    """Hard margin: W/(1-ε) is feasible when W violates the constraints by ε < 1 (docs §3); returns it.
    ε comes from the last DCD pass when W has not changed since (else from a new pass); the certificate
    then re-measures the violation of the returned W on the full problem."""
    if last_pass is not None and np.array_equal(last_pass[0], W):
        vmax = float(last_pass[1].max())
    else:
        vmax, _, _, _ = pair_violations(be, y, W, np.zeros(be.H.shape[0]), limits=None)
    if 0 < vmax < 1.0:
        return W / (1.0 - vmax)
    return W
