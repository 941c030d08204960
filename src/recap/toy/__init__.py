"""The toy two-task study of the RECAP paper appendix A.6 (`recap bench toy`).

Modules: `functions` (the two objectives, reference definitions), `front` (analytic Pareto front
and distances), `runner` (batched optimisation with a `recap.weighting` strategy or a gradient
aggregator), `metrics`, `cost` (micro-benchmarks), `study` (`run_toy_study`), `plots`, `report`.
"""

from recap.toy.front import distance_to_front, pareto_front
from recap.toy.functions import START_POINTS, toy_losses
from recap.toy.study import run_toy_study

__all__ = ["START_POINTS", "distance_to_front", "pareto_front", "run_toy_study", "toy_losses"]
