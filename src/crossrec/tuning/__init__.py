"""Optuna sweeps over the finetune configuration (no Kedro in here).

- :mod:`crossrec.tuning.space`: the YAML search space, validated against ``FinetuneConfig``.
- :mod:`crossrec.tuning.config`: schema of ``conf/base/parameters_tune.yml: tune``.
- :mod:`crossrec.tuning.storage`: RDB storage that several processes can share without losing or
  duplicating trials.
- :mod:`crossrec.tuning.study`: sampler / pruner factories and the study runner.
- :mod:`crossrec.tuning.objective`: the finetune objective (validation Recall@20 by default).
- :mod:`crossrec.tuning.results`: best parameters as a ``finetune:`` block, summaries, plots.
"""
