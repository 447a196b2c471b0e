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

Numerics: the accumulator shifts each class by its first sample s_c and sums the shifted rows
r_i = h_i - s_{y_i} (per class sum r_i, sum ||r_i||^2, pooled sum r_i r_i^T); the centred scatter is
sum r r^T - sum_c n_c m_c m_c^T with m_c = mu_c - s_c (the "shifted data" algorithm; Chan, Golub &
LeVeque 1983, "Algorithms for computing the sample variance"). Since s_c is a sample of class c, m_c is
of the size of the within-class spread, so nothing like the cancellation of ``E[hh^T] - mu mu^T`` occurs
(collapsed features far from the origin keep their within-class scatter to relative accuracy ~eps; tested
against long double). Memory is O(K d + d^2) whatever N is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse
import scipy.spatial.distance

from .checks import check_classifier, check_features, check_num_classes, row_slices

__all__ = [
    "NCAccumulator",
    "class_means",
    "nc_metrics",
    "nc_metrics_streaming",
    "scatter_matrices",
]

# Row blocks of 2^21 float64 elements (16 MiB: 4,096 rows at d = 512), reused as one buffer: at
# N = 50,000, d = 512 on a 2-core machine, 32 MiB blocks made the shift subtraction ~3x slower and 1,024-row
# blocks made the N x K products ~3x slower (per-call BLAS overhead).
_BLOCK_ELEMS = 1 << 21


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
    """Streaming first pass for the NC metrics: counts, class means, pooled within-class scatter and
    per-class squared spread, in O(K d + d^2) memory.

    Numerics: each class c is shifted by its first sample s_c (a "shifted data" accumulation), so
    ``r = h - s_c`` is computed (often exactly, Sterbenz) before anything is summed; the sums of r,
    ||r||^2 and r r^T are then centred once, at the end, by m_c = mu_c - s_c, which is of the size of the
    within-class spread. So tight or far-off-origin clusters keep their within-class scatter to relative
    accuracy ~eps (a raw Gram ``H^T H - sum n_c mu_c mu_c^T`` would not). The shift depends only on the
    first sample of each class in stream order, hence not on how the stream is chunked. Cost: one gemm of
    the shifted rows (the floor H^T H) plus O(N d) passes over cache-sized blocks.

    ``update(H_chunk, y_chunk)`` may be called with chunks of any size (including classes missing
    from a chunk). Attributes after updates: ``counts`` (K,), ``means`` (K, d), ``within_scatter``
    (d x d, sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T), ``class_sq_spread`` (K,, sum over class c of
    ||h_i - mu_c||^2), ``num_samples``.
    """

    def __init__(self, K, d):
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
        self._gram = np.zeros((self.d, self.d))

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
        return self._gram - self._sum.T @ self.shifted_means

    @property
    def class_sq_spread(self) -> np.ndarray:
        """Per class ``sum_{i in c} ||h_i - mu_c||^2`` = ``sum ||r_i||^2 - n_c ||m_c||^2``."""
        return self._sq - np.einsum("ij,ij->i", self._sum, self.shifted_means)

    def update(self, H_chunk, y_chunk) -> NCAccumulator:
        H, y, _ = check_features(H_chunk, y_chunk, self.K, allow_empty_class=True)
        if H.shape[1] != self.d:
            raise ValueError(f"chunk has feature dimension {H.shape[1]} but the accumulator was built "
                             f"with d = {self.d}; pass chunks of the same width.")
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
        self._gram += R.T @ R
        self._sum += _class_sums(R, y, K)
        self._sq += np.bincount(y, weights=np.einsum("ij,ij->i", R, R), minlength=K)
        self.counts += np.bincount(y, minlength=K)

    def check_complete(self) -> None:
        empty = np.flatnonzero(self.counts == 0)
        if empty.size:
            shown = ", ".join(str(int(c)) for c in empty[:10]) + (" ..." if empty.size > 10 else "")
            raise ValueError(f"class with no sample: classes {shown} of K = {self.K} received no sample "
                             f"in the stream; pass features for every class or the right K.")

    def covariances(self):
        """``(Sigma_W, Sigma_B, mu_G)`` with the weighting of the module docstring."""
        self.check_complete()
        N = float(self.num_samples)
        cnt = self.counts.astype(np.float64)
        mu_G = (cnt[:, None] * self.means).sum(axis=0) / N
        Mc = self.means - mu_G
        Sigma_B = (Mc * (cnt / N)[:, None]).T @ Mc
        return self.within_scatter / N, Sigma_B, mu_G


def _nc1(Sigma_W, Mc, weights, K):
    """NC1 = Tr(Sigma_W Sigma_B^dagger)/K (Papyan et al. 2020, Fig. 6) in two variants from one
    decomposition: ``topk`` uses the top K-1 eigenpairs of Sigma_B (as Papyan et al.'s code, via svds);
    ``pinv`` the full pseudo-inverse, keeping eigenvalues > d * eps * lambda_max (numpy's matrix_rank
    tolerance). With Sigma_B^dagger = V diag(1/lambda) V^T, Tr(Sigma_W Sigma_B^dagger) =
    sum_j v_j^T Sigma_W v_j / lambda_j.

    Sigma_B = A^T A with A = diag(sqrt(n_c/N)) Mc (K x d) has rank <= K: its eigenvalues are those of
    the K x K matrix A A^T = U diag(lambda) U^T (the other d - K are 0) and its eigenvectors are
    v_j = A^T u_j / ||A^T u_j|| (docs/theory.md §6). One K x K eigh replaces the d x d one (both have
    eigenvalue errors ~ eps * lambda_max); the d x d eigh and even numpy's SVD of A measured 100x slower
    under a loaded 2-core machine (OpenBLAS threads in small LAPACK calls)."""
    d = Mc.shape[1]
    A = Mc * np.sqrt(weights)[:, None]
    lam, U = np.linalg.eigh(A @ A.T)
    lam, U = lam[::-1], U[:, ::-1]  # descending
    lam_max = max(float(lam[0]), 0.0)
    if lam_max == 0.0:
        return np.inf, np.inf  # all class means coincide: no between-class spread
    V = A.T @ U  # d x K
    nrm = np.linalg.norm(V, axis=0)
    V /= np.where(nrm > 0, nrm, 1.0)
    quad = np.einsum("ij,ij->j", V, Sigma_W @ V)  # v_j^T Sigma_W v_j
    tol = d * np.finfo(np.float64).eps * lam_max
    r = min(K - 1, d)
    lam_top = lam[:r]
    nc1_topk = float(np.sum(quad[:r] / lam_top) / K) if np.all(lam_top > 0) else np.inf
    keep = lam > tol
    nc1_pinv = float(np.sum(quad[keep] / lam[keep]) / K)
    return nc1_topk, nc1_pinv


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


def _ncc_mismatch_count(H, y, means, W, b) -> int:
    """Number of rows where argmax_k (w_k.h + b_k) differs from the nearest class mean
    argmin_c ||h - mu_c||^2 (Papyan et al. 2020, NC4, Fig. 7)."""
    # distances are computed about the mean of the class means, which removes a common offset
    # (||h - mu_c||^2 - ||h||^2 = ||mu_c||^2 - 2 h.mu_c loses digits when ||mu_c|| >> ||mu_c - mu_c'||);
    # the logits use the same centred rows, w_k.h + b_k = w_k.(h - center) + (w_k.center + b_k), so both
    # come from ONE gemm of the centred block with [Mc; W]^T (N x 2K)
    K = means.shape[0]
    center = means.mean(axis=0)
    Mc = means - center
    sq = np.sum(Mc * Mc, axis=1)
    P = np.ascontiguousarray(np.concatenate([Mc, W]).T)  # d x 2K
    offset = W @ center
    if b is not None:
        offset = offset + b
    count = 0
    buf = None
    for sl in row_slices(H.shape[0], H.shape[1], _BLOCK_ELEMS):
        Hb = H[sl]
        if buf is None:
            buf = np.empty(Hb.shape)
        Z = np.subtract(Hb, center, out=buf[: Hb.shape[0]]) @ P
        ncc = np.argmin(sq - 2.0 * Z[:, :K], axis=1)
        logits = Z[:, K:]
        logits += offset
        count += int(np.count_nonzero(np.argmax(logits, axis=1) != ncc))
    return count


def _finish(acc: NCAccumulator, W, b, mismatch_count) -> dict:
    K = acc.K
    Sigma_W, Sigma_B, mu_G = acc.covariances()
    Mc = acc.means - mu_G
    nc1_topk, nc1_pinv = _nc1(Sigma_W, Mc, acc.counts / float(acc.num_samples), K)
    out = {
        "nc1_topk": nc1_topk,
        "nc1_pinv": nc1_pinv,
    }
    out.update(_nc2(Mc, "nc2", "means"))
    if W is not None:
        out.update(_nc2(W, "nc2", "classifier"))
        out["nc3_self_duality"] = _nc3(W, Mc)
        out["nc4_ncc_mismatch"] = mismatch_count / acc.num_samples
    else:
        for k in ("nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc2_maxangle_classifier",
                  "nc3_self_duality", "nc4_ncc_mismatch"):
            out[k] = None
    out["cdnv"] = _cdnv(acc.means, acc.counts.astype(np.float64), acc.class_sq_spread)
    out["within_cov_trace"] = float(np.trace(Sigma_W))
    out["between_cov_trace"] = float(np.trace(Sigma_B))
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
    H, y, K = check_features(H, y, K)
    if W is not None:
        W, b = check_classifier(W, b, K, H.shape[1])
    elif b is not None:
        raise ValueError("a bias b was given without a classifier W; pass W too (or b=None).")
    acc = NCAccumulator(K, H.shape[1]).update(H, y)
    mismatch = _ncc_mismatch_count(H, y, acc.means, W, b) if W is not None else None
    return _finish(acc, W, b, mismatch)


def nc_metrics_streaming(chunks: Callable[[], Iterable], K, W=None, b=None) -> dict:
    """The same metrics as :func:`nc_metrics`, streamed over chunks in O(K d + d^2) memory.

    ``chunks`` is a zero-argument callable returning a fresh iterator of ``(H_chunk, y_chunk)``. Pass
    1 feeds an :class:`NCAccumulator`; pass 2 (only when W is given) counts NC4's NCC mismatches with
    the final class means. Both passes must see the same data.
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
            acc = NCAccumulator(K, Hc_arr.shape[1])
        acc.update(Hc, yc)
    if acc is None:
        raise ValueError("chunks() yielded no chunk; pass a callable whose iterator yields (H, y) pairs.")
    acc.check_complete()
    mismatch = None
    if W is not None:
        W, b = check_classifier(W, b, K, acc.d)
        mismatch, seen = 0, 0
        for Hc, yc in chunks():
            Hc, yc, _ = check_features(Hc, yc, K, allow_empty_class=True)
            mismatch += _ncc_mismatch_count(Hc, yc, acc.means, W, b)
            seen += Hc.shape[0]
        if seen != acc.num_samples:
            raise ValueError(f"the second pass over chunks() saw {seen} samples but the first saw "
                             f"{acc.num_samples}; chunks must return the same data on every call.")
    elif b is not None:
        raise ValueError("a bias b was given without a classifier W; pass W too (or b=None).")
    return _finish(acc, W, b, mismatch)
