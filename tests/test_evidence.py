"""The evidence page (``python -m normrobust evidence``): made from finished runs' tables only, byte-identical when
remade, one error line for a missing claims.csv."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, make_claims_csv
from fixture_tables import ROOT, load_config, make_tables
from normrobust.__main__ import main as dispatch
from normrobust.analysis.evidence import AGREES, DISAGREES, UNDECIDED, directions
from normrobust.analysis.reproduction import Published
from normrobust.studies import analyses

PUBLISHED = [p for m in analyses() for p in m.PUBLISHED]
COMMITS = {"default": "0123abcd" * 5, "fgsm-mnist": "fedc9876" * 5}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Two finished runs' tables with their claims.csv: the default config's and the fgsm-mnist preset's (each with a
    commit of its own)."""
    root = tmp_path_factory.mktemp("evidence")
    runs = {"default": shutil.copytree(FIXTURE_TABLES, root / "default" / "tables"),
            "fgsm-mnist": make_tables(root / "fgsm" / "tables",
                                      load_config(ROOT / "workflow" / "presets" / "fgsm-mnist.yaml"))}
    for name, tables in runs.items():
        make_claims_csv(tables)
        info = json.loads((tables / "run_info.json").read_text())
        info["git_commit"] = COMMITS[name]
        (tables / "run_info.json").write_text(json.dumps(info, indent=2))
    return runs


@pytest.fixture()
def runs(built, tmp_path) -> dict[str, Path]:
    """A private copy of the two runs' tables (a test may edit them)."""
    return {name: shutil.copytree(tables, tmp_path / name) for name, tables in built.items()}


def make_page(runs: dict[str, Path], out: Path) -> str:
    argv = ["evidence"] + [a for name, tables in runs.items() for a in ("--run", f"{name}={tables}")]
    assert dispatch(argv + ["--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def sections(page: str) -> dict[str, str]:
    """Run name → its section of the page."""
    parts = re.split(r"^## Run `([^`]+)`$", page, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def table_rows(section: str, heading: str) -> list[list[str]]:
    """The cells of the markdown table under ``### heading`` (header included, the alignment row left out)."""
    block = section.split(f"### {heading}\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines if not ln.startswith("| ---")]


def claims_of(tables: Path) -> pd.DataFrame:
    return pd.read_csv(tables / "claims.csv", dtype=str, keep_default_na=False)


def test_the_page_holds_provenance_claims_and_published_numbers_of_every_run(runs, tmp_path):
    page = make_page(runs, tmp_path / "evidence.md")
    assert page.startswith("# Evidence\n\n") and page.endswith("\n") and not page.endswith("\n\n")
    command = " ".join(["python -m normrobust evidence", *(f"--run {n}={t}" for n, t in runs.items()),
                        f"--out {tmp_path / 'evidence.md'}"])
    assert command in page.split("\n## ", 1)[0], "the first paragraph quotes the exact command"
    secs = sections(page)
    assert list(secs) == list(runs), "one section per run, in the order given"
    for name, tables in runs.items():
        sec, info = secs[name], json.loads((tables / "run_info.json").read_text())
        assert f"`{COMMITS[name]}`" in sec and f"`{info['config_sha256'][:12]}`" in sec
        assert info["config_sha256"][:13] not in sec, "the config hash: its first 12 characters"
        assert f"- device: {info['device']}" in sec
        assert "- seeds: " + ", ".join(map(str, info["config"]["seeds"])) in sec
        for ds, d in info["config"]["datasets"].items():
            assert f"{ds} ({d['kind']})" in sec
        assert "- studies run: " + ", ".join(info["config"]["run"]) in sec
        every = claims_of(tables)
        claims = every[every["kind"] != "manipulation check"]  # listed apart, never counted
        rows = table_rows(sec, "Claims")
        assert rows[0] == ["id", "claim", "Δ mean [95 % CI]", "n seeds", "verdict", "note"]
        assert [(r[0], r[4]) for r in rows[1:]] == list(zip(claims["id"], claims["verdict"])), "claims.csv's order"
        for r, (_, c) in zip(rows[1:], claims.iterrows()):
            assert r[5] == (c["note"] if c["verdict"] in ("INCONCLUSIVE", "NOT TESTABLE") else "").replace("|", "\\|")
            assert r[2] == "n/a" or re.fullmatch(r"[-+]?\d+\.\d{1,3}( pp)? \[\S+, \S+\]", r[2]), r[2]
        counts = claims["verdict"].value_counts()
        assert (f"PASS {counts.get('PASS', 0)} · FAIL {counts.get('FAIL', 0)} · INCONCLUSIVE "
                f"{counts.get('INCONCLUSIVE', 0)} · NOT TESTABLE {counts.get('NOT TESTABLE', 0)};") in sec
        published = table_rows(sec, "Published vs ours")
        assert published[0][-1] == "direction" and published[0][:4] == ["source", "setting", "quantity", "published"]
        assert [r[2] for r in published[1:]] == [p.quantity for p in PUBLISHED], "every number, in PUBLISHED's order"
        assert {r[-1] for r in published[1:]} <= {AGREES, DISAGREES, UNDECIDED, ""}
        assert all((r[4] == "not run") == (r[5] == "not run") for r in published[1:])
    default = table_rows(secs["default"], "Published vs ours")[1:]
    assert {AGREES, DISAGREES} & {r[-1] for r in default}, "the default run has both sides of BN / no-norm pairs"
    assert all(r[-1] in (UNDECIDED, "") for r in table_rows(secs["fgsm-mnist"], "Published vs ours")[1:])


def test_not_testable_and_manipulation_checks_are_counted_apart(runs, tmp_path):
    tables = runs["fgsm-mnist"]
    claims = claims_of(tables)
    claims.loc[0, ["verdict", "note"]] = ["NOT TESTABLE", "the model did not learn the task"]
    claims["kind"] = ""
    claims.loc[1, "kind"] = "manipulation check"
    claims.to_csv(tables / "claims.csv", index=False)
    sec = sections(make_page(runs, tmp_path / "evidence.md"))["fgsm-mnist"]
    evidence = claims.drop(index=1)
    counts = evidence["verdict"].value_counts()
    decided = counts.get("PASS", 0) + counts.get("FAIL", 0)
    testable = len(evidence) - counts.get("NOT TESTABLE", 0)
    share = (f"{decided} of {testable} testable claims ({100 * decided / testable:.1f} %)" if testable
             else "no testable claim")
    assert (f"**Verdicts** ({len(evidence)} claims; 1 manipulation check listed apart): PASS {counts.get('PASS', 0)} "
            f"· FAIL {counts.get('FAIL', 0)} · INCONCLUSIVE {counts.get('INCONCLUSIVE', 0)} · NOT TESTABLE "
            f"{counts.get('NOT TESTABLE', 0)}; decided (PASS or FAIL): {share}.") in sec
    rows = table_rows(sec, "Claims")[1:]
    assert [r[0] for r in rows] == list(evidence["id"])
    assert rows[0][4:] == ["NOT TESTABLE", "the model did not learn the task"]
    checks = table_rows(sec, "Manipulation checks (not counted as evidence)")[1:]
    assert [r[0] for r in checks] == [claims.loc[1, "id"]]


def test_rerunning_gives_a_byte_identical_page(runs, tmp_path):
    out = tmp_path / "docs" / "evidence.md"
    first = (make_page(runs, out), out.read_bytes())
    second = (make_page(runs, out), out.read_bytes())
    assert first[1] == second[1]
    assert make_page(dict(reversed(list(runs.items()))), out) != first[0], "the order given is the page's"


def test_a_missing_claims_csv_is_one_error_line_naming_the_file(runs, tmp_path, capsys):
    (runs["fgsm-mnist"] / "claims.csv").unlink()
    out = tmp_path / "evidence.md"
    argv = ["evidence"] + [a for n, t in runs.items() for a in ("--run", f"{n}={t}")] + ["--out", str(out)]
    assert dispatch(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(runs["fgsm-mnist"] / "claims.csv") in err[0] and "missing" in err[0], err
    assert not out.exists()


def test_direction_compares_the_sign_of_bn_minus_no_norm():
    def entry(quantity, norm, value, **kw):
        return Published("x", "[B] Fig. 0", "s", quantity, value, norm=norm, **kw)

    published = [entry("bn clean", "bn", 90.0), entry("none clean", "none", 80.0),  # paper: BN higher
                 entry("bn ligs", "bn", 0.5, metric="ligs"), entry("none ligs", "none", 0.9, metric="ligs"),
                 entry("bn rob", "bn", 10.0, metric="robust_acc"), entry("none rob", "none", 10.0, metric="robust_acc"),
                 entry("bn adv", "bn", 1.0, role="adversarial"), entry("none adv", "none", 2.0, role="adversarial"),
                 entry("bn only", "bn", 5.0, metric="shifted_acc"), entry("in clean", "in", 85.0)]
    ours = [(95.0, "a"), (70.0, "a"),  # ours: BN higher too
            (0.8, "a"), (0.7, "a"),  # ours: BN higher, the paper's lower
            (20.0, "a"), (30.0, "a"),  # the paper shows no difference
            (1.0, "a"), (2.0, "b"),  # ours from different cells
            (1.0, "a"), (1.0, "a")]
    repro = pd.DataFrame({"ours": [o for o, _ in ours], "ours_cell": [c for _, c in ours],
                          "norm": [p.norm for p in published]})
    assert directions(repro, published) == [AGREES, AGREES, DISAGREES, DISAGREES, UNDECIDED, UNDECIDED,
                                            UNDECIDED, UNDECIDED, "", ""]
    repro.loc[1, "ours"] = float("nan")  # no-norm side not run
    assert directions(repro, published)[:2] == [UNDECIDED, UNDECIDED]
