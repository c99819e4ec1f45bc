"""The peers' versions of the loss and of the tangent spectrum, shared by the benchmarks.

Each builder takes a fopa ``TwoLayerNet`` (tanh, quadratic loss) and returns plain
functions of one point in the peer's own arrays: the loss, and the tangent
spectrum ``eigvalsh(B^T (hess L - mu I) B)`` at ``p = x + delta`` on the sphere of
radius ``eps``, with B from the Householder reflection that maps ``u = delta /
||delta||`` to a multiple of ``e_0`` (as ``docs/certify.md`` derives). JAX and
PyTorch are imported only when a builder is called.
"""

from __future__ import annotations

import os


def jax_modules():
    """``(jax, jax.numpy)`` with float64 enabled."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def jax_functions(net, eps):
    """``(loss, spectrum)``: ``loss(p, y)`` and ``spectrum(x, y, delta) -> (mu, eig)``."""
    jax, jnp = jax_modules()
    W, a, c = jnp.asarray(net.W), jnp.asarray(net.a), net.output_scale

    def loss(p, y):
        return 0.5 * (c * jnp.dot(a, jnp.tanh(W @ p)) - y) ** 2

    def spectrum(x, y, delta):
        p = x + delta
        H = jax.hessian(loss)(p, y)
        g = jax.grad(loss)(p, y)
        u = delta / jnp.linalg.norm(delta)
        mu = jnp.dot(u, g) / eps
        v = u.at[0].add(jnp.where(u[0] >= 0, 1.0, -1.0))
        Q = jnp.eye(p.shape[0]) - 2.0 * jnp.outer(v, v) / jnp.dot(v, v)
        A = Q @ (H - mu * jnp.eye(p.shape[0])) @ Q
        return mu, jnp.linalg.eigvalsh(A[1:, 1:])

    return loss, spectrum


def torch_functions(net, eps):
    """``(loss, spectrum)`` in PyTorch (all cores), as :func:`jax_functions`."""
    import torch
    from torch.func import grad, hessian

    torch.set_num_threads(os.cpu_count() or 1)
    W = torch.tensor(net.W, dtype=torch.float64)
    a = torch.tensor(net.a, dtype=torch.float64)
    c = net.output_scale

    def loss(p, y):
        return 0.5 * (c * torch.tanh(W @ p) @ a - y) ** 2

    def spectrum(x, y, delta):
        p = x + delta
        H = hessian(loss)(p, y)
        g = grad(loss)(p, y)
        u = delta / torch.linalg.norm(delta)
        mu = torch.dot(u, g) / eps
        eye = torch.eye(p.shape[0], dtype=torch.float64)
        v = u + torch.where(u[0] >= 0, 1.0, -1.0) * eye[0]
        Q = eye - 2.0 * torch.outer(v, v) / torch.dot(v, v)
        A = Q @ (H - mu * eye) @ Q
        return mu, torch.linalg.eigvalsh(A[1:, 1:])

    return loss, spectrum


def write_table(table, path):
    """Print a benchmark's table, and write it to ``path`` when given."""
    print(table)
    if path:
        with open(path, "w") as fh:
            fh.write(table + "\n")
