"""Mean-field theory: single-layer functionals and what they predict for a deep network.

* ``functionals``: Q(q), φ(q) (eq 6), 1 + δ_q (eq 2), γ_q (eq 8), the mean map (eq 12);
* ``inputs``: configuration arrays broadcast with an activation's array parameters;
* ``recursions``: forward q_l (Prop A.1), gradient norms (Prop A.2), Props 3.1 and 3.2;
* ``spectrum`` (and ``spectrum_solver``): the Jacobian's singular-value spectrum;
* ``dropout``: alpha dropout's constants and theory for any activation;
* ``finite_width``: the O(1/N) corrections a network of width N measures;
* ``fixed_points``: q*, χ_1, the order-to-chaos boundary, the correlation map, depth scales and
  Klambauer's (μ, ν) map;
* ``definition``: Definition 2 (eq 7), the self-normalization property.

New theory goes here.  This package may import :mod:`meanfield.activations`,
:mod:`meanfield.gauss` and the foundation modules, never :mod:`meanfield.paper`, ``validate``
or ``cli``.
"""

import os as _os

from ..gauss import compile_cache as _compile_cache

# the compiled kernels of this folder (finite_width, spectrum_solver) go to the per-user cache, keyed
# also on the engine files whose helpers they inline
_compile_cache.register(_os.path.dirname(__file__), depends=_compile_cache.ENGINE_FILES)
