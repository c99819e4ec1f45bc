"""The two-layer network ``f(x) = c * sum_r a_r * sigma(w_r . x + b_r) + b0``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ._kernels.activation import CRITICAL_TABLES
from ._kernels.linalg import gram_matrix
from ._kernels.network import NetView
from ._validate import as_float_array, as_int, as_positive_scalar, as_real_scalar, as_rng
from .activations import ACTIVATIONS, activation_code

__all__ = ["TwoLayerNet"]

#: Version of the ``.npz`` network format that :meth:`TwoLayerNet.save` writes: 1
#: (no version array) had no output bias; 2 adds ``output_bias``.
FORMAT_VERSION = 2


def _row_norms(W):
    """Euclidean norms of the rows of W, exact in range: the plain sum of squares
    where it neither overflows nor underflows (the bits of ``np.linalg.norm``), and
    elsewhere the norm of the row scaled by a power of two (exact scaling, so the
    result is that of the plain formula in exact range)."""
    with np.errstate(over="ignore", under="ignore"):
        out = np.linalg.norm(W, axis=1)
    biggest = np.max(np.abs(W), axis=1)  # W has at least one column (validated)
    # overflowed, or small enough that the squares lost bits (or underflowed to 0)
    redo = np.flatnonzero(~np.isfinite(out) | ((out < 1e-150) & (biggest > 0)))
    for r in redo:
        if not np.isfinite(biggest[r]):
            continue  # an inf or NaN entry: the plain result says so
        scale = np.ldexp(1.0, int(np.frexp(biggest[r])[1]))
        out[r] = scale * np.linalg.norm(W[r] / scale)
    return out


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False, repr=False)
class TwoLayerNet:
    """A two-layer network with scalar output, fixed weights.

    ``f(x) = output_scale * sum_r a[r] * sigma(W[r] . x + b[r]) + output_bias``.

    Parameters
    ----------
    W : array_like, shape (m, d)
        First-layer weights; row ``r`` is ``w_r``.
    a : array_like, shape (m,)
        Second-layer weights.
    b : array_like, shape (m,), optional
        First-layer biases (default zero).
    activation : str
        One of ``tanh, sigmoid, softplus, gelu, silu, quadratic, linear``.
    output_scale : float
        The constant ``c`` in front of the sum, > 0.
    output_bias : float
        The output bias ``b0`` added to the sum (default 0, which gives the
        network of the study exactly, to the bit). It moves the output, hence the
        loss and its derivatives in f, but not the derivatives of f in x.

    Notes
    -----
    Instances are immutable: the arrays are read-only float64 copies.
    """

    W: np.ndarray
    a: np.ndarray
    b: np.ndarray | None = None
    activation: str = "tanh"
    output_scale: float = 1.0
    output_bias: float = 0.0
    activation_code: int = field(init=False, repr=False)

    def __post_init__(self):
        W = as_float_array("W", self.W, ndim=2)
        m, d = W.shape
        if m == 0 or d == 0:
            raise ValueError(f"W must have at least one row and one column; got shape {W.shape}")
        a = as_float_array("a", self.a, ndim=1)
        if a.shape != (m,):
            raise ValueError(f"a must have shape ({m},) to match W's {m} rows; got {a.shape}")
        b = np.zeros(m) if self.b is None else as_float_array("b", self.b, ndim=1)
        if b.shape != (m,):
            raise ValueError(f"b must have shape ({m},) to match W's {m} rows; got {b.shape}")
        code = activation_code(self.activation)
        scale = as_positive_scalar("output_scale", self.output_scale)
        bias = as_real_scalar("output_bias", self.output_bias)
        object.__setattr__(self, "W", _frozen(W))
        object.__setattr__(self, "a", _frozen(a))
        object.__setattr__(self, "b", _frozen(b))
        object.__setattr__(self, "output_scale", scale)
        object.__setattr__(self, "output_bias", bias)
        object.__setattr__(self, "activation_code", code)

    @property
    def m(self) -> int:
        """Width (number of hidden units)."""
        return self.W.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.W.shape[1]

    @cached_property
    def _singular(self):
        """``(s, F^T, V^T)`` from one SVD ``W = U S V^T``: singular values, ``F = U S``
        and the orthonormal rows ``V^T`` (shape (min(m, d), d)) of W's row space."""
        U, s, Vt = np.linalg.svd(self.W, full_matrices=False)
        return s, _frozen((U * s).T), _frozen(Vt)

    @property
    def weight_norm(self) -> float:
        """Spectral norm ``||W||_2``, computed once (with :attr:`row_space_factor`)."""
        return float(self._singular[0][0])

    @property
    def row_space_factor(self) -> np.ndarray:
        """``F^T`` for ``F = U S`` from the SVD ``W = U S V^T``, shape (min(m, d), m).

        ``F F^T = W W^T``, so ``W^T D W`` and the small ``F^T D F`` have the same
        nonzero spectrum: the tight ball bounds measure Hessians of f in this basis.
        Read-only, computed once.
        """
        return self._singular[1]

    @property
    def row_space_basis(self) -> np.ndarray:
        """``V^T`` from the SVD ``W = U S V^T``, shape (min(m, d), d): orthonormal rows
        spanning the row space of W, with ``W^T = V F^T`` (:attr:`row_space_factor`).
        Read-only, computed once."""
        return self._singular[2]

    @cached_property
    def row_norms(self) -> np.ndarray:
        """``||w_r||_2`` for every row, shape (m,), read-only. Rows whose sum of squares
        overflows or underflows float64 are rescaled by a power of two first, so
        a finite nonzero row never gets an infinite or zero norm."""
        return _frozen(_row_norms(self.W))

    @cached_property
    def abs_output_weights(self) -> np.ndarray:
        """``|c a_r|`` for every unit, shape (m,), read-only."""
        return _frozen(np.abs(self.output_scale * self.a))

    @cached_property
    def weights_transposed(self) -> np.ndarray:
        """``W^T`` as a C-contiguous (d, m) array, read-only, made once."""
        return _frozen(self.W.T)

    @cached_property
    def gram(self) -> np.ndarray:
        """The Gram matrix ``K = W W^T``, shape (m, m), read-only, computed once.

        The row-space iteration of projected gradient ascent multiplies by it.
        """
        out = gram_matrix(self.W, self.weights_transposed)
        out.flags.writeable = False
        return out

    @cached_property
    def kernel_view(self) -> NetView:
        """What the compiled kernels know of the network, built once.

        A :class:`fopa._kernels.network.NetView` of read-only arrays: ``W``, ``W^T``,
        ``a``, ``b``, ``c``, the output bias ``b0``, the activation code, its table
        of critical points and, for the bounds over a ball, ``|c a|`` and the row
        norms. Every kernel takes this one argument, so a new network attribute is
        added here and in the kernels that use it.
        """
        return NetView(
            self.W, self.weights_transposed, self.a, self.b, self.output_scale,
            self.output_bias, self.activation_code, CRITICAL_TABLES[self.activation],
            self.abs_output_weights, self.row_norms,
        )  # fmt: skip

    @classmethod
    def random(cls, d: int, m: int, activation: str = "tanh", rng=None) -> TwoLayerNet:
        """A network in the initial phase of training.

        ``W_rj ~ N(0, 1/d)``, ``a_r`` uniform on ``{-1, +1}``, ``b = 0`` and
        ``output_scale = 1/sqrt(m)``.

        Parameters
        ----------
        d, m : int
            Input dimension and width, >= 1.
        activation : str
        rng : None, int or numpy.random.Generator

        Returns
        -------
        TwoLayerNet
        """
        d = as_int("d", d, minimum=1)
        m = as_int("m", m, minimum=1)
        activation_code(activation)
        gen = as_rng(rng)
        W = gen.standard_normal((m, d)) / math.sqrt(d)
        a = gen.choice(np.array([-1.0, 1.0]), size=m)
        return cls(W, a, None, activation, 1.0 / math.sqrt(m))

    @classmethod
    def from_torch(cls, module) -> TwoLayerNet:
        """The network of a PyTorch ``nn.Sequential(nn.Linear(d, m), act, nn.Linear(m, 1))``.

        Parameters
        ----------
        module : torch.nn.Sequential
            ``act`` one of ``nn.Tanh, nn.Sigmoid, nn.Softplus`` (beta = 1), ``nn.GELU``
            (exact, ``approximate="none"``), ``nn.SiLU``, ``nn.Identity``. Parameters
            are read as float64; ``output_scale = 1`` and the last layer's bias is the
            output bias.

        Returns
        -------
        TwoLayerNet

        Raises
        ------
        ValueError
            For another layout, a second layer with more than one output, or an
            activation that is not C^3 (ReLU and its kin: the error says why and
            what to use instead). ``docs/networks.md``.
        """
        from ._interop import torch_arrays

        W, a, b, activation, bias = torch_arrays(module)
        return cls(W, a, b, activation, 1.0, bias)

    def to_torch(self):
        """A float64 ``torch.nn.Sequential`` that computes this network.

        The second layer holds ``output_scale * a`` and the output bias; a softplus
        network gets ``nn.Softplus(threshold=40)``, which is the exact softplus in
        float64. Quadratic networks have no torch module and are refused.

        Returns
        -------
        torch.nn.Sequential
        """
        from ._interop import torch_module

        return torch_module(
            self.W, self.a, self.b, self.activation, self.output_scale, self.output_bias
        )

    @classmethod
    def from_sklearn(cls, estimator) -> TwoLayerNet:
        """The network of a fitted scikit-learn ``MLPRegressor`` or binary ``MLPClassifier``.

        One hidden layer, activation ``"tanh"``, ``"logistic"`` (fopa's sigmoid) or
        ``"identity"``; ``"relu"`` is refused (not C^3). For a classifier the output
        is the logit of ``classes_[1]``: use ``loss="logistic"`` with ``y = +1`` for
        ``classes_[1]`` and ``-1`` for ``classes_[0]``.

        Returns
        -------
        TwoLayerNet
        """
        from ._interop import sklearn_arrays

        W, a, b, activation, bias = sklearn_arrays(estimator)
        return cls(W, a, b, activation, 1.0, bias)

    def save(self, path) -> None:
        """Write the network to ``path`` as ``.npz`` (exact round trip).

        The file holds ``W, a, b, activation, output_scale, output_bias`` and
        ``format_version`` (:data:`FORMAT_VERSION`); :meth:`load` reads every
        version written so far.
        """
        np.savez(
            path,
            W=self.W,
            a=self.a,
            b=self.b,
            activation=np.array(self.activation),
            output_scale=np.array(self.output_scale),
            output_bias=np.array(self.output_bias),
            format_version=np.array(FORMAT_VERSION),
        )

    @classmethod
    def load(cls, path) -> TwoLayerNet:
        """Read a network written by :meth:`save`, of any format version.

        Version 1 (fopa 0.1.0 before the output bias; no ``format_version`` array)
        loads with ``output_bias = 0``.

        Raises
        ------
        ValueError
            If the file lacks one of the arrays, holds an unknown activation or
            comes from a newer format version than this fopa reads.
        """
        where = repr(os.fspath(path))
        if not os.path.exists(path):
            raise ValueError(f"path {where} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{where} is not a readable .npz file: {exc}") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(
                f"{where} holds one array ({type(data).__name__}), not a fopa "
                "network file: expected the .npz that TwoLayerNet.save writes"
            )
        try:
            with data:
                fields = {k: data[k] for k in ("W", "a", "b", "activation", "output_scale")}
                version = int(data["format_version"]) if "format_version" in data else 1
                bias = data["output_bias"] if version >= 2 else 0.0
        except KeyError as exc:
            raise ValueError(f"{where} is not a fopa network file: missing {exc}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{where} is not a readable .npz file: {exc}") from None
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{where} has network format version {version}; this fopa reads versions "
                f"1 to {FORMAT_VERSION}: upgrade fopa to read it"
            )
        activation = str(fields["activation"])
        if activation not in ACTIVATIONS:
            raise ValueError(f"{where} names an unknown activation {activation!r}")
        return cls(
            fields["W"], fields["a"], fields["b"], activation, float(fields["output_scale"]),
            float(bias),
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"TwoLayerNet(d={self.d}, m={self.m}, activation={self.activation!r}, "
            f"output_scale={self.output_scale!r}"
            + (f", output_bias={self.output_bias!r})" if self.output_bias else ")")
        )
