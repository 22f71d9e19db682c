"""The analysis half of the pipeline, shared by every study and naming none.

Everything downstream of training reads only the aggregated tables (``results/tables/``). Only the reporting rules
import this package: the compute jobs never do (tests/test_plan.py checks it). The modules:

* ``tables``: reading the tables and ``run_info.json`` (a missing file is an error naming it);
* ``labels``: display names, orders, number formatting and LaTeX escaping;
* ``metric``: one measured quantity (:class:`Metric`) and the per-seed values of a cell;
* ``selection``: the one cell filter and seed statistics;
* ``study_view``: what a study module sees of a run (its config entry, cells, headline metric);
* ``verdicts``: the verdict rule; ``claims``: claim kinds, their measurement and the claims table; ``paired``:
  the per-image variance of claims on the same test images;
  ``transfer_claim``: the transfer claim kind; ``claims_step``: every run study's claims evaluated on the tables
  (the claims rule, the only place claims are evaluated);
* ``plotting``: the figures' style and drawing helpers (matplotlib is imported on first use);
* ``latex``: the report's LaTeX tables and captions; ``reproduction``: published numbers beside ours, and
  limitations; ``evaluation_checks``: AutoAttack beside PGD, the derived datasets' table;
* ``report``: the report's render (one section per run study, from the registry ``normrobust.studies``; it reads
  claims.csv), ``report_setup``: its setup section, ``report_build``: the LaTeX build.
"""
