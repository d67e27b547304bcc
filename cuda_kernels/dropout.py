"""Alpha dropout for any activation, as a torch module, and a check for SELU's constants used elsewhere.

:class:`AlphaDropout` takes an activation (or its spec) and a drop rate p and computes its constants a,
b and the dropped value α′ from the theory (``meanfield.dropout_constants``: the activation's own mean
and variance at its fixed point).  In training it draws a Bernoulli(1 − p) mask per element and
returns y = a (d x + (1 − d) α′) + b in the order of operations of torch's own ``alpha_dropout``, so
that for SELU with the saturation rule it gives ``torch.nn.AlphaDropout``'s output bit for bit for
the same random state; in evaluation it is the identity.

``torch.nn.AlphaDropout`` hard-codes SELU's numbers (mean 0, variance 1, α′ = −λα).  Used with any
other activation it moves the network's fixed point: :func:`selu_constants_fixed_point` says where to,
and :func:`check_alpha_dropout` warns about every ``torch.nn.AlphaDropout`` in a model built with
another activation, naming that moved fixed point.
"""

from __future__ import annotations

import warnings

import torch

import meanfield as mf
from meanfield.theory.dropout import dropout_constants, torch_selu_constants


class AlphaDropout(torch.nn.Module):
    """Alpha dropout with the constants of ``activation`` (a spec string or an Activation).

    ``dropped``: 'saturation', 'mean' or a number (default: the activation's, 'saturation' where f
    saturates below, 'mean' otherwise); ``sigma_w2``, ``sigma_b2``: the fixed point the constants
    restore (default 1, 0).
    """

    def __init__(self, activation, p: float = 0.1, dropped=None, sigma_w2: float = 1.0, sigma_b2: float = 0.0):
        super().__init__()
        act = mf.activation(activation)
        c = dropout_constants(act, p, dropped, sigma_w2, sigma_b2)
        self.activation = act.spec
        self.p = float(c["p"])
        self.a = float(c["a"])
        self.b = float(c["b"])
        self.alpha_prime = float(c["alpha_p"])
        self.rule = c["rule"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        noise = torch.empty_like(x).bernoulli_(1.0 - self.p)
        shift = noise.add(-1).mul_(-self.alpha_prime * self.a).add_(self.b)
        noise.mul_(self.a)
        return (x * noise).add_(shift)

    def extra_repr(self) -> str:
        return (f"activation={self.activation!r}, p={self.p}, dropped={self.rule} (alpha'={self.alpha_prime:.6g}), "
                f"a={self.a:.6g}, b={self.b:.6g}")


def selu_constants_fixed_point(activation, p: float, sigma_w2: float = 1.0, sigma_b2: float = 0.0) -> float:
    """The fixed point q* of a network of ``activation`` with ``torch.nn.AlphaDropout(p)``'s SELU
    constants (μ = 0, ν = 1, α′ = −1.758...) after every activation: the root of
    q = σ_b² + σ_w² E y² (docs/dropout.md), found from q = 1.  For SELU itself it is 1."""
    from scipy import optimize

    act = mf.activation(activation)
    c = torch_selu_constants(p)
    a, b, alpha_p = c["a"], c["b"], c["alpha_p"]
    k = 1.0 - p

    def excess(q):
        m2 = float(mf.second_moment(act, q))
        m1 = float(mf.mean_map(act, 0.0, q))
        return sigma_b2 + sigma_w2 * (a * a * (k * m2 + p * alpha_p**2) + 2 * a * b * (k * m1 + p * alpha_p) + b * b) - q

    return float(optimize.brentq(excess, 1e-6, 1e6, xtol=1e-14, rtol=1e-14))


def check_alpha_dropout(model: torch.nn.Module, activation, sigma_w2: float = 1.0, sigma_b2: float = 0.0):
    """Warn for every ``torch.nn.AlphaDropout`` in ``model`` when ``activation`` is not SELU: its SELU
    constants move the fixed point; the warning says where to, and what to use instead."""
    act = mf.activation(activation)
    found = [m for m in model.modules() if type(m) is torch.nn.AlphaDropout]
    if not found or act.name == "selu":
        return []
    messages = []
    for module in found:
        moved = selu_constants_fixed_point(act, module.p, sigma_w2, sigma_b2)
        native = float(mf.fixed_point(act, sigma_w2, sigma_b2).q_star)
        message = (f"torch.nn.AlphaDropout(p={module.p}) uses SELU's constants; with {act.spec} it moves the "
                   f"fixed point from q = {native:.4g} to q = {moved:.4g}: use cuda_kernels.AlphaDropout"
                   f"({act.spec!r}, p={module.p})")
        warnings.warn(message, stacklevel=2)
        messages.append(message)
    return messages
