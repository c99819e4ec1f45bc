"""Landscape pictures: the right panels and data, and clear errors."""

import numpy as np
import pytest

import fopa
from fopa.plotting import plot_circle, plot_slice, plot_sphere


def test_circle_picture_marks_the_certified_maxima(tmp_path):
    net = fopa.TwoLayerNet.random(2, 6, rng=0)
    x = np.array([0.3, -0.5])
    fig = plot_circle(net, x, 0.2, 1.0, trajectories=3, n_starts=12, rng=1)
    ax_line, ax_disk = fig.axes[0], fig.axes[1]
    land = fopa.local_maxima(net, x, 0.2, 1.0, n_starts=12, rng=1)
    stars = [line for line in ax_line.get_lines() if line.get_marker() == "*"]
    assert len(stars) == len(land.maxima) >= 1
    np.testing.assert_allclose(
        sorted(s.get_ydata()[0] for s in stars), sorted(m.loss for m in land.maxima)
    )
    assert len(ax_disk.get_lines()) >= 1 + 3  # circle, trajectories, maxima
    path = tmp_path / "circle.png"
    fig.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_sphere_picture_uses_a_map_projection():
    net = fopa.TwoLayerNet.random(3, 6, rng=2)
    fig = plot_sphere(net, np.array([0.2, 0.1, -0.4]), 0.0, 1.0, trajectories=2, n_starts=8, rng=0)
    assert fig.axes[0].name == "mollweide"


def test_slice_passes_through_both_points():
    net = fopa.TwoLayerNet.random(5, 8, rng=3)
    x = np.ones(5) * 0.1
    p, q = np.eye(5)[0], np.eye(5)[2]
    fig = plot_slice(net, x, 0.0, 0.7, p, q)
    line = fig.axes[0].get_lines()[0]
    t, vals = line.get_xdata(), line.get_ydata()
    k = np.argmin(np.abs(t))
    assert vals[k] == pytest.approx(fopa.loss(net, x + 0.7 * p, 0.0))
    with pytest.raises(ValueError, match="parallel"):
        plot_slice(net, x, 0.0, 0.7, p, 2 * p)


def test_pictures_check_the_dimension():
    net = fopa.TwoLayerNet.random(4, 4, rng=0)
    with pytest.raises(ValueError, match="d = 2"):
        plot_circle(net, np.ones(4), 0.0, 1.0)
    with pytest.raises(ValueError, match="d = 3"):
        plot_sphere(net, np.ones(4), 0.0, 1.0)


def test_plots_leave_the_matplotlib_backend_and_pyplot_alone():
    # run in a fresh interpreter: a notebook's backend must survive a plot
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import numpy as np, fopa\n"
        "from fopa.plotting import plot_slice\n"
        "import matplotlib.pyplot as plt\n"
        "net = fopa.TwoLayerNet.random(3, 4, rng=0)\n"
        "fig = plot_slice(net, np.ones(3), 0.0, 0.5, [0.5, 0, 0], [0, 0.5, 0])\n"
        "print(matplotlib.get_backend(), len(plt.get_fignums()), type(fig).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "0", "Figure"]
