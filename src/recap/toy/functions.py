"""The two-task toy problem of RECAP appendix A.6 (a noisy variant of Liu et al. 2021's toy).

Two objectives on a shared parameter ``x = (x1, x2)``:

    L1(x) = f1(x) g1(x) + f2(x) h1(x)  (+ 3 eps, eps ~ N(0, 1), added by the study per step)
    L2(x) = f1(x) g2(x) + f2(x) h2(x)

    f1 = max(tanh(0.5 x2), 0)                 f2 = max(tanh(-0.5 x2), 0)
    g1 = log(max(|0.5 (-x1 - 7) - tanh(-x2)|, 5e-6)) + 6
    g2 = log(max(|0.5 (-x1 + 3) + tanh(-x2) + 2|, 5e-6)) + 6
    h1 = ((-x1 + 7)^2 + 0.1 (-x2 - 8)^2) / 10 - 20
    h2 = ((-x1 - 7)^2 + 0.1 (-x2 - 8)^2) / 10 - 20

Departures from the formulas as printed in the RECAP paper (appendix A.6), deliberately:
- g2 has ``+ tanh(-x2)`` (the paper prints ``- tanh(-x2)``) and h1/h2 use ``x2`` in the second
  square (the paper prints ``x1``). Both are misprints: the toy the paper says it modifies is used
  unchanged by the CAGrad (``Cranial-XIX/CAGrad/toy.py``), Nash-MTL
  (``AvivNavon/nash-mtl/experiments/toy/problem.py``) and FAMO reference code, which all define it
  as above. g1 (``- tanh(-x2)``) and the +7 / -7 centres of h1 / h2 are the same in the paper
  and in those three references, so they are kept as printed.
- No rescaling of L1: Nash-MTL and FAMO multiply L1 by 0.1 in their toy scripts, CAGrad does not,
  and the RECAP paper prints no factor. ``scale_first`` exposes it (default 1, i.e. as printed).

Only the values (not the gradients) of L1 are affected by the additive noise, so methods that
read gradients only (equal weighting, every gradient aggregator) follow the noise-free path.
"""

from __future__ import annotations

import torch

#: Floor inside the logs of g1, g2 (Liu et al. 2021; RECAP paper appendix A.6).
LOG_FLOOR = 5e-6
#: Standard deviation of the noise added to the first objective's value (RECAP A.6: 3 eps).
NOISE_STD = 3.0
#: The five start points of the RECAP paper appendix A.6 (identical to Nash-MTL's toy).
START_POINTS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5),
    (0.0, 0.0),
    (9.0, 9.0),
    (-7.5, -0.5),
    (9.0, -1.0),
)
#: Infimum of both noise-free objectives over R^2: h_k >= -20 with f2 <= 1, g_k f1 >= -6.2.
LOSS_INFIMUM = -20.0
#: Names the weighting strategies see for the two objectives.
OBJECTIVES: tuple[str, str] = ("L1", "L2")


def toy_losses(x: torch.Tensor, scale_first: float = 1.0) -> torch.Tensor:
    """Noise-free toy objectives ``(L1, L2)`` of RECAP appendix A.6 (reference definitions).

    Args:
        x: parameters, shape ``[..., 2]`` (any leading batch shape; differentiable).
        scale_first: factor on L1 (1 in the RECAP paper and CAGrad; 0.1 in Nash-MTL / FAMO scripts).

    Returns:
        Losses of shape ``[..., 2]``: ``[..., 0]`` is L1, ``[..., 1]`` is L2.
    """
    x1, x2 = x[..., 0], x[..., 1]
    t = torch.tanh(-x2)
    g1 = torch.log(torch.clamp(torch.abs(0.5 * (-x1 - 7.0) - t), min=LOG_FLOOR)) + 6.0
    g2 = torch.log(torch.clamp(torch.abs(0.5 * (-x1 + 3.0) + t + 2.0), min=LOG_FLOOR)) + 6.0
    f1 = torch.clamp(torch.tanh(0.5 * x2), min=0.0)
    f2 = torch.clamp(torch.tanh(-0.5 * x2), min=0.0)
    sq = 0.1 * (-x2 - 8.0) ** 2
    h1 = ((-x1 + 7.0) ** 2 + sq) / 10.0 - 20.0
    h2 = ((-x1 - 7.0) ** 2 + sq) / 10.0 - 20.0
    l1 = (f1 * g1 + f2 * h1) * scale_first
    l2 = f1 * g2 + f2 * h2
    return torch.stack([l1, l2], dim=-1)


def start_points(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The five start points of the RECAP paper appendix A.6 as a ``[5, 2]`` tensor."""
    return torch.tensor(START_POINTS, dtype=dtype)
