"""Classical hole filling: harmonic (Laplace) and biharmonic interpolation.

Both solve a sparse linear system over the hole pixels only, with the visible pixels
around them as boundary values. They are the baselines every learned model is measured
against, and the biharmonic fill is the base the network corrects.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import ndimage


def _laplacian(ny: int, nx: int) -> sp.csr_matrix:
    """5-point Laplacian on an ny x nx grid with reflecting (Neumann) edges."""

    def second_diff(n: int) -> sp.csr_matrix:
        d = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="lil")
        if n > 1:
            d[0, 0] = -1
            d[n - 1, n - 1] = -1
        else:
            d[0, 0] = 0
        return d.tocsr()

    return (sp.kron(sp.identity(ny), second_diff(nx)) + sp.kron(second_diff(ny), sp.identity(nx))).tocsr()


def _solve_on_box(values: np.ndarray, hole: np.ndarray, order: int) -> np.ndarray:
    ny, nx = values.shape
    lap = _laplacian(ny, nx)
    op = lap if order == 1 else (lap @ lap).tocsr()
    flat_hole = hole.ravel()
    unknown = np.flatnonzero(flat_hole)
    known = np.flatnonzero(~flat_hole)
    x_known = values.ravel()[known].astype(np.float64)
    # order 1: L x = 0 on the hole; order 2: L(L x) = 0 on the hole (L symmetric)
    a = op[unknown][:, unknown]
    b = -op[unknown][:, known] @ x_known
    sol = spla.spsolve(a.tocsc(), b)
    out = values.astype(np.float64).copy().ravel()
    out[unknown] = sol
    return out.reshape(ny, nx)


def _fill(values: np.ndarray, hole: np.ndarray, order: int, margin: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    hole = np.asarray(hole, dtype=bool) | ~np.isfinite(values)
    out = values.copy()
    if not hole.any():
        return out
    if hole.all():
        raise ValueError("cannot fill: every pixel is masked, no boundary values")
    labels, n = ndimage.label(hole)
    for sl, lab in zip(ndimage.find_objects(labels), range(1, n + 1)):
        r0 = max(sl[0].start - margin, 0)
        r1 = min(sl[0].stop + margin, hole.shape[0])
        c0 = max(sl[1].start - margin, 0)
        c1 = min(sl[1].stop + margin, hole.shape[1])
        box_hole = labels[r0:r1, c0:c1] == lab
        box_vals = out[r0:r1, c0:c1].copy()
        # other holes inside the box stay unknown too (solved jointly, then discarded)
        other = hole[r0:r1, c0:c1] & ~box_hole
        box_vals[other | box_hole] = 0.0
        solved = _solve_on_box(box_vals, box_hole | other, order)
        out[r0:r1, c0:c1][box_hole] = solved[box_hole]
    return out


def harmonic_fill(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (and NaNs) with the solution of Laplace's equation (membrane)."""
    return _fill(values, hole, order=1, margin=1)


def biharmonic_fill(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (and NaNs) with the biharmonic solution (thin plate, smooth slopes)."""
    return _fill(values, hole, order=2, margin=2)
