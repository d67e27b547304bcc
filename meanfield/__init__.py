"""meanfield: mean-field signal propagation for deep networks.

Theory of "Redefining the self-normalization property": activations (SELU,
dSELU, sSELU, lSELU and any other), their Gaussian functionals, the
constrained parameter solvers, the layer-to-layer recursions and their
finite-width corrections.

Where things are (docs/architecture.md), lowest layer first:

* ``arguments``, ``results``, ``resources``: argument checks, result attributes, estimates;
* ``gauss/``: the Gaussian-integration engine (Mills ratio, closed forms, quadrature, kernels);
* ``activations/``: spec strings, the activation table, Activation objects, parameter solvers;
* ``theory/``: functionals, recursions, finite-width theory, fixed points, Definition 2;
* ``paper/``: the paper's printed values and Table 5; ``validate``; ``cli/``: the command line.

The names below are imported on first use (PEP 562), so that ``import
meanfield`` and the command line start fast; ``dir(meanfield)`` lists them.
The package imports only numpy, scipy, numba and xarray, never the packages
built on it (``sim``, ``cuda_kernels``, ``figures``).
"""

from ._lazy import lazy_exports
from ._version import __version__

#: submodule -> the public names it defines
_EXPORTS = {
    "activations.objects": ("Activation", "Elementwise", "ExpLinear", "custom"),
    "activations.registry": ("SELU_ALPHA", "SELU_LAMBDA"),
    "activations.resolve": ("activation",),
    "activations.spec": ("parse_spec",),
    "activations.solvers": ("InfeasibleError", "Solution", "solve"),
    "theory.functionals": ("FINITE_WIDTH_QUANTITIES", "delta", "derivative_mean_map", "explosion_factor",
                           "finite_width_moments", "gamma", "gamma_fixed_point", "jacobian_fourth_moment",
                           "jacobian_second_moment", "jacobian_second_moment_derivative", "mean_map", "mean_map_all", "moments",
                           "second_moment", "second_moment_derivative"),
    "theory.definition": ("self_normalization",),
    "theory.fixed_points": ("correlation_map", "correlation_slope", "critical_sigma_w2", "depth_scales",
                            "fixed_point", "mu_nu_fixed_point", "mu_nu_jacobian", "mu_nu_map"),
    "theory.finite_width": ("SATURATION_LIMIT", "FiniteWidthWarning", "finite_width"),
    "theory.recursions": ("mean_recursion", "recursion"),
    "theory.spectrum": ("SpectrumAccuracyWarning", "jacobian_moments", "spectrum"),
    "theory.dropout": ("alpha_dropout", "dropout_constants", "finite_width_dropout"),
    "results": ("activation_attrs", "dataset_attrs", "to_json"),
    "paper.table5": ("table5",),
    "arguments": ("check_number",),
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS, globals())
__all__ = ["__version__", *_names]
