"""The compiled layer: numba kernels that take only arrays, scalars and the
network's kernel view (:class:`fopa._kernels.network.NetView`).

Nothing here imports from the rest of fopa; the public modules above validate
their arguments and call these kernels. ``docs/architecture.md`` maps the
layers. Modules:

* :mod:`.jit`: the one decorator and its numba options;
* :mod:`.tolerances`: every tolerance and safety margin that kernels and the
  modules above share;
* :mod:`.linalg`: products, dot products, norms, small eigenproblems;
* :mod:`.activation`, :mod:`.loss`: codes, values, derivatives and sup bounds;
* :mod:`.network`: pre-activations and the derivatives of the loss in the input
  and in the parameters;
* :mod:`.ball`: the feasible set's geometry (projection, on-boundary rule,
  multiplier, tangent gradient, Householder basis) and the bounds over a ball;
* :mod:`.pga`, :mod:`.certificate`: the ascent loops and the dense certificate.
"""
