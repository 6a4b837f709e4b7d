"""Array backends for the ridge solvers: numpy (default) and torch (CPU or CUDA).

A backend is chosen per estimator (no global state). The solvers only use the
arithmetic operators, ``.T``, ``.sum(axis=...)`` and indexing, which numpy arrays
and torch tensors share, plus the few methods below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg
from scipy.linalg import blas

BACKENDS = ("numpy", "torch")


class Backend:
    """Where and how the solver's arrays live.

    Parameters
    ----------
    name : {"numpy", "torch"}
    device : str, optional
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...). Default: CUDA when
        available, else the CPU. Must be left unset for numpy.
    """

    def __init__(self, name: str = "numpy", device: str | None = None):
        if name not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
        self.name = name
        if name == "numpy":
            if device not in (None, "cpu"):
                raise ValueError(f"device: the numpy backend runs on the CPU only, got {device!r}")
            self.device = "cpu"
            return
        try:
            import torch
        except ImportError as error:  # pragma: no cover - torch is a dependency
            raise ImportError("backend='torch' needs PyTorch: pip install torch") from error
        self._torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was requested but torch sees no CUDA device")
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={str(self.device)!r})"

    def _dtype(self, dtype: Any):
        if self.name == "torch" and isinstance(dtype, self._torch.dtype):
            return dtype
        dtype = np.dtype(dtype)
        if self.name == "numpy":
            return dtype
        return {np.dtype(np.float32): self._torch.float32, np.dtype(np.float64): self._torch.float64}[dtype]

    def asarray(self, x: Any, dtype: Any) -> Any:
        """``x`` on this backend's device as ``dtype`` (float32 or float64); no copy when possible."""
        if self.name == "numpy":
            return np.asarray(x, dtype=dtype)
        return self._torch.as_tensor(x, dtype=self._dtype(dtype), device=self.device)

    def index(self, idx: np.ndarray) -> Any:
        """Integer row indices usable on this backend's arrays."""
        if self.name == "numpy":
            return idx
        return self._torch.as_tensor(idx, dtype=self._torch.int64, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if self.name == "numpy":
            return x
        return x.detach().cpu().numpy()

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        if self.name == "numpy":
            return np.zeros(shape, dtype=dtype)
        return self._torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def sum64(self, x: Any) -> Any:
        """Column sums accumulated in float64."""
        if self.name == "numpy":
            return x.sum(axis=0, dtype=np.float64)
        return x.sum(dim=0, dtype=self._torch.float64)

    def gram(self, a: Any) -> Any:
        """``a @ a.T`` (symmetric, float64) at half the flops of a GEMM (BLAS syrk on numpy).

        The result is Fortran-ordered on numpy, so :meth:`eigh` with ``overwrite=True``
        decomposes it in place.
        """
        if self.name != "numpy":
            return a @ a.T
        a = np.asarray(a, dtype=np.float64)
        if a.flags.f_contiguous:
            c = blas.dsyrk(1.0, a, trans=0, lower=1)
        else:  # C order: a.T is Fortran-ordered, and (a.T)^T (a.T) = a a^T
            c = blas.dsyrk(1.0, np.ascontiguousarray(a).T, trans=1, lower=1)
        _mirror_lower(c)
        return c

    def eigh(self, a: Any, top: int | None = None, overwrite: bool = False) -> tuple[Any, Any]:
        """Eigenvalues (ascending, clipped at 0) and eigenvectors of a symmetric float64 matrix.

        ``top`` keeps only the largest ``top`` eigenpairs. ``overwrite``: ``a`` may be
        destroyed (numpy: the eigenvectors are computed in its memory when it is a
        Fortran-ordered float64 array, e.g. from :meth:`gram`).
        """
        if self.name == "numpy":
            if top is None or top >= a.shape[0]:
                w, v = linalg.eigh(a, driver="evd", overwrite_a=overwrite, check_finite=not overwrite)
            else:
                w, v = linalg.eigh(a, driver="evr", subset_by_index=[a.shape[0] - top, a.shape[0] - 1])
            return w.clip(min=0), v
        w, v = self._torch.linalg.eigh(a)
        if top is not None:
            w, v = w[-top:], v[:, -top:]
        return w.clip(min=0), v

    def cholesky_upper(self, a: Any) -> Any | None:
        """Upper factor ``R`` with ``R.T @ R == a``, or None when ``a`` is not positive definite."""
        if self.name == "numpy":
            try:
                return linalg.cholesky(a, lower=False)
            except linalg.LinAlgError:
                return None
        factor, info = self._torch.linalg.cholesky_ex(a, upper=True)
        return None if int(info) != 0 else factor

    def solve_spd(self, a: Any, b: Any) -> Any:
        """Solve ``a x = b`` for a symmetric positive definite ``a`` (a general solve if it is not)."""
        if self.name == "numpy":
            try:
                return linalg.cho_solve(linalg.cho_factor(a, lower=True, check_finite=False), b, check_finite=False)
            except linalg.LinAlgError:
                return np.linalg.solve(a, b)
        factor, info = self._torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            return self._torch.linalg.solve(a, b)
        return self._torch.cholesky_solve(b, factor)

    def subtract_outer(self, a: Any, x: Any, y: Any) -> Any:
        """``a -= outer(x, y)`` in place (BLAS ger on numpy: no ``a``-sized temporary); returns ``a``."""
        if self.name != "numpy":
            return a.sub_(self._torch.outer(x.to(a.dtype), y.to(a.dtype)))
        x, y = np.asarray(x, dtype=a.dtype), np.asarray(y, dtype=a.dtype)
        if not a.flags.c_contiguous:
            a -= np.outer(x, y)
            return a
        ger = blas.sger if a.dtype == np.float32 else blas.dger
        ger(-1.0, y, x, a=a.T, overwrite_a=1)  # a.T is Fortran-ordered: updated in place
        return a

    def triangular_matmul(self, upper: Any, b: Any) -> Any:
        """``upper @ b`` for an upper-triangular ``upper`` (BLAS trmm: half the flops of a GEMM)."""
        if self.name == "numpy":
            trmm = blas.strmm if upper.dtype == np.float32 else blas.dtrmm
            # b is C-ordered, so b.T is Fortran-ordered: compute (b.T @ upper.T).T without copies.
            return trmm(1.0, upper, b.T, side=1, trans_a=1, lower=0).T
        return upper @ b


def _mirror_lower(c: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle of the square ``c`` onto its upper one, in place, block by block."""
    n = c.shape[0]
    for start in range(0, n, block):
        stop = min(n, start + block)
        c[start:stop, stop:] = c[stop:, start:stop].T
        square = c[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]
