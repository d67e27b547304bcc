"""meanfield: mean-field signal propagation for deep networks.

Theory of "Redefining the self-normalization property": activations (SELU,
dSELU, sSELU, lSELU and any other), their Gaussian functionals, the
constrained parameter solvers, and the layer-to-layer recursions.
"""

from ._results import dataset_attrs
from ._validate import check_number
from ._version import __version__
from .activations import SELU_ALPHA, SELU_LAMBDA, Activation, Elementwise, ExpLinear, custom
from .functionals import (
    delta,
    derivative_mean_map,
    explosion_factor,
    FINITE_WIDTH_QUANTITIES,
    finite_width_moments,
    gamma,
    gamma_fixed_point,
    jacobian_second_moment,
    jacobian_second_moment_derivative,
    mean_map,
    mean_map_all,
    moments,
    second_moment,
    second_moment_derivative,
)
from .definition import self_normalization
from .fixed_points import (
    correlation_map,
    correlation_slope,
    critical_sigma_w2,
    depth_scales,
    fixed_point,
    mu_nu_fixed_point,
    mu_nu_jacobian,
    mu_nu_map,
)
from .finite_network import SATURATION_LIMIT, FiniteWidthWarning, finite_width
from .recursions import mean_recursion, recursion
from .solvers import InfeasibleError, Solution, solve
from .spec import activation, parse_spec
from .table5 import table5

__all__ = [
    "__version__",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "Activation",
    "Elementwise",
    "ExpLinear",
    "FINITE_WIDTH_QUANTITIES",
    "FiniteWidthWarning",
    "SATURATION_LIMIT",
    "InfeasibleError",
    "Solution",
    "activation",
    "correlation_map",
    "correlation_slope",
    "critical_sigma_w2",
    "check_number",
    "custom",
    "dataset_attrs",
    "depth_scales",
    "fixed_point",
    "mean_recursion",
    "mu_nu_fixed_point",
    "mu_nu_jacobian",
    "mu_nu_map",
    "recursion",
    "self_normalization",
    "table5",
    "delta",
    "derivative_mean_map",
    "explosion_factor",
    "finite_width",
    "finite_width_moments",
    "gamma",
    "gamma_fixed_point",
    "jacobian_second_moment",
    "jacobian_second_moment_derivative",
    "mean_map",
    "mean_map_all",
    "moments",
    "parse_spec",
    "second_moment",
    "second_moment_derivative",
    "solve",
]
