"""The serial CNN's mean-field theory at initialization (sim.conv.cnn_theory) against networks."""

import numpy as np
import pytest
import torch

from sim.conv import SerialCNN, cnn_theory, layer_plan, simulate_cnn

FAMILY = ["selu", "sselu:epsilon=0.017", "lselu:epsilon=0.017"]
#: draws per comparison, and the bound in standard errors of their mean: a two-sided t-test with
#: 15 degrees of freedom exceeds 5 with probability 1.6e-4, so the 2 × 13 layer comparisons of one
#: activation raise a false alarm with probability < 0.5 %
DRAWS, BOUND = 16, 5.0
SETTINGS = dict(depth=14, batch=16, seeds=DRAWS, input_size=8, dtype="float64")


def _z(measured, theory):
    """(mean − theory)/SE per layer, the classifier (NaN theory) left out."""
    mean = measured.mean(0)
    se = measured.std(0, ddof=1) / np.sqrt(len(measured))
    return ((mean - theory) / se)[np.isfinite(theory)]


def test_layer_plan_is_the_networks():
    model = SerialCNN("selu", 20, k=2, in_channels=1)
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in model.convs] == layer_plan(20, k=2, in_channels=1)
    assert sum(stride == 2 for _, _, stride in layer_plan(56)) == 2 and len(layer_plan(56)) == 55


@pytest.mark.parametrize("weights,base", [("gaussian", 16), ("delta-orthogonal", 64)])
@pytest.mark.parametrize("activation", FAMILY)
def test_theory_at_initialization_matches_networks(activation, weights, base):
    # 8×8 inputs: stage 3 runs at 2×2, where zero padding removes 5 of 9 taps at every position.
    # Delta-orthogonal kernels: each position is a width-c orthogonal network, whose O(1/c) drift
    # (+1 to +5 % of q at c = 16, +0.5 to +1.4 % at 64, docs/figures.md §1) is several SE at c = 16
    ds = simulate_cnn(activation, weights=weights, base_channels=base, **SETTINGS)
    assert np.all(np.abs(_z(ds.q_measured.values, ds.q_theory.values)) < BOUND)
    # ‖∂L/∂W‖²: E of the square is what the theory gives
    assert np.all(np.abs(_z(ds.weight_grad_norm.values ** 2, ds.grad_theory.values ** 2)) < BOUND)


def test_a_wrong_network_fails_the_same_bound():
    # negative control: networks drawn with sigma_w2 = 1.15 against the theory of sigma_w2 = 1
    right = simulate_cnn("selu", **SETTINGS)
    wrong = simulate_cnn("selu", sigma_w2=1.15, **SETTINGS)
    assert np.any(np.abs(_z(wrong.q_measured.values, right.q_theory.values)) > BOUND)
    assert np.any(np.abs(_z(wrong.weight_grad_norm.values ** 2, right.grad_theory.values ** 2)) > BOUND)


def test_gaussian_networks_fail_the_delta_orthogonal_theory():
    orthogonal = simulate_cnn("selu", weights="delta-orthogonal", **SETTINGS)
    gaussian = simulate_cnn("selu", **SETTINGS)
    assert np.any(np.abs(_z(gaussian.q_measured.values, orthogonal.q_theory.values)) > BOUND)


def test_delta_orthogonal_kernels():
    model = SerialCNN("selu", 8, weights="delta-orthogonal", sigma_w2=1.5)
    for conv in model.convs:
        w = conv.weight.detach().double()
        c_out, c_in = w.shape[:2]
        centre = w[:, :, 1, 1]
        # HᵀH = σ_w² (c_out/c_in) I: every position's ‖h‖² is σ_w² (c_out/c_in) ‖x‖² exactly
        torch.testing.assert_close(centre.T @ centre, 1.5 * c_out / c_in * torch.eye(c_in, dtype=torch.float64),
                                   atol=1e-5, rtol=0)  # float32 kernels
        assert float(w.abs().sum() - centre.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="weights must be one of gaussian, delta-orthogonal"):
        SerialCNN("selu", 8, weights="orthogonal")


def test_zero_padding_is_in_the_theory():
    # one layer on an all-ones image: a corner sees 4 of 9 taps, an edge 6, the interior 9
    q = cnn_theory("selu", np.ones((1, 1, 4, 4)), depth=8)["q"][0]
    assert q == pytest.approx((4 * 4 + 8 * 6 + 4 * 9) / 9 / 16, rel=1e-15)


def test_a_region_of_zeros_is_h_equal_zero_there():
    # an all-zero image: every q_1 is 0, so X_1 = f(0)² (0 for the SELU family) and q stays 0
    out = cnn_theory("selu", np.zeros((2, 1, 8, 8)), depth=8, cotangent_sq=1.0)
    assert np.all(out["q"][:-1] == 0.0) and np.all(np.isfinite(out["grad_norm"][:-1]))


def test_theory_rejects_a_batch_that_is_not_images():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        cnn_theory("selu", np.ones((4, 8)), depth=8)
