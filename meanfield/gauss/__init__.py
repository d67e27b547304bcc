"""The Gaussian-integration engine: expectations E g(m + s z), z ~ N(0, 1), stably and fast.

* ``mills``: the Mills ratio R(t) = Φ(−t)/φ(t) and its derivatives and differences, compiled, with
  fitted polynomials (``mills_coefficients``, written by ``python -m meanfield.gauss.mills_fit``);
* ``mills_series``: combinations of Mills-ratio derivatives without cancellation (finite-width);
* ``closed_forms``: every Gaussian functional of the exponential-linear family in closed form;
* ``smooth_closed``: Q and φ of erf and exact GELU in closed form, compiled, and eq 16 on them;
* ``quadrature``: Gauss–Hermite, graded and trapezoid rules for any other activation;
* ``elementary``: log, exp and arctan as branch-free compiled scalars (loops around them vectorise);
* ``jit``: numba kernels compiled on first call, and the same source run in Python;
* ``compile_cache``: where numba keeps the compiled code (a per-user cache).

This package imports only numpy, scipy and numba (and the package's foundation modules); it
knows nothing of activations beyond the protocol it integrates (``f``, ``df``, ``breakpoints``,
``feature_scale``, ``analytic_strip``, ``with_node_axis``).
"""
