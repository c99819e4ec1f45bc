"""Networks users bring: reading PyTorch and scikit-learn models, writing PyTorch.

The functions here return or take plain arrays; :class:`fopa.TwoLayerNet` builds
itself from them (``from_torch``, ``from_sklearn``, ``to_torch``), so this module
imports nothing of fopa's network. torch and scikit-learn are imported only when a
function that needs them runs. ``docs/networks.md`` says what each mapping does.
"""

from __future__ import annotations

import warnings

import numpy as np

#: torch.nn module class name -> fopa activation name.
TORCH_ACTIVATIONS = {
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Softplus": "softplus",
    "GELU": "gelu",
    "SiLU": "silu",
    "Identity": "linear",
}

#: scikit-learn ``activation`` -> fopa activation name.
SKLEARN_ACTIVATIONS = {"tanh": "tanh", "logistic": "sigmoid", "identity": "linear"}

#: Why activations that are not three times continuously differentiable are refused.
_NOT_C3 = (
    "fopa's bounds over the ball and its certificates need an activation with three "
    "continuous derivatives (C^3), which {name} is not{why}; use one of "
    "tanh, sigmoid, softplus, GELU (exact) or SiLU (softplus, GELU and SiLU are smooth "
    "ReLU-like choices) and train again"
)
_WHY = {
    "ReLU": " (its derivative jumps at 0)",
    "relu": " (its derivative jumps at 0)",
    "LeakyReLU": " (its derivative jumps at 0)",
    "ReLU6": " (its derivative jumps at 0 and 6)",
    "PReLU": " (its derivative jumps at 0)",
    "ELU": " (its second derivative jumps at 0)",
    "CELU": " (its second derivative jumps at 0)",
    "SELU": " (its second derivative jumps at 0)",
    "Hardtanh": " (its derivative jumps at -1 and 1)",
    "Hardsigmoid": " (its derivative jumps at -3 and 3)",
    "Hardswish": " (its second derivative jumps at -3 and 3)",
}

#: A torch ``Softplus`` threshold at or above this is the exact softplus in float64:
#: ``log1p(exp(z)) - z = log1p(exp(-z)) < 2^-53 z`` for ``z >= 37``.
EXACT_SOFTPLUS_THRESHOLD = 37.0
#: The threshold :func:`torch_module` writes (exact, with margin).
TORCH_SOFTPLUS_THRESHOLD = 40.0


def _refuse_activation(name):
    why = _WHY.get(name, "")
    if not why:
        return ValueError(
            f"activation {name} is not supported: expected one of "
            f"{', '.join(TORCH_ACTIVATIONS)} (torch) or {', '.join(SKLEARN_ACTIVATIONS)} "
            "(scikit-learn)"
        )
    return ValueError(f"activation {name} is refused: " + _NOT_C3.format(name=name, why=why))


def _as_array(tensor):
    return tensor.detach().cpu().double().numpy().copy()


def torch_arrays(module):
    """``(W, a, b, activation, output_bias)`` of a torch two-layer network.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Sequential(Linear(d, m), act, Linear(m, 1))`` with ``act`` one of
        :data:`TORCH_ACTIVATIONS`; parameters of any floating dtype, read as
        float64.

    Returns
    -------
    W : ndarray (m, d); a : ndarray (m,); b : ndarray (m,); activation : str;
    output_bias : float
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - a torch module implies torch
        raise ImportError("from_torch needs torch: pip install torch") from None
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(
            "module must be torch.nn.Sequential(nn.Linear(d, m), activation, "
            f"nn.Linear(m, 1)); got {type(module).__name__}"
        )
    layers = list(module)
    kinds = ", ".join(type(layer).__name__ for layer in layers)
    if len(layers) != 3:
        raise ValueError(
            "module must have exactly three layers, Linear(d, m), an activation, "
            f"Linear(m, 1); got {len(layers)}: {kinds}"
        )
    first, act, last = layers
    if not isinstance(first, nn.Linear) or not isinstance(last, nn.Linear):
        raise ValueError(f"module's first and last layers must be nn.Linear; got {kinds}")
    name = type(act).__name__
    if name not in TORCH_ACTIVATIONS:
        raise _refuse_activation(name)
    if name == "Softplus":
        if float(act.beta) != 1.0:
            raise ValueError(
                f"Softplus(beta={act.beta}) is not supported: fopa's softplus has beta = 1 "
                "(scale the first layer by beta and the second by 1/beta for the same "
                "function)"
            )
        if float(act.threshold) < EXACT_SOFTPLUS_THRESHOLD:
            warnings.warn(
                f"torch's Softplus(threshold={act.threshold}) returns z itself above the "
                f"threshold, off the exact softplus by up to log1p(exp(-{act.threshold})) "
                f"= {np.log1p(np.exp(-float(act.threshold))):.2g}; fopa uses the exact "
                "function, so outputs agree only where pre-activations stay below the "
                f"threshold (a threshold >= {EXACT_SOFTPLUS_THRESHOLD:g} is exact)",
                stacklevel=3,
            )
    if name == "GELU" and act.approximate != "none":
        raise ValueError(
            f"GELU(approximate={act.approximate!r}) is not supported: fopa's GELU is the "
            "exact z Phi(z); use nn.GELU() (approximate='none')"
        )
    if last.out_features != 1:
        raise ValueError(
            f"module's last layer must have one output; got {last.out_features} "
            "(fopa's network has a scalar output)"
        )
    if last.in_features != first.out_features:
        raise ValueError(
            f"module's layers do not chain: Linear(.., {first.out_features}) then "
            f"Linear({last.in_features}, ..)"
        )
    W = _as_array(first.weight)
    b = _as_array(first.bias) if first.bias is not None else np.zeros(W.shape[0])
    a = _as_array(last.weight).reshape(-1)
    b0 = float(_as_array(last.bias)[0]) if last.bias is not None else 0.0
    return W, a, b, TORCH_ACTIVATIONS[name], b0


def torch_module(W, a, b, activation, output_scale, output_bias):
    """A float64 ``torch.nn.Sequential`` computing the network (see :func:`torch_arrays`).

    The second layer's weights are ``output_scale * a`` (torch has no output
    scale), so outputs agree with fopa's to rounding (``docs/networks.md``).
    """
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch needs torch: pip install torch (CPU: pip install torch==2.13.0)"
        ) from None
    nn = torch.nn
    acts = {
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "softplus": lambda: nn.Softplus(beta=1.0, threshold=TORCH_SOFTPLUS_THRESHOLD),
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "linear": nn.Identity,
    }
    if activation not in acts:
        raise ValueError(
            f"activation {activation!r} has no torch.nn module; to_torch writes {', '.join(acts)}"
        )
    m, d = W.shape
    first = nn.Linear(d, m, dtype=torch.float64)
    last = nn.Linear(m, 1, dtype=torch.float64)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(np.array(W)))
        first.bias.copy_(torch.from_numpy(np.array(b)))
        last.weight.copy_(torch.from_numpy(output_scale * np.array(a)).reshape(1, m))
        last.bias.fill_(output_bias)
    return nn.Sequential(first, acts[activation](), last)


def sklearn_arrays(estimator):
    """``(W, a, b, activation, output_bias)`` of a fitted one-hidden-layer
    ``MLPRegressor`` or binary ``MLPClassifier``.

    For the classifier, f is the logit of ``classes_[1]``: ``predict_proba[:, 1] =
    sigmoid(f)``, and fopa's logistic loss with ``y = +1`` for ``classes_[1]`` and
    ``y = -1`` for ``classes_[0]`` is scikit-learn's log-loss.
    """
    kind = type(estimator).__name__
    if kind not in ("MLPRegressor", "MLPClassifier"):
        raise TypeError(
            f"estimator must be a fitted sklearn.neural_network.MLPRegressor or "
            f"MLPClassifier; got {kind}"
        )
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"estimator ({kind}) is not fitted: call fit first")
    if len(estimator.coefs_) != 2:
        raise ValueError(
            f"estimator must have one hidden layer; got {len(estimator.coefs_) - 1} "
            f"(hidden_layer_sizes={estimator.hidden_layer_sizes})"
        )
    if estimator.activation not in SKLEARN_ACTIVATIONS:
        raise _refuse_activation(estimator.activation)
    if estimator.n_outputs_ != 1:
        what = "classes" if kind == "MLPClassifier" else "outputs"
        count = len(estimator.classes_) if kind == "MLPClassifier" else estimator.n_outputs_
        raise ValueError(
            f"estimator must have a scalar output (a regressor with one target or a binary "
            f"classifier); got {count} {what}"
        )
    expected_out = "logistic" if kind == "MLPClassifier" else "identity"
    if estimator.out_activation_ != expected_out:  # pragma: no cover - sklearn's own rule
        raise ValueError(f"unexpected output activation {estimator.out_activation_!r}")
    W = np.array(estimator.coefs_[0], dtype=np.float64).T
    b = np.array(estimator.intercepts_[0], dtype=np.float64)
    a = np.array(estimator.coefs_[1], dtype=np.float64).reshape(-1)
    b0 = float(estimator.intercepts_[1][0])
    return W, a, b, SKLEARN_ACTIVATIONS[estimator.activation], b0
