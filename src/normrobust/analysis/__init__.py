"""The analysis half of the pipeline, shared by every study and naming none.

Everything downstream of training reads only the aggregated tables (``results/tables/``). The modules:

* ``tables``: reading the tables and ``run_info.json`` (a missing file is an error naming it);
* ``labels``: display names, orders, number formatting and LaTeX escaping;
* ``metric``: one measured quantity (:class:`Metric`) and the per-seed values of a cell;
* ``selection``: the one cell filter and seed statistics;
* ``study_view``: what a study module sees of a run (its config entry, cells, headline metric);
* ``verdicts``: the verdict rule; ``claims``: claim kinds, their measurement and the claims table;
* ``plotting``: the figures' style and drawing helpers (matplotlib is imported on first use);
* ``latex``: the report's LaTeX tables; ``reproduction``: published numbers beside ours, and limitations;
* ``report``: the report driver (one section per enabled study, from the registry ``normrobust.studies``).
"""
