"""Studies: arms x training seeds, one fixed held-out evaluation, statistics and a report.

``recap study FILE`` on the command line, :func:`run_study` in Python::

    from recap.studies import load_study, run_study

    result = run_study(load_study("study.yaml"), "out/", jobs=2)
    result["comparisons"]["recap vs uniform"]["count_think/accuracy"]  # diff, ci_low, ci_high, p
"""

from recap.studies.runner import run_study
from recap.studies.spec import ArmSpec, EvalPlan, StudySpec, load_study
from recap.studies.stats import Estimate, estimate, paired_difference

__all__ = ["ArmSpec", "Estimate", "EvalPlan", "StudySpec", "estimate", "load_study",
           "paired_difference", "run_study"]
