"""The paper's printed numbers and our reproduction of them.

* ``values``: reference values printed in the paper (Table 5), with where they come from;
* ``table5``: Table 5 recomputed by the solvers, row by row, beside the printed values.

May import :mod:`meanfield.theory`, :mod:`meanfield.activations` and the foundation modules.
"""
