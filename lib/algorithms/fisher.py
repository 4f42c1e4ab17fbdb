"""Empirical Fisher on a parameter subset P: exact powers F^p, WoodFisher inverse products, and
the two Newton-style updates (Fisher Removal, Fisher Forgetting) as pure functions.

The matrix (d = |P|, m per-example gradients g_i stacked as the rows of G, m x d):

    F = lambda * I + (1/m) * sum_i g_i g_i^T = lambda * I + (1/m) G^T G

Gram form (exact for every real power p). K = (1/m) G G^T (m x m) = V S V^T, and
U = G^T V S^(-1/2) / sqrt(m) (d x r, orthonormal columns) gives (1/m) G^T G = U S U^T, so

    F^p v = lambda^p (v - U U^T v) + U (lambda + S)^p U^T v
          = lambda^p v + U ((lambda + S)^p - lambda^p) U^T v.

U is never stored: U^T v = C^T (G v) and U y = G^T (C y) with C = V S^(-1/2) / sqrt(m) (m x r),
so the only d-sized memory is G itself. Cost: O(m^2 d) once (the Gram matrix; the m x m eigh is
O(m^3)), then O(m d) per product. Products run in `compute_dtype` (float64 by default: the
Gram matrix of float32 gradients is then exact to rounding and the small eigen-directions are
reliable); G stays float32 and is converted in column chunks.

Near-zero eigenvalues. K is positive semi-definite with rank <= min(m, d); duplicated examples,
m > d or numerically dependent gradients give eigenvalues at rounding level whose
eigenvectors (and hence U's columns, which divide by sqrt(S)) are noise. Directions with
S_k <= rtol * max(S) (default rtol = 1e-10) are dropped, i.e. F is taken as lambda there. That is
exact when S_k << lambda (the usual case: rounding-level S_k); the module logs a warning when a
dropped S_k exceeds 1% of lambda, because F^p along it is then off by ((lambda + S_k)/lambda)^p.

WoodFisher form (p = -1 only; Singh & Alistarh 2020). Sherman-Morrison over the gradients:
F_0^-1 = I / lambda, F_i^-1 = F_(i-1)^-1 - u_i u_i^T / (m + g_i^T u_i), u_i = F_(i-1)^-1 g_i.
It is streamed: gradients arrive one at a time (no m x m or d x d matrix is formed) and only
the m vectors u_i are kept; O(m^2 d) in total like the Gram form, and equal to it up to rounding.
The reference `OPTML-Group/Unlearn-Saliency: Classification/unlearn/Wfisher.py` keeps only two
vectors: its correction direction stays proportional to the FIRST gradient and its damping is
implicitly 1 with m fixed at 1000, so it is not this recursion (not exact); it is not reproduced.

Updates (seed_papers.md section 1.3; Gu et al. 2024, after Guo et al. 2020 and Golatkar et al.
2020), on the flat |P|-vector theta (units: parameter units):
- Fisher Removal: theta' = theta + gamma * F^-1 * grad L(D_forget). The step ASCENDS the forget
  loss (F^-1 is positive definite, so the first-order change of the forget loss is > 0). The
  scale gamma, the sum-vs-mean normalisation of the forget gradient and lambda are unknown in
  the paper ([U]); `influence_gamma` gives the proposed default [R] gamma = 1/|D+| with the SUM
  of per-example forget gradients (influence-function scaling: removing D- from a loss summed
  over D+ moves the minimiser by (|D+| * H_mean)^-1 * sum_(x in D-) grad l(x), H_mean ~ F).
- Fisher Forgetting: theta' = theta + (mu * sigma^2)^(1/4) * F^(-1/4) * n, n ~ N(0, I) seeded.
  The added noise has covariance sqrt(mu sigma^2) * F^(-1/2): large along directions the retain
  data barely constrain (small Fisher), small along well-determined ones. mu * sigma^2 is [U].

Damping lambda: the paper's value is [U]; WoodFisher/oBERT use 1e-4..1e-7 with their own
gradient scales (seed_papers.md 1.3). Here it is a required argument; sweep it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from lib.algorithms.per_sample import ParamLayout, per_sample_gradients

logger = logging.getLogger(__name__)

__all__ = [
    "INVERSE_METHODS",
    "EmpiricalFisher",
    "WoodFisher",
    "fisher_forgetting",
    "fisher_removal",
    "influence_gamma",
]

#: Names accepted by `EmpiricalFisher.inverse(method=...)` and `fisher_removal(method=...)`.
INVERSE_METHODS: tuple[str, ...] = ("gram", "woodfisher")
#: Bytes of one column chunk when G is converted to `compute_dtype` (bounds extra memory).
_CHUNK_BYTES = 1 << 27


def _check_damping(damping: float) -> float:
    if not (isinstance(damping, int | float) and math.isfinite(damping) and damping > 0):
        raise ValueError(f"damping (lambda) must be a finite number > 0, got {damping!r}")
    return float(damping)


def _column_chunks(G: Tensor, dtype: torch.dtype) -> Iterable[slice]:
    bytes_per_col = G.shape[0] * torch.empty((), dtype=dtype).element_size()
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_col))
    for start in range(0, G.shape[1], step):
        yield slice(start, min(G.shape[1], start + step))


class EmpiricalFisher:
    """F = damping * I + (1/m) G^T G on P, applied through the Gram matrix (module docstring).

    Args:
        G: (m, d) per-example gradients (float32; kept by reference, not copied).
        damping: lambda > 0 (units of squared gradient, like the eigenvalues of F).
        rtol: eigen-directions of K with S_k <= rtol * max(S) are dropped (module docstring).
        compute_dtype: dtype of the Gram matrix, eigh and products (float64 by default).

    The Gram factorisation is computed on first use of `power` (so `inverse(...,
    method="woodfisher")` never pays for it).
    """

    def __init__(
        self,
        G: Tensor,
        damping: float,
        *,
        rtol: float = 1e-10,
        compute_dtype: torch.dtype = torch.float64,
    ) -> None:
        if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
            raise ValueError(f"G must have shape (m >= 1, d >= 1), got {tuple(G.shape)}")
        if not 0 <= rtol < 1:
            raise ValueError(f"rtol must be in [0, 1), got {rtol}")
        if compute_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"compute_dtype must be float32 or float64, got {compute_dtype}")
        self.G = G
        self.damping = _check_damping(damping)
        self.rtol = rtol
        self.compute_dtype = compute_dtype
        self._S: Tensor | None = None
        self._C: Tensor | None = None
        self.n_dropped = 0

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        params: Sequence[str] | ParamLayout,
        damping: float,
        chunk_size: int = 8,
        progress: bool = False,
        **kwargs: object,
    ) -> tuple[EmpiricalFisher, ParamLayout]:
        """Build F from the per-example gradients of m sequences (e.g. retain data D+)."""
        _check_damping(damping)
        G, layout = per_sample_gradients(
            model,
            input_ids,
            attention_mask,
            labels,
            params=params,
            chunk_size=chunk_size,
            progress=progress,
        )
        return cls(G, damping, **kwargs), layout  # type: ignore[arg-type]

    # ------------------------------------------------------------------ shape
    @property
    def m(self) -> int:
        """Number of per-example gradients."""
        return int(self.G.shape[0])

    @property
    def dim(self) -> int:
        """d = |P|."""
        return int(self.G.shape[1])

    # ------------------------------------------------------------------ Gram factorisation
    def _gram(self) -> Tensor:
        """K = (1/m) G G^T in compute_dtype, accumulated over column chunks."""
        K = torch.zeros(self.m, self.m, dtype=self.compute_dtype, device=self.G.device)
        for cols in _column_chunks(self.G, self.compute_dtype):
            block = self.G[:, cols].to(self.compute_dtype)
            K += block @ block.T
        return K / self.m

    def factorize(self) -> EmpiricalFisher:
        """Eigendecompose K and keep the directions above the tolerance (idempotent)."""
        if self._S is not None:
            return self
        S, V = torch.linalg.eigh(self._gram())
        S = S.clamp(min=0)
        threshold = self.rtol * float(S.max())
        keep = S.gt(threshold) if threshold > 0 else torch.zeros_like(S, dtype=torch.bool)
        dropped = S[~keep]
        self.n_dropped = int(dropped.numel())
        if self.n_dropped and float(dropped.max()) > 0.01 * self.damping:
            logger.warning(
                "dropped %d eigen-directions of K with S up to %.3g > 1%% of lambda=%.3g: "
                "F^p is approximate along them (raise lambda or lower rtol)",
                self.n_dropped,
                float(dropped.max()),
                self.damping,
            )
        self._S = S[keep]
        self._C = V[:, keep] / torch.sqrt(self._S * self.m)
        return self

    @property
    def eigenvalues(self) -> Tensor:
        """The kept eigenvalues lambda + S_k of F (ascending); every other one equals lambda."""
        self.factorize()
        assert self._S is not None
        return self.damping + self._S

    @property
    def rank(self) -> int:
        """Number of kept directions r (<= min(m, d))."""
        self.factorize()
        assert self._S is not None
        return int(self._S.numel())

    def _gv(self, v: Tensor) -> Tensor:
        """G v for v of shape (d, k), in compute_dtype, chunked over columns."""
        out = torch.zeros(self.m, v.shape[1], dtype=self.compute_dtype, device=self.G.device)
        for cols in _column_chunks(self.G, self.compute_dtype):
            out += self.G[:, cols].to(self.compute_dtype) @ v[cols]
        return out

    def _gty(self, y: Tensor) -> Tensor:
        """G^T y for y of shape (m, k), in compute_dtype, chunked over columns."""
        out = torch.empty(self.dim, y.shape[1], dtype=self.compute_dtype, device=self.G.device)
        for cols in _column_chunks(self.G, self.compute_dtype):
            out[cols] = self.G[:, cols].to(self.compute_dtype).T @ y
        return out

    # ------------------------------------------------------------------ products
    def power(self, v: Tensor, p: float) -> Tensor:
        """F^p v for any real p, exactly (up to the dropped directions), same shape as v.

        v: a |P|-vector (d,) or a matrix of column vectors (d, k). Returns float32 on G's device.
        """
        if not math.isfinite(p):
            raise ValueError(f"p must be finite, got {p}")
        squeeze = v.ndim == 1
        vv = v[:, None] if squeeze else v
        if vv.ndim != 2 or vv.shape[0] != self.dim:
            raise ValueError(f"v must have shape ({self.dim},) or ({self.dim}, k), got {v.shape}")
        self.factorize()
        assert self._S is not None and self._C is not None
        vv = vv.to(device=self.G.device, dtype=self.compute_dtype)
        lam = torch.tensor(self.damping, dtype=self.compute_dtype)
        coeff = (lam + self._S) ** p - lam**p  # (r,)
        ut_v = self._C.T @ self._gv(vv)  # U^T v, (r, k)
        out = lam**p * vv + self._gty(self._C @ (coeff[:, None] * ut_v))
        out = out.float()
        return out[:, 0] if squeeze else out

    def inverse(self, v: Tensor, method: str = "gram") -> Tensor:
        """F^-1 v through the Gram form or the streaming WoodFisher recursion (same result)."""
        if method not in INVERSE_METHODS:
            raise ValueError(f"method must be one of {INVERSE_METHODS}, got {method!r}")
        if method == "gram":
            return self.power(v, -1.0)
        wood = WoodFisher(self.damping, self.m, compute_dtype=self.compute_dtype)
        for row in self.G:
            wood.add(row)
        return wood.inverse(v)

    @property
    def factorization_flops(self) -> float:
        """FLOPs of building the factorisation from G: Gram 2 m^2 d + eigh ~9 m^3 (estimate).

        The per-example gradients themselves cost about one forward + backward per example
        (`lib.metrics.cost.train_flops`), which dominates for m << d.
        """
        return 2.0 * self.m**2 * self.dim + 9.0 * self.m**3

    @property
    def product_flops(self) -> float:
        """FLOPs of one product F^p v: G v and G^T y (2 m d each) + O(m r) (estimate)."""
        return 4.0 * self.m * self.dim + 4.0 * self.m**2

    def dense(self) -> Tensor:
        """The d x d matrix F in compute_dtype (for tests on small d only)."""
        if self.dim > 20_000:
            raise ValueError(f"dense() is for small problems; d = {self.dim} is too large")
        G = self.G.to(self.compute_dtype)
        eye = torch.eye(self.dim, dtype=self.compute_dtype, device=G.device)
        return self.damping * eye + G.T @ G / self.m


class WoodFisher:
    """Streaming inverse of F = damping * I + (1/m) sum_i g_i g_i^T by Sherman-Morrison.

    Feed the m gradients with `add` (one at a time, any order; m is fixed up front because every
    rank-1 term carries the 1/m), then `inverse(v)` = F^-1 v. Keeps the m vectors
    u_i = F_(i-1)^-1 g_i and the scalars m + g_i^T u_i; O(i d) per `add`, O(m d) per product.
    `inverse` before all m gradients were added uses the partial sum (still divided by m).
    """

    def __init__(
        self, damping: float, m: int, *, compute_dtype: torch.dtype = torch.float64
    ) -> None:
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.damping = _check_damping(damping)
        self.m = m
        self.compute_dtype = compute_dtype
        self._u: list[Tensor] = []
        self._c: list[float] = []

    @property
    def n_added(self) -> int:
        """Number of gradients consumed so far."""
        return len(self._u)

    def _apply(self, x: Tensor) -> Tensor:
        """F_n^-1 x for the n gradients added so far (x in compute_dtype)."""
        out = x / self.damping
        for u, c in zip(self._u, self._c, strict=True):
            out = out - u * (torch.dot(u, x) / c)
        return out

    def add(self, g: Tensor) -> None:
        """Consume one per-example gradient g (a |P|-vector)."""
        if self.n_added >= self.m:
            raise ValueError(f"all m={self.m} gradients were already added")
        if g.ndim != 1 or (self._u and g.numel() != self._u[0].numel()):
            raise ValueError(f"g must be a |P|-vector, got shape {tuple(g.shape)}")
        g = g.to(self.compute_dtype)
        u = self._apply(g)
        self._c.append(float(self.m + torch.dot(g, u)))
        self._u.append(u)

    def inverse(self, v: Tensor) -> Tensor:
        """F^-1 v (float32), v a |P|-vector."""
        if v.ndim != 1:
            raise ValueError(f"v must be a |P|-vector, got shape {tuple(v.shape)}")
        if self._u and v.numel() != self._u[0].numel():
            raise ValueError(f"v has length {v.numel()}, the gradients {self._u[0].numel()}")
        device = self._u[0].device if self._u else v.device
        return self._apply(v.to(device=device, dtype=self.compute_dtype)).float()

    def power(self, v: Tensor, p: float) -> Tensor:
        """Only p = -1 is available in this form."""
        if p != -1:
            raise ValueError(f"WoodFisher gives F^p only for p = -1, got p = {p}")
        return self.inverse(v)


# --------------------------------------------------------------------------- updates
def influence_gamma(n_retain: int) -> float:
    """Default Fisher Removal scale [R]: gamma = 1 / |D+| (use with the SUM of forget grads)."""
    if n_retain < 1:
        raise ValueError(f"n_retain must be >= 1, got {n_retain}")
    return 1.0 / n_retain


def fisher_removal(
    theta: Tensor,
    forget_grad: Tensor,
    fisher: EmpiricalFisher | WoodFisher,
    gamma: float,
    *,
    method: str = "gram",
) -> Tensor:
    """Fisher Removal: theta' = theta + gamma * F^-1 * forget_grad (a new |P|-vector).

    Args:
        theta: current parameters on P, a |P|-vector (see `ParamLayout.get`).
        forget_grad: gradient of the forget loss on P (e.g. `loss_gradient(...,
            reduction="sum")` over D-, the [R] default pairing with `influence_gamma`). The
            update ascends that loss.
        fisher: F built on the retain data (F+ in the paper).
        gamma: step scale (> 0), [U] in the paper; `influence_gamma(|D+|)` is the [R] default.
        method: `gram` (exact Gram form) or `woodfisher` (streaming Sherman-Morrison; same
            result). Ignored for a `WoodFisher` object.
    """
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    if method not in INVERSE_METHODS:
        raise ValueError(f"method must be one of {INVERSE_METHODS}, got {method!r}")
    if theta.shape != forget_grad.shape:
        raise ValueError(f"theta {tuple(theta.shape)} and forget_grad {tuple(forget_grad.shape)}")
    if isinstance(fisher, WoodFisher):
        step = fisher.inverse(forget_grad)
    else:
        step = fisher.inverse(forget_grad, method=method)
    return theta.float() + gamma * step.to(theta.device)


def fisher_forgetting(
    theta: Tensor, fisher: EmpiricalFisher, mu_sigma2: float, *, seed: int = 0
) -> Tensor:
    """Fisher Forgetting: theta' = theta + (mu sigma^2)^(1/4) * F^(-1/4) * n (a new |P|-vector).

    n ~ N(0, I_d) is drawn on the CPU from `torch.Generator().manual_seed(seed)` (the same
    noise on every device). mu * sigma^2 (> 0, in squared parameter units times Fisher units)
    is [U] in the paper: sweep it; the added noise has covariance sqrt(mu sigma^2) F^(-1/2).
    """
    if not (math.isfinite(mu_sigma2) and mu_sigma2 > 0):
        raise ValueError(f"mu_sigma2 must be a finite number > 0, got {mu_sigma2!r}")
    if theta.ndim != 1 or theta.numel() != fisher.dim:
        raise ValueError(f"theta must be a |P|-vector of length {fisher.dim}")
    noise = torch.randn(fisher.dim, generator=torch.Generator().manual_seed(seed))
    step = fisher.power(noise.to(fisher.G.device), -0.25)
    return theta.float() + mu_sigma2**0.25 * step.to(theta.device)
