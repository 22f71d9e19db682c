"""E7: regimes recognised by their objective, the claims, the figure in the study's order."""

from __future__ import annotations

import pytest

from conftest import claim_row, figure_values, metrics_frame, read_csv, run_info, seed_mean, study_claims
from normrobust.analysis.verdicts import FAIL, PASS

PGD = {"type": "pgd", "norm": "linf", "eps": 4}
REGIMES = {"plain": {"attack": None}, "shared": {"attack": PGD, "objective": "mixed"},
           "aux": {"attack": PGD, "objective": "advprop"}, "madry": {"attack": PGD},
           "gw": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8}, "objective": "weighted"}}
E7 = {"e7_adv_training": {"dataset": "g", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": list(REGIMES)}}


def test_regimes_recognised_by_objective():
    clean = {"plain": 0.85, "shared": 0.80, "aux": 0.86, "madry": 0.7, "gw": 0.78}
    rob = {("none", "plain"): 0.4, ("bn", "plain"): 0.15, ("none", "madry"): 0.55, ("bn", "madry"): 0.56,
           ("none", "gw"): 0.35, ("bn", "gw"): 0.4}
    rows = [("g", "cnn", "bn", r, s, "clean_acc", "none", 0.0, c + 0.001 * s) for r, c in clean.items() for s in (0, 1)]
    rows += [("g", "cnn", n, r, s, "robust_acc", "pgd_linf", 4.0, v) for (n, r), v in rob.items() for s in (0, 1)]
    df = study_claims("e7_adv_training", run_info(E7, regimes=REGIMES), metrics=metrics_frame(rows))
    v = df.set_index("id")["verdict"]
    assert v["E7-bn-mixed-clean"] == PASS and v["E7-bn-advprop-clean"] == PASS
    assert v["E7-bn-advprop-std"] == PASS and v["E7-bn-adv-robust"] == PASS
    assert v["E7-bn-fgsm-robust"] == PASS
    assert v["E7-none-fgsm-robust"] == FAIL  # 0.35 < 0.40 on both seeds
    assert "84.5 → 85.2" in claim_row(df, "E7-bn-advprop-clean")["paper"]
    assert claim_row(df, "E7-bn-advprop-clean")["paper"].startswith("+0.7 top-1")


def test_adv_training_bars_in_study_order(mini):
    bars, _, _, fig = figure_values("adv_training", mini)
    m = read_csv(mini, "metrics")
    exp = seed_mean(m, dataset="gen", arch="cnn", norm="bn", regime="advprop", metric="robust_acc",
                    attack="pgd_linf", eps=4)
    assert bars["robust_acc|cnn|advprop|bn"] == pytest.approx(exp * 100)
    exp = seed_mean(m, dataset="gen", arch="cnn", norm="none", regime="mixed", metric="clean_acc")
    assert bars["clean_acc|cnn|mixed|none"] == pytest.approx(exp * 100)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0] == "standard" and ticks[-1] == "FGSM AT" and ticks[3] == "AdvProp"
