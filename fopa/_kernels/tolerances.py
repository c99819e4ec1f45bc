"""Every tolerance, margin and floor that fopa's kernels and public functions share.

One module, so that the solver and the certificate cannot disagree about, say,
what counts as on the sphere. ``docs/architecture.md`` lists them with their
users.
"""

#: Relative distance to the boundary that counts as on it: ``||delta|| >= eps (1 -
#: ON_BOUNDARY)`` is on the sphere (l2), ``|delta_j| >= eps (1 - ON_BOUNDARY)`` at
#: a face of the cube (linf). Used by the ascent's stopping rule and KKT report and
#: by the certificate.
ON_BOUNDARY = 1e-9

#: Relative excess of ``||delta||`` over eps that :func:`fopa.certify` accepts as
#: rounding of a feasible point.
FEASIBLE = 1e-9

#: Relative excess over eps that a user's starting point of the ascent may have.
START_FEASIBLE = 1e-12

#: Relative distance to eps within which a start counts as on the sphere
#: (``constraint="sphere"``).
ON_SPHERE_START = 1e-9

#: Relative margin added to every bound over a ball, so that rounding in its
#: evaluation can't put it below a value computed in floating point.
SAFETY_MARGIN = 1e-10

#: Floor of a product of positive factors in a bound: products of tiny factors
#: (``G^2``, ``G^3``) can underflow to 0 while what they bound is still positive.
SAFETY_FLOOR = 1e-290

#: The norm test of a strict maximum inside the ascent
#: (:func:`fopa._kernels.certificate.norm_test_rows`): its bound of the tangent
#: block's largest eigenvalue gains this much of the scale of the terms it adds
#: (rounding in forming them and in ``||W||_2``), and its three comparisons with the
#: certificate's tolerances keep this relative margin, so that a point it passes is
#: one the full certificate passes too whatever the last bits of each side.
NORM_TEST_SLACK = 1e-9
NORM_TEST_MARGIN = 1e-6

#: Relative safety margin on the certified radii (inner grows, outer shrinks).
RADIUS_MARGIN = 1e-6

#: Relative width at which the bisection for a certified radius stops.
RADIUS_BISECTION = 1e-12

#: Guard against division by a zero norm.
TINY = 1e-300

#: In the row-space (Gram) iteration, a step whose squared length from the Gram
#: quadratic form is below this fraction of ``||delta||^2`` is within the form's
#: rounding noise and is measured again in R^d.
GRAM_NOISE = 1e-10

#: The factorization route's Lanczos estimates stop when neither extreme Ritz value
#: moved by more than this fraction of ``max |theta|`` over four steps (a premature
#: stop costs a wider shift or the eigendecomposition, never a wrong bound).
LANCZOS_TOL = 1e-12
