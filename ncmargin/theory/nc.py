"""Neural-collapse metrics (docs/theory.md §6), in memory and streamed.

Definitions follow Papyan, Han & Donoho (2020), "Prevalence of neural collapse during the terminal
phase of deep learning training", PNAS 117(40), Sec. 3 / Figs. 2-7, and CDNV follows Galanti, Gyorgy
& Hutter (2022), "On the role of neural collapse in transfer learning", ICLR, Def. 1 (squared
distances). Each result key names its variant.

Weighting [our form for unbalanced classes]: with n_c samples in class c and N = sum n_c,

    mu_G    = (1/N) sum_i h_i                                (global sample mean)
    Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T (pooled within-class covariance)
    Sigma_B = sum_c (n_c/N) (mu_c - mu_G)(mu_c - mu_G)^T    (between-class covariance)
    Sigma_T = (1/N) sum_i (h_i - mu_G)(h_i - mu_G)^T       = Sigma_W + Sigma_B exactly.

For balanced classes n_c/N = 1/K, which is Papyan's Sigma_B "divided by K", and mu_G is also the mean
of the class means, so all of these coincide with Papyan et al.

Numerics, two passes over the rows (docs/theory.md §6, "computed forms"):

* pass 1 shifts each class by its first sample s_c and sums the shifted rows r_i = h_i - s_{y_i} per class
  (the "shifted data" algorithm; Chan, Golub & LeVeque 1983, "Algorithms for computing the sample
  variance"): the class means come out accurate relative to the within-class spread, far from the origin too;
* pass 2 centres every row by its class mean, c_i = h_i - mu_{y_i}, and multiplies the centred rows by
  [V | W^T], V an orthonormal eigenbasis of Sigma_B (K columns): NC1 needs only v_j^T Sigma_W v_j =
  (1/N) sum_i (c_i.v_j)^2, a sum of squares (no cancellation), NC4 takes its distances and logits from the
  same product, and Tr Sigma_W and the CDNV spreads are sums of ||c_i||^2.

No d x d matrix is formed: the cost is one N x d x 2K product plus two reads of H, below one H^T H
(benchmarks/bench_metrics.py). ``NCAccumulator`` also keeps the d x d within-class scatter for callers who
want Sigma_W itself (``scatter=True``, the default). Memory is O(K d) (+ d^2 with the scatter) whatever N is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse
import scipy.spatial.distance

from . import _nc_kernels
from .checks import check_classifier, check_features, check_matrix, check_num_classes, row_slices

__all__ = [
    "NCAccumulator",
    "class_means",
    "nc_metrics",
    "nc_metrics_streaming",
    "scatter_matrices",
]

# Row blocks of pass 2: 2^19 float64 elements (4 MiB: 1,024 rows at d = 512), reused as one buffer. At
# N = 50,000, d = 512, K = 100 on a 2-core machine, 512-1,024-row blocks were fastest (the centred block
# stays in cache for the product); 4,096-row blocks were 1.1-1.7x slower, 128-row blocks no faster.
_BLOCK_ELEMS = 1 << 19
# Inputs with at least this many feature entries use the compiled row loops of _nc_kernels (same arithmetic);
# below it the numpy block code is faster than loading the compiled kernels once per process.
_KERNEL_MIN_ELEMS = 1 << 22


def _use_kernels(H: np.ndarray) -> bool:
    return H.size >= _KERNEL_MIN_ELEMS


def _gram(R: np.ndarray) -> np.ndarray:
    """``R^T R`` (d x d) for R (n x d) as one BLAS gemm. (syrk would halve the flops, but OpenBLAS's
    syrk measured ~1.5x slower than its gemm here at n = 50,000, d = 512.)"""
    return R.T @ R


def _class_sums(H: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """Per-class sums (K x d) as a sparse one-hot (K x n) times H: O(n d) work. The one-hot is built in
    CSC form straight from y (column i holds a 1 in row y_i: no sort), and CSC @ dense adds the rows of H
    in sample order; measured ~4x faster than the COO -> CSR build at n = 4,096, d = 512, K = 10 and 100."""
    n = H.shape[0]
    onehot = scipy.sparse.csc_matrix((np.ones(n), y, np.arange(n + 1)), shape=(K, n))
    return np.asarray(onehot @ H)


def class_means(H, y, K=None) -> np.ndarray:
    """Class means ``mu_c = (1/n_c) sum_{i: y_i = c} h_i`` as a (K, d) array (every class needs a sample)."""
    H, y, K = check_features(H, y, K)
    counts = np.bincount(y, minlength=K).astype(np.float64)
    return _class_sums(H, y, K) / counts[:, None]


def scatter_matrices(H, y, K=None):
    """Direct (two-pass, in-memory) covariances ``(Sigma_T, Sigma_W, Sigma_B, mu_G, means)``.

    Weighting as in the module docstring (population covariances, divide by N; Sigma_B weights class
    c by n_c/N), so ``Sigma_T = Sigma_W + Sigma_B`` holds exactly in exact arithmetic. Sigma_T and
    Sigma_W are computed from explicitly centred rows (independently of each other), which makes the
    identity a genuine check.
    """
    H, y, K = check_features(H, y, K)
    N, d = H.shape
    counts = np.bincount(y, minlength=K).astype(np.float64)
    means = _class_sums(H, y, K) / counts[:, None]
    mu_G = H.mean(axis=0)
    S_T = np.zeros((d, d))
    S_W = np.zeros((d, d))
    for sl in row_slices(N, d):
        S_T += _gram(np.ascontiguousarray(H[sl] - mu_G))
        S_W += _gram(np.ascontiguousarray(H[sl] - means[y[sl]]))
    Mc = means - mu_G
    Sigma_B = (Mc * (counts / N)[:, None]).T @ Mc
    return S_T / N, S_W / N, Sigma_B, mu_G, means


class NCAccumulator:
    """Streaming first pass for the NC metrics: counts, class means and per-class squared spread in
    O(K d) memory, and (``scatter=True``, the default) the pooled within-class scatter in O(d^2) more.

    Numerics: each class c is shifted by its first sample s_c (a "shifted data" accumulation), so
    ``r = h - s_c`` is computed (often exactly, Sterbenz) before anything is summed; the sums of r,
    ||r||^2 and r r^T are then centred once, at the end, by m_c = mu_c - s_c, which is of the size of the
    within-class spread. So tight or far-off-origin clusters keep their means and within-class scatter to
    relative accuracy ~eps (a raw Gram ``H^T H - sum n_c mu_c mu_c^T`` would not). The shift depends only
    on the first sample of each class in stream order, hence not on how the stream is chunked. Cost: O(N d)
    passes, plus one gemm of the shifted rows (the cost of H^T H) when the scatter is kept.

    ``update(H_chunk, y_chunk)`` may be called with chunks of any size (including classes missing
    from a chunk). Attributes after updates: ``counts`` (K,), ``means`` (K, d), ``within_scatter``
    (d x d, sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T; only with ``scatter=True``), ``class_sq_spread``
    (K,, sum over class c of ||h_i - mu_c||^2), ``num_samples``.
    """

    def __init__(self, K, d, *, scatter: bool = True, spread: bool = True):
        self.K = check_num_classes(K)
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or int(d) < 1:
            raise ValueError(f"d must be a positive integer feature dimension, got {d!r}.")
        self.d = int(d)
        self.counts = np.zeros(self.K, dtype=np.int64)
        self.shift = np.zeros((self.K, self.d))
        # raw sums of the shifted rows r_i = h_i - s_{y_i}: per class sum_i r_i and sum_i ||r_i||^2, and
        # the pooled sum_i r_i r_i^T; centred statistics are formed from them on demand (see below)
        self._sum = np.zeros((self.K, self.d))
        self._sq = np.zeros(self.K)
        self._spread = bool(spread)  # nc_metrics takes the spreads from its second pass and skips them here
        self._gram = np.zeros((self.d, self.d)) if scatter else None

    @property
    def num_samples(self) -> int:
        return int(self.counts.sum())

    @property
    def shifted_means(self) -> np.ndarray:
        """Class means of the shifted rows ``mu_c - s_c`` (K, d) (0 for classes not yet seen)."""
        cnt = np.maximum(self.counts, 1).astype(np.float64)
        return self._sum / cnt[:, None]

    @property
    def means(self) -> np.ndarray:
        """Class means (K, d) (rows of classes not yet seen are 0)."""
        return self.shift + self.shifted_means

    @property
    def within_scatter(self) -> np.ndarray:
        """``sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` = ``sum_i r_i r_i^T - sum_c n_c m_c m_c^T`` with
        m_c = mu_c - s_c the shifted class mean (docs/theory.md §6, streaming)."""
        if self._gram is None:
            raise ValueError("this NCAccumulator was built with scatter=False and keeps no d x d scatter; "
                             "build it with NCAccumulator(K, d, scatter=True) to get within_scatter.")
        return self._gram - self._sum.T @ self.shifted_means

    @property
    def class_sq_spread(self) -> np.ndarray:
        """Per class ``sum_{i in c} ||h_i - mu_c||^2`` = ``sum ||r_i||^2 - n_c ||m_c||^2``."""
        if not self._spread:
            raise ValueError("this NCAccumulator was built with spread=False and keeps no per-class spread; "
                             "build it with NCAccumulator(K, d, spread=True) to get class_sq_spread.")
        return self._sq - np.einsum("ij,ij->i", self._sum, self.shifted_means)

    def update(self, H_chunk, y_chunk) -> NCAccumulator:
        H, y, _ = check_features(H_chunk, y_chunk, self.K, allow_empty_class=True)
        if H.shape[1] != self.d:
            raise ValueError(f"chunk has feature dimension {H.shape[1]} but the accumulator was built "
                             f"with d = {self.d}; pass chunks of the same width.")
        return self._add(H, y)

    def _add(self, H, y) -> NCAccumulator:
        """``update`` on already checked rows (float64 C-contiguous H, int64 y in 0..K-1)."""
        if self._gram is None and _use_kernels(H):
            _nc_kernels.kernels().shifted_sums(H, y, self.counts, self.shift, self._sum, self._sq, self._spread)
            return self
        buf = None
        for sl in row_slices(H.shape[0], self.d, _BLOCK_ELEMS):
            if buf is None:
                buf = np.empty((sl.stop - sl.start, self.d))
            self._update_block(H[sl], y[sl], buf[: sl.stop - sl.start])
        return self

    def _update_block(self, H, y, buf):
        K = self.K
        if H.shape[0] == 0:
            return
        cls, first = np.unique(y, return_index=True)
        new = self.counts[cls] == 0
        self.shift[cls[new]] = H[first[new]]
        np.take(self.shift, y, axis=0, out=buf)
        R = np.subtract(H, buf, out=buf)  # r_i = h_i - s_{y_i}, in one cache-sized block buffer
        if self._gram is not None:
            self._gram += R.T @ R
        self._sum += _class_sums(R, y, K)
        if self._spread:
            self._sq += np.bincount(y, weights=np.einsum("ij,ij->i", R, R), minlength=K)
        self.counts += np.bincount(y, minlength=K)

    def check_complete(self) -> None:
        empty = np.flatnonzero(self.counts == 0)
        if empty.size:
            shown = ", ".join(str(int(c)) for c in empty[:10]) + (" ..." if empty.size > 10 else "")
            raise ValueError(f"class with no sample: classes {shown} of K = {self.K} received no sample "
                             f"in the stream; pass features for every class or the right K.")

    def covariances(self):
        """``(Sigma_W, Sigma_B, mu_G)`` with the weighting of the module docstring (needs ``scatter=True``)."""
        self.check_complete()
        N = float(self.num_samples)
        cnt = self.counts.astype(np.float64)
        mu_G = (cnt[:, None] * self.means).sum(axis=0) / N
        Mc = self.means - mu_G
        Sigma_B = (Mc * (cnt / N)[:, None]).T @ Mc
        return self.within_scatter / N, Sigma_B, mu_G


class _CentredPass:
    """Pass 2 of the NC metrics over rows centred by their class means (docs/theory.md §6, "computed
    forms"), given the exact class means of pass 1.

    Sigma_B = Mc^T diag(n/N) Mc with Mc^T = Q R (thin QR: Q orthonormal, d x m, m = min(d, K)), so its
    nonzero eigenpairs are those of the m x m matrix R diag(n/N) R^T = Z diag(lam) Z^T, with orthonormal
    eigenvectors V = Q Z. Every centred row block C is multiplied once by P = [V | W^T]:
      * NC1: quad_j = sum_i (c_i.v_j)^2 = N v_j^T Sigma_W v_j (squares only: no cancellation);
      * NC4: ||h_i - mu_k||^2 = ||mu_{y_i} - mu_k||^2 + 2 c_i.(mu_{y_i} - mu_k) + ||c_i||^2, so the nearest
        mean is argmin_k ||mu_{y_i} - mu_k||^2 - 2 c_i.Mc_k (c_i.mu_G does not depend on k), and
        c_i.Mc_k = (C V)_i . (V^T Mc^T)_k since V spans the rows of Mc; the logits are
        w_k.h_i + b_k = (C W^T)_{ik} + (mu_{y_i}.w_k + b_k);
      * sum over class c of ||c_i||^2 (CDNV, Tr Sigma_W), computed directly.
    """

    def __init__(self, means, counts, W, b):
        K = means.shape[0]
        self.K = K
        self.num_samples = int(counts.sum())
        w = counts.astype(np.float64) / self.num_samples
        self.means = means
        self.Mc = means - w @ means
        # (nc_metrics rescales features beyond ~1e+-90 first, so these squares stay inside float64)
        Q, R = np.linalg.qr(self.Mc.T)  # d x m, m x K
        lam, Z = np.linalg.eigh((R * w) @ R.T)  # Sigma_B in the basis Q
        self.lam, Z = lam[::-1], Z[:, ::-1]  # descending
        V = Q @ Z
        self.m = V.shape[1]
        self.has_W = W is not None
        if self.has_W:
            self.T = np.ascontiguousarray(Z.T @ R)  # V^T Mc^T (m x K)
            self.D2 = scipy.spatial.distance.squareform(
                scipy.spatial.distance.pdist(means, "sqeuclidean"))  # direct differences
            self.off = means @ W.T
            if b is not None:
                self.off += b
            V = np.concatenate([V, W.T], axis=1)
        self.P = np.ascontiguousarray(V)
        self.quad = np.zeros(self.m)
        self.sq = np.zeros(K)
        self.mismatch = 0
        self.seen = 0

    def update(self, H, y) -> None:
        kern = _nc_kernels.kernels() if _use_kernels(H) else None
        buf = None
        for sl in row_slices(H.shape[0], H.shape[1], _BLOCK_ELEMS):
            n = sl.stop - sl.start
            if buf is None:
                buf = np.empty((n, H.shape[1]))
            self._block(H[sl], y[sl], buf[:n], kern)
        self.seen += H.shape[0]

    def _block(self, H, y, C, kern):
        m = self.m
        if kern is not None:
            kern.centre(H, y, self.means, C, self.sq)
        else:
            np.take(self.means, y, axis=0, out=C)
            np.subtract(H, C, out=C)
            self.sq += np.bincount(y, weights=np.einsum("ij,ij->i", C, C), minlength=self.K)
        Zb = C @ self.P
        G = Zb[:, :m]
        if kern is not None:
            kern.squares(G, self.quad)
        else:
            self.quad += np.einsum("ij,ij->j", G, G)
        if self.has_W:
            GT = G @ self.T
            L = Zb[:, m:]
            if kern is not None:
                self.mismatch += kern.mismatches(L, GT, y, self.D2, self.off)
            else:
                ncc = np.argmin(self.D2[y] - 2.0 * GT, axis=1)
                self.mismatch += int(np.count_nonzero(np.argmax(L + self.off[y], axis=1) != ncc))

    def nc1(self):
        """NC1 = Tr(Sigma_W Sigma_B^dagger)/K (Papyan et al. 2020, Fig. 6) = sum_j (quad_j/N)/lam_j / K in two
        variants: ``topk`` over the top K-1 eigenpairs of Sigma_B (as Papyan et al.'s code, via svds; +inf if
        one of them is <= 0); ``pinv`` over the eigenvalues > d * eps * lam_max (numpy's matrix_rank
        tolerance). One m x m eigh replaces the d x d one (same eigenvalue error ~eps * lam_max)."""
        K, d = self.K, self.P.shape[0]
        lam = self.lam
        lam_max = max(float(lam[0]), 0.0)
        if lam_max == 0.0:
            return np.inf, np.inf  # all class means coincide: no between-class spread
        vq = self.quad / self.num_samples  # v_j^T Sigma_W v_j
        r = min(K - 1, d)
        nc1_topk = float(np.sum(vq[:r] / lam[:r]) / K) if np.all(lam[:r] > 0) else np.inf
        keep = lam > d * np.finfo(np.float64).eps * lam_max
        return nc1_topk, float(np.sum(vq[keep] / lam[keep]) / K)


def _nc2(rows: np.ndarray, prefix: str, suffix: str) -> dict:
    """NC2 on the rows of a K x d matrix (Papyan et al. 2020, Figs. 2-4): equinorm = std/mean of the
    row norms; equiangular = std of the pairwise cosines over pairs c < c'; maxangle = mean over
    c != c' of |cos + 1/(K-1)|. std is the population std (ddof = 0); Papyan et al.'s code uses the
    unbiased std, which is sqrt(m/(m-1)) times ours for m values [our choice: defined for K = 2]."""
    K = rows.shape[0]
    norms = np.linalg.norm(rows, axis=1)
    mean_norm = norms.mean()
    out = {}
    out[f"{prefix}_equinorm_{suffix}"] = float(norms.std() / mean_norm) if mean_norm > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        U = rows / norms[:, None]
    cos = U @ U.T
    iu = np.triu_indices(K, 1)
    c = cos[iu]
    out[f"{prefix}_equiangular_{suffix}"] = float(c.std())
    out[f"{prefix}_maxangle_{suffix}"] = float(np.mean(np.abs(c + 1.0 / (K - 1))))
    return out


def _nc3(W, Mc) -> float:
    """NC3 self-duality ``|| W/||W||_F - Mc/||Mc||_F ||_F^2`` with Mc the centred means (Papyan et al.
    2020, Fig. 5; W in rows, so no transpose)."""
    nw, nm = np.linalg.norm(W), np.linalg.norm(Mc)
    if nw == 0 or nm == 0:
        return np.nan
    return float(np.sum((W / nw - Mc / nm) ** 2))


def _cdnv(means, counts, class_sq_spread) -> float:
    """CDNV (Galanti et al. 2022, Def. 1, squared distances): mean over class pairs c < c' of
    ``(sigma_c^2 + sigma_c'^2) / (2 ||mu_c - mu_c'||^2)``, sigma_c^2 = mean_{i in c} ||h_i - mu_c||^2."""
    K = means.shape[0]
    var = class_sq_spread / counts
    iu = np.triu_indices(K, 1)  # same pair order as pdist's condensed output
    diff2 = scipy.spatial.distance.pdist(means, "sqeuclidean")  # direct differences: no cancellation
    with np.errstate(divide="ignore"):
        return float(np.mean((var[iu[0]] + var[iu[1]]) / (2.0 * diff2)))


def _finish(acc: NCAccumulator, second: _CentredPass, W, f: float = 1.0) -> dict:
    """The result dict from the two passes; ``f``: the factor pass 2's rows were multiplied by (the traces are
    divided by f² to report them for the caller's H; every other metric is invariant)."""
    K = acc.K
    N = float(second.num_samples)
    Mc = second.Mc
    nc1_topk, nc1_pinv = second.nc1()
    out = {
        "nc1_topk": nc1_topk,
        "nc1_pinv": nc1_pinv,
    }
    out.update(_nc2(Mc, "nc2", "means"))
    if W is not None:
        out.update(_nc2(W, "nc2", "classifier"))
        out["nc3_self_duality"] = _nc3(W, Mc)
        out["nc4_ncc_mismatch"] = second.mismatch / N
    else:
        for k in ("nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc2_maxangle_classifier",
                  "nc3_self_duality", "nc4_ncc_mismatch"):
            out[k] = None
    counts = acc.counts.astype(np.float64)
    out["cdnv"] = _cdnv(second.means, counts, second.sq)
    out["within_cov_trace"] = float(second.sq.sum() / N) / f / f
    out["between_cov_trace"] = float(np.sum(counts / N * np.einsum("ij,ij->i", Mc, Mc))) / f / f
    out["num_classes"] = K
    out["num_samples"] = acc.num_samples
    return out


def nc_metrics(H, y, W=None, b=None) -> dict:
    """Neural-collapse metrics of features ``H`` (N x d) with labels ``y`` (and classifier W (K x d),
    bias b) (docs/theory.md §6; Papyan, Han & Donoho 2020; Galanti et al. 2022).

    Keys: ``nc1_topk``, ``nc1_pinv``, ``nc2_{equinorm,equiangular,maxangle}_{means,classifier}``,
    ``nc3_self_duality``, ``nc4_ncc_mismatch``, ``cdnv``, ``within_cov_trace`` (Tr Sigma_W),
    ``between_cov_trace`` (Tr Sigma_B), ``num_classes``, ``num_samples``. Classifier-based keys are None
    when ``W`` is None. K = W.shape[0] if W is given, else max(y)+1; every class needs a sample.
    Ideal values on an exactly collapsed simplex ETF: every key 0 (NC2 max-angle/equiangular/equinorm,
    NC1, NC3, NC4, CDNV).
    """
    K = None
    if W is not None:
        W_arr = np.asarray(W)
        if W_arr.ndim != 2:
            raise ValueError(f"classifier W must be a 2-D array (K x d), got shape {W_arr.shape}.")
        K = W_arr.shape[0]
    # the NaN/Inf scan of H is left to pass 1: a non-finite entry makes its class sum non-finite, and only
    # then is H scanned for the error naming its rows (one read of H saved, ~4% of the cost at 50k x 512)
    H, y, K = check_features(H, y, K, finite=False)
    if W is not None:
        W, b = check_classifier(W, b, K, H.shape[1])
    elif b is not None:
        raise ValueError("a bias b was given without a classifier W; pass W too (or b=None).")
    acc = NCAccumulator(K, H.shape[1], scatter=False, spread=False)._add(H, y)
    if not np.isfinite(acc._sum).all():
        check_matrix(H, "features H")  # raises, naming the rows (finite rows that overflow pass, as before)
    f = _rescale_factor(acc)
    second = _CentredPass(acc.means * f, acc.counts, W, None if b is None else b * f)
    second.update(H * f if f != 1.0 else H, y)
    return _finish(acc, second, W, f)


def _rescale_factor(acc: NCAccumulator) -> float:
    """1, or the power of two f that brings the largest |entry| of the class shifts (samples) and means to ~1
    when it lies outside [2^-300, 2^300] (~1e-90 ... 1e90). Pass 2 then works on f h (and f b): squares of
    means and projections would otherwise under/overflow float64 (at 1e-200 Sigma_B's eigenvalues are 0).
    Every metric but the two traces is invariant under h -> f h, b -> f b (NC4's argmax too), and f is a power
    of two, so the scaling is exact (docs/theory.md §6)."""
    with np.errstate(over="ignore"):
        amax = max(float(np.abs(acc.shift).max()), float(np.abs(acc.means).max()))
    if amax == 0.0 or not np.isfinite(amax) or 2.0 ** -300 <= amax <= 2.0 ** 300:
        return 1.0
    return float(2.0 ** -np.round(np.log2(amax)))


def nc_metrics_streaming(chunks: Callable[[], Iterable], K, W=None, b=None) -> dict:
    """The same metrics as :func:`nc_metrics`, streamed over chunks in O(K d) memory.

    ``chunks`` is a zero-argument callable returning a fresh iterator of ``(H_chunk, y_chunk)``; it is
    called twice: pass 1 feeds an :class:`NCAccumulator` (class means), pass 2 centres every row by its
    class mean (NC1, NC4, spreads). Both passes must see the same data.
    """
    if not callable(chunks):
        raise ValueError("chunks must be a zero-argument callable returning a fresh iterator of "  # noqa: TRY004 (project rule: bad input is a ValueError)
                         "(H_chunk, y_chunk) pairs, e.g. `lambda: iter(pairs)` or a generator function; "
                         "it is called once per pass.")
    K = check_num_classes(K)
    acc = None
    for Hc, yc in chunks():
        if acc is None:
            Hc_arr = np.asarray(Hc)
            if Hc_arr.ndim != 2:
                raise ValueError(f"features chunk must be 2-D (n x d), got shape {Hc_arr.shape}.")
            acc = NCAccumulator(K, Hc_arr.shape[1], scatter=False, spread=False)
        acc.update(Hc, yc)
    if acc is None:
        raise ValueError("chunks() yielded no chunk; pass a callable whose iterator yields (H, y) pairs.")
    acc.check_complete()
    if W is not None:
        W, b = check_classifier(W, b, K, acc.d)
    elif b is not None:
        raise ValueError("a bias b was given without a classifier W; pass W too (or b=None).")
    f = _rescale_factor(acc)
    second = _CentredPass(acc.means * f, acc.counts, W, None if b is None else b * f)
    for Hc, yc in chunks():
        Hc, yc, _ = check_features(Hc, yc, K, allow_empty_class=True)
        if Hc.shape[1] != acc.d:
            raise ValueError(f"chunk has feature dimension {Hc.shape[1]} in the second pass but {acc.d} in "
                             f"the first; chunks must return the same data on every call.")
        second.update(Hc * f if f != 1.0 else Hc, yc)
    if second.seen != acc.num_samples:
        raise ValueError(f"the second pass over chunks() saw {second.seen} samples but the first saw "
                         f"{acc.num_samples}; chunks must return the same data on every call.")
    return _finish(acc, second, W, f)
