"""Compiled row loops for the two passes of the NC metrics (docs/theory.md §6, "computed forms").

Each kernel does, in one read of the rows, what the numpy block code in ``nc.py`` does with several
full-block temporaries (gather of the class rows, subtraction, row norms, sparse one-hot class sums,
score matrices for NC4). The arithmetic is the same, in strict IEEE order (no fastmath: the theory side
keeps float64 results reproducible), so both paths agree to rounding (tested in tests/theory/test_nc.py).

Why hand-written loops: at N = 50,000, d = 512 on 2 cores the numpy block code of pass 1 (shifted class
sums) took 0.041 s and pass 2's centring, row norms and NC4 scoring 0.074 s at K = 100 -- together 0.7x
the cost of the floor (one float64 HᵀH, 0.17 s); these kernels take 0.014 s, 0.022 s and ~0.01 s
(benchmarks/bench_metrics.py prints the resulting ratio). They are used only for inputs with at least
``nc._KERNEL_MIN_ELEMS`` feature entries, where that saving exceeds the one-time load of the compiled
kernels (cached on disk by numba).
"""

from __future__ import annotations

from types import SimpleNamespace

_KERNELS = None


def kernels() -> SimpleNamespace:
    """The compiled kernels (built on first use; numba caches the machine code on disk)."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _build()
    return _KERNELS


def _build() -> SimpleNamespace:
    import numba

    @numba.njit(cache=True, nogil=True)
    def shifted_sums(H, y, counts, shift, sums, sq, want_sq):
        """Pass 1: for each row i of class c (in order), the first row of a class not seen before becomes
        its shift s_c; then ``sums[c] += h_i - s_c``, ``counts[c] += 1`` and (``want_sq``)
        ``sq[c] += ||h_i - s_c||^2``."""
        n, d = H.shape
        for i in range(n):
            c = y[i]
            if counts[c] == 0:
                for j in range(d):
                    shift[c, j] = H[i, j]
            counts[c] += 1
            for j in range(d):
                sums[c, j] += H[i, j] - shift[c, j]
            if not want_sq:
                continue
            # ||h_i - s_c||^2 with four interleaved partial sums (see centre)
            s0 = s1 = s2 = s3 = 0.0
            j = 0
            while j + 4 <= d:
                v0 = H[i, j] - shift[c, j]
                v1 = H[i, j + 1] - shift[c, j + 1]
                v2 = H[i, j + 2] - shift[c, j + 2]
                v3 = H[i, j + 3] - shift[c, j + 3]
                s0 += v0 * v0
                s1 += v1 * v1
                s2 += v2 * v2
                s3 += v3 * v3
                j += 4
            while j < d:
                v0 = H[i, j] - shift[c, j]
                s0 += v0 * v0
                j += 1
            sq[c] += (s0 + s1) + (s2 + s3)

    @numba.njit(cache=True, nogil=True)
    def centre(H, y, means, out, sq):
        """Pass 2: ``out[i] = h_i - mu_{y_i}`` and ``sq[y_i] += ||h_i - mu_{y_i}||^2``."""
        n, d = H.shape
        for i in range(n):
            c = y[i]
            for j in range(d):
                out[i, j] = H[i, j] - means[c, j]
            # ||c_i||^2 with four interleaved partial sums: one running sum is a chain of dependent additions
            # (~4 cycles each), which made the passes ~2x slower; the order is fixed, so the result is
            # deterministic (it differs from numpy's pairwise/SIMD order only by rounding). Written out here
            # and in shifted_sums: a shared jitted helper defeats numba's disk cache for its callers.
            s0 = s1 = s2 = s3 = 0.0
            j = 0
            while j + 4 <= d:
                s0 += out[i, j] * out[i, j]
                s1 += out[i, j + 1] * out[i, j + 1]
                s2 += out[i, j + 2] * out[i, j + 2]
                s3 += out[i, j + 3] * out[i, j + 3]
                j += 4
            while j < d:
                s0 += out[i, j] * out[i, j]
                j += 1
            sq[c] += (s0 + s1) + (s2 + s3)

    @numba.njit(cache=True, nogil=True)
    def squares(G, quad):
        """``quad[j] += sum_i G[i, j]^2``."""
        n, m = G.shape
        for i in range(n):
            for j in range(m):
                quad[j] += G[i, j] * G[i, j]

    @numba.njit(cache=True, nogil=True)
    def mismatches(L, GT, y, D2, off):
        """Rows whose argmax_k (L[i, k] + off[y_i, k]) differs from argmin_k (D2[y_i, k] - 2 GT[i, k])
        (lowest index on ties, as numpy's argmax/argmin)."""
        n, K = GT.shape
        count = 0
        for i in range(n):
            c = y[i]
            best_d = D2[c, 0] - 2.0 * GT[i, 0]
            ncc = 0
            best_l = L[i, 0] + off[c, 0]
            arg = 0
            for k in range(1, K):
                v = D2[c, k] - 2.0 * GT[i, k]
                if v < best_d:
                    best_d = v
                    ncc = k
                v = L[i, k] + off[c, k]
                if v > best_l:
                    best_l = v
                    arg = k
            if arg != ncc:
                count += 1
        return count

    return SimpleNamespace(shifted_sums=shifted_sums, centre=centre, squares=squares, mismatches=mismatches)
