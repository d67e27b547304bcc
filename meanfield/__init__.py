"""meanfield: mean-field signal propagation for deep networks.

Theory of "Redefining the self-normalization property": activations (SELU,
dSELU, sSELU, lSELU and any other), their Gaussian functionals, the
constrained parameter solvers, the layer-to-layer recursions and their
finite-width corrections.

The names below are imported on first use (PEP 562), so that ``import
meanfield`` and the command line start fast; ``dir(meanfield)`` lists them.
The package imports only numpy, scipy, numba and xarray, never the packages
built on it (``sim``, ``cuda_kernels``, ``figures``).
"""

from ._version import __version__

#: public name -> the submodule that defines it
_EXPORTS = {
    "activations": ("SELU_ALPHA", "SELU_LAMBDA", "Activation", "Elementwise", "ExpLinear", "custom"),
    "functionals": ("FINITE_WIDTH_QUANTITIES", "delta", "derivative_mean_map", "explosion_factor",
                    "finite_width_moments", "gamma", "gamma_fixed_point", "jacobian_second_moment",
                    "jacobian_second_moment_derivative", "mean_map", "mean_map_all", "moments", "second_moment",
                    "second_moment_derivative"),
    "definition": ("self_normalization",),
    "fixed_points": ("correlation_map", "correlation_slope", "critical_sigma_w2", "depth_scales", "fixed_point",
                     "mu_nu_fixed_point", "mu_nu_jacobian", "mu_nu_map"),
    "finite_network": ("SATURATION_LIMIT", "FiniteWidthWarning", "finite_width"),
    "recursions": ("mean_recursion", "recursion"),
    "results": ("activation_attrs", "dataset_attrs", "to_json"),
    "solvers": ("InfeasibleError", "Solution", "solve"),
    "spec": ("activation", "parse_spec"),
    "tables": ("table5",),
    "_validate": ("check_number",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'meanfield' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
