"""Pictures of one adversarial landscape (needs matplotlib).

* :func:`plot_circle` (d = 2): the loss along the circle ``||delta|| = eps``, and
  the loss over the disk with PGA trajectories and the certified maxima.
* :func:`plot_sphere` (d = 3): the loss on the sphere in a Mollweide map
  projection, with trajectories (drawn by direction) and the certified maxima.
* :func:`plot_slice` (any d): the loss along the great circle through two points.

Each returns a :class:`matplotlib.figure.Figure`, made without pyplot: nothing is
shown or saved and no backend is switched (display it in a notebook by leaving it
as a cell's value, or save it with ``fig.savefig``).
"""

from __future__ import annotations

import numpy as np

from ._inputs import one_point
from ._validate import as_float_array, as_int, as_positive_scalar
from .ascent import projected_gradient_ascent
from .derivatives import loss as loss_values
from .landscape import local_maxima

__all__ = ["plot_circle", "plot_sphere", "plot_slice"]


def _picture_problem(net, x, y, eps, d, loss):
    _, x, y, _ = one_point(net, x, y, loss)
    if d is not None and net.d != d:
        raise ValueError(f"this picture needs d = {d}; the network has d = {net.d}")
    return x, y, as_positive_scalar("eps", eps)


def _trajectories(net, x, y, eps, n, rng, loss):
    if n == 0:
        return []
    res = projected_gradient_ascent(
        net, np.tile(x, (n, 1)), np.full(n, y), eps, init="ball", rng=rng, max_iter=2000,
        tol=1e-9, record_history="iterates", loss=loss,
    )  # fmt: skip
    return [h.iterates for h in res.history]


def _figure(ncols=1, width=5.0, **kw):
    """A matplotlib Figure not registered with pyplot: no backend is chosen or changed
    (a notebook's stays as it is), and the figure is freed with its last reference."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width * ncols, 4.0), **kw)


def plot_circle(net, x, y, eps, *, trajectories=8, n_starts=32, rng=0, loss="quadratic"):
    """Loss on the circle and over the disk (d = 2), with maxima and trajectories.

    Parameters
    ----------
    net : TwoLayerNet with d = 2
    x : array_like, shape (2,)
    y : float
    eps : float
    trajectories : int
        PGA runs drawn, from random points of the disk.
    n_starts : int
        Starts for :func:`fopa.local_maxima`.
    rng : None, int or Generator
    loss : "quadratic" or "logistic"

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: loss against the angle, and the disk.
    """
    x, y, eps = _picture_problem(net, x, y, eps, 2, loss)
    land = local_maxima(
        net, x, y, eps, n_starts=as_int("n_starts", n_starts, minimum=1), rng=rng, loss=loss
    )
    paths = _trajectories(
        net, x, y, eps, as_int("trajectories", trajectories, minimum=0), rng, loss
    )
    fig = _figure(2)
    ax_line, ax_disk = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    theta = np.linspace(0, 2 * np.pi, 721)
    ring = eps * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    ax_line.plot(theta, loss_values(net, x + ring, np.full(theta.size, y), loss=loss))
    grid = np.linspace(-eps, eps, 161)
    gx, gy = np.meshgrid(grid, grid)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    vals = loss_values(net, x + pts, np.full(len(pts), y), loss=loss).reshape(gx.shape)
    vals[gx**2 + gy**2 > eps**2] = np.nan
    image = ax_disk.contourf(gx, gy, vals, levels=30)
    fig.colorbar(image, ax=ax_disk, label="loss")
    ax_disk.plot(ring[:, 0], ring[:, 1], "k-", lw=0.8)
    for path in paths:
        ax_disk.plot(path[:, 0], path[:, 1], "w-", lw=0.8, alpha=0.8)
    inside = 0
    for mx in land.maxima:
        ax_disk.plot(mx.point[0], mx.point[1], "r*", ms=12)
        if not mx.certificate.on_boundary:  # an interior maximum is not on the circle
            inside += 1
            continue
        angle = np.arctan2(mx.point[1], mx.point[0]) % (2 * np.pi)
        ax_line.plot(angle, mx.loss, "r*", ms=10)
    title = f"{len(land.maxima)} certified maxima ({inside} inside the disk)"
    ax_line.set(xlabel="angle on the circle ||delta|| = eps", ylabel="loss", title=title)
    ax_disk.set(xlabel="delta_1", ylabel="delta_2", title="PGA trajectories", aspect="equal")
    fig.tight_layout()
    return fig


def plot_sphere(net, x, y, eps, *, trajectories=8, n_starts=48, rng=0, loss="quadratic"):
    """Loss on the sphere (d = 3) in a Mollweide projection, with maxima and trajectories.

    Trajectories are drawn by direction ``delta / ||delta||`` (their first
    steps may be inside the ball).

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, y, eps = _picture_problem(net, x, y, eps, 3, loss)
    land = local_maxima(
        net, x, y, eps, n_starts=as_int("n_starts", n_starts, minimum=1), rng=rng, loss=loss
    )
    paths = _trajectories(
        net, x, y, eps, as_int("trajectories", trajectories, minimum=0), rng, loss
    )
    fig = _figure(1, width=7.0)
    ax = fig.add_subplot(1, 1, 1, projection="mollweide")
    lon, lat = np.meshgrid(np.linspace(-np.pi, np.pi, 241), np.linspace(-np.pi / 2, np.pi / 2, 121))
    dirs = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    vals = loss_values(net, x + eps * dirs.reshape(-1, 3), np.full(lon.size, y), loss=loss)
    image = ax.pcolormesh(lon, lat, vals.reshape(lon.shape), shading="auto")
    fig.colorbar(image, ax=ax, orientation="horizontal", label="loss on the sphere", pad=0.08)

    def to_map(points):
        p = points / np.maximum(np.linalg.norm(points, axis=-1, keepdims=True), 1e-300)
        return np.arctan2(p[..., 1], p[..., 0]), np.arcsin(np.clip(p[..., 2], -1, 1))

    for path in paths:
        moved = np.linalg.norm(path, axis=1) > 1e-12
        lo, la = to_map(path[moved])
        ax.plot(lo, la, "w.", ms=1.5)
    inside = 0
    for mx in land.maxima:
        lo, la = to_map(mx.point)
        on = mx.certificate.on_boundary
        inside += not on
        ax.plot(lo, la, "r*" if on else "wo", ms=12 if on else 7, mec="r")
    ax.set_title(
        f"{len(land.maxima) - inside} certified maxima on the sphere of radius {eps:g} (stars), "
        f"{inside} inside the ball (circles, by direction)",
        fontsize=9,
    )
    ax.set_xticklabels([])
    ax.grid(True, alpha=0.3)
    return fig


def plot_slice(net, x, y, eps, p, q, *, loss="quadratic"):
    """Loss along the great circle of the sphere through the directions of p and q.

    ``delta(t) = eps (cos t u + sin t v)`` with ``u = p/||p||`` and v the unit part
    of q orthogonal to u; p sits at t = 0 and q at its own angle.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, y, eps = _picture_problem(net, x, y, eps, None, loss)
    p = as_float_array("p", p, ndim=1)
    q = as_float_array("q", q, ndim=1)
    if p.shape != (net.d,) or q.shape != (net.d,):
        raise ValueError(f"p and q must have shape ({net.d},)")
    u = p / max(np.linalg.norm(p), 1e-300)
    w = q - (q @ u) * u
    if np.linalg.norm(w) < 1e-12 * max(np.linalg.norm(q), 1e-300):
        raise ValueError("p and q must not be parallel: they do not fix a great circle")
    v = w / np.linalg.norm(w)
    t = np.linspace(-np.pi, np.pi, 1441)
    pts = eps * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
    vals = loss_values(net, x + pts, np.full(t.size, y), loss=loss)
    t_q = np.arctan2(q @ v, q @ u)
    fig = _figure(1, width=6.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, vals)
    for angle, label in ((0.0, "p"), (t_q, "q")):
        ax.axvline(angle, color="r", ls="--", lw=0.8)
        ax.annotate(label, (angle, vals.max()), color="r")
    ax.set(xlabel="angle along the great circle", ylabel="loss",
           title="loss on a great circle through p and q")  # fmt: skip
    fig.tight_layout()
    return fig
