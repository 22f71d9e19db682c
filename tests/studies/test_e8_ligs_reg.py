"""E8: the LIGS weight axis, the claims against standard training, the figure."""

from __future__ import annotations

import numpy as np

from conftest import FIXTURE_TABLES, figure_values, metrics_frame, read_csv, run_info, seed_mean, study_claims
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.verdicts import INCONCLUSIVE, PASS
from normrobust.studies.e8_ligs_reg import analysis as e8_ligs_reg

REGIMES = {"standard": {"attack": None}, "reg1": {"attack": None, "objective": "ligs_reg", "ligs_weight": 1},
           "pgd": {"attack": {"type": "pgd", "norm": "linf", "eps": 4}}}
E8 = {"e8_ligs_reg": {"dataset": "g", "archs": ["cnn"], "norms": ["bn"], "regimes": ["standard", "reg1", "pgd"]}}


def test_weights_are_the_regimes_ligs_weight():
    view = StudyView.of(run_info(E8, regimes=REGIMES), "e8_ligs_reg")
    assert e8_ligs_reg.weights(view) == {"standard": 0.0, "reg1": 1.0}


def test_claims_against_standard_training():
    rows = []
    for s in (0, 1):
        rows += [("g", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.85),
                 ("g", "cnn", "bn", "reg1", s, "clean_acc", "none", 0, 0.84),
                 ("g", "cnn", "bn", "standard", s, "robust_acc", "pgd_linf", 4, 0.15),
                 ("g", "cnn", "bn", "reg1", s, "robust_acc", "pgd_linf", 4, 0.25)]
    df = study_claims("e8_ligs_reg", run_info(E8, regimes=REGIMES), metrics=metrics_frame(rows))
    v = df.set_index("id")["verdict"]
    assert v["E8-bn-reg1-robust"] == PASS and v["E8-bn-reg1-clean"] == PASS
    assert v["E8-bn-reg1-ligs"] == INCONCLUSIVE  # no LIGS rows
    assert not any("pgd" in i for i in v.index)  # only ligs_reg regimes are claims of E8


def test_ligs_reg_lines_against_weight(mini):
    _, lines, _, _ = figure_values("ligs_reg", mini)
    m = read_csv(mini, "metrics")
    x, y = lines["robust_acc|cnn|bn"]
    np.testing.assert_allclose(x, [0.0, 0.5, 5.0])
    exp = [seed_mean(m, dataset="gen", arch="cnn", norm="bn", regime=r, metric="robust_acc", attack="pgd_linf", eps=4)
           for r in ("standard", "lg1", "lg2")]
    np.testing.assert_allclose(y, np.array(exp) * 100)
    np.testing.assert_allclose(lines["ligs|cnn|bn"][1], [seed_mean(m, dataset="gen", arch="cnn", norm="bn", regime=r,
                                                                   metric="ligs") for r in ("standard", "lg1", "lg2")])


def test_table_rows_by_weight():
    from normrobust.analysis.tables import read_run_info, read_table

    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e8_ligs_reg")
    e8 = e8_ligs_reg.section(view, {"metrics": read_table(FIXTURE_TABLES, "metrics")}, lambda n, t: t)
    assert [ln.split(" & ")[0] for ln in e8["tables"]["main"].splitlines() if " & BN & " in ln] == ["0", "1", "10"]
