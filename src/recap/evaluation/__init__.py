"""Evaluation: greedy capability suites, forgetting report, perplexity-gap analysis.

- :mod:`recap.evaluation.metrics`: reward means + POPE existence metrics (pure functions).
- :mod:`recap.evaluation.evaluator`: ``evaluate(policy_or_path, suites, ...)`` (``recap eval``).
- :mod:`recap.evaluation.report`: ``write_report(base, runs, run_dirs, out_dir)``, ``recap report``.
- :mod:`recap.evaluation.perplexity`: perplexity gaps of the jigsaw RFT paper sec. 5.4.

Submodules are imported on use: the evaluator does not need matplotlib, the report needs no torch.
"""
