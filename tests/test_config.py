import copy
import re
from pathlib import Path

import pytest
import yaml

from normrobust import config
from normrobust.layout import Cell
from normrobust.plan import Plan


@pytest.fixture
def default(root):
    with open(root / "config.yaml") as f:
        return yaml.safe_load(f)


def test_default_config_is_valid_and_asks_for_at_least_5_norms_2_regimes_2_seeds(default):
    cfg = config.validate(copy.deepcopy(default))
    planned = Plan(cfg).cells
    assert len({c.norm for c in planned}) >= 5
    assert len({c.regime for c in planned}) >= 2
    assert len({c.seed for c in planned}) >= 2
    assert len(planned) == len(set(planned)), "a cell shared by studies must appear once"
    assert cfg["datasets"]["generated"]["kind"] == "generated"


@pytest.mark.parametrize("change, message", [
    (lambda c: c["studies"]["e1_norms"].update(norms=["bogus"]),
     r"studies\.e1_norms\.norms\[0\]: 'bogus' is not allowed \(allowed: none, bn, ln, in, gn, fixup\)"),
    (lambda c: c["training"].update(epochz=3), r"training: unknown key 'epochz' \(allowed: .*epochs"),
    (lambda c: c.update(bogus=1), r"unknown key 'bogus'"),
    (lambda c: c["training"].update(epochs=0), r"training\.epochs: 0 is less than the minimum of 1"),
    (lambda c: c["regimes"]["pgd_linf"]["attack"].update(norm="l3"),
     r"regimes\.pgd_linf\.attack\.norm: 'l3' is not allowed \(allowed: linf, l2\)"),
    (lambda c: c["regimes"]["pgd_linf"]["attack"].update(eps=0.03), r"looks like \[0,1\] units"),
    (lambda c: c["regimes"]["pgd_linf"]["attack"].update(eps=-1), r"eps: -1 is less than or equal to"),
    (lambda c: c["studies"]["e1_norms"].update(regimes=["madry"]),
     r"studies\.e1_norms\.regimes: 'madry' is not defined under regimes \(allowed: standard, pgd_linf, pgd_small, "),
    (lambda c: c["studies"]["e1_norms"].update(dataset="cifar"), r"studies\.e1_norms\.dataset: 'cifar'"),
    (lambda c: c["evaluation"]["headline"].update(eps=3), r"evaluation\.headline\.eps: 3 is not in"),
    (lambda c: c["regimes"]["pgd_linf"].update(attack_mode="train"),
     r"attack_mode: 'train' is not allowed \(allowed: eval, train_frozen\)"),
    # bounds that follow from the data: image size and pixel range, split sizes, epochs
    (lambda c: c["evaluation"]["attacks"]["pgd_l2"].update(eps=[0.25, 1.0e6]),
     r"evaluation\.attacks\.pgd_l2\.eps: 1e\+06 is more than any two \[0,1\] images of dataset 'generated' differ "
     r"by in L2 \(the square root of its 768 values, 27\.71\); allowed \(0, 27\.71\]"),
    (lambda c: c["evaluation"].update(n_test=100_000),
     r"evaluation\.n_test: 100000 is more than the test split of dataset 'generated' holds \(500 images\); "
     r"allowed 1\.\.500"),
    (lambda c: c["training"]["history"].update(n_test=501), r"training\.history\.n_test: 501 is more than"),
    (lambda c: c["training"]["schedule"].update(milestones=[50]),
     r"training\.schedule\.milestones: 50 is beyond training\.epochs \(7\); allowed 1\.\.7"),
    # a derived set's (or a regime's) training block may set its own epochs and schedule: bounded together
    (lambda c: c["datasets"]["d_rand"].update(training={"epochs": 3}),
     r"training\.schedule\.milestones: 5 is beyond datasets\.d_rand\.training\.epochs \(3\); allowed 1\.\.3"),
    (lambda c: c["datasets"]["d_rand"].update(training={"epochs": 20, "schedule": {"kind": "multistep",
                                                                                   "milestones": [25]}}),
     r"datasets\.d_rand\.training\.schedule\.milestones: 25 is beyond datasets\.d_rand\.training\.epochs \(20\)"),
    (lambda c: c["regimes"]["adam"].update(training={"optimizer": "adam", "lr": 0.002, "epochs": 0}),
     r"regimes\.adam\.training\.epochs: 0 is less than the minimum of 1"),
])
def test_bad_values_name_the_key_and_the_allowed_values(default, change, message):
    cfg = copy.deepcopy(default)
    change(cfg)
    with pytest.raises(config.ConfigError, match=message) as e:
        config.validate(cfg)
    assert "\n" not in str(e.value), "the error is one line"


def test_settings_no_job_reads_are_not_bounded(default):
    """transfer.n_test is read only by transfer jobs and milestones only by a multistep schedule: a config without
    transfer jobs, or with another schedule, may leave the inherited values as they are."""
    cfg = copy.deepcopy(default)
    cfg["run"] = ["e1_norms"]
    cfg["transfer"]["n_test"] = 100_000
    cfg["training"]["schedule"] = {"kind": "constant", "milestones": [50]}
    config.validate(cfg)
    cfg["run"] = ["e1_norms", "e9_transfer"]
    with pytest.raises(config.ConfigError, match=r"transfer\.n_test: 100000 is more than the test split"):
        config.validate(copy.deepcopy(cfg))


def test_a_derived_set_trains_with_its_own_epochs_and_schedule(default):
    """The evidence presets train on each derived set for as many steps as on the real set: a dataset's training
    block sets epochs and schedule for its models only."""
    cfg = copy.deepcopy(default)
    cfg["datasets"]["d_rand"]["training"] = {"lr": 0.01, "epochs": 20,
                                             "schedule": {"kind": "multistep", "milestones": [16], "gamma": 0.1}}
    plan = Plan(config.validate(cfg))
    seen = set()
    for m in plan.models:
        t = plan.train_settings(m).training
        if m.dataset == "d_rand":
            assert (t.epochs, t.lr, t.schedule["milestones"]) == (20, 0.01, [16])
        else:
            assert t.epochs == 7 and t.schedule["milestones"] == [5]
        seen.add(m.dataset)
    assert {"d_rand", "generated"} <= seen


def test_cell_path_layout():
    assert Cell("generated", "cnn", "bn", "standard", 1).path == "generated/cnn/bn/standard/s1"


@pytest.mark.parametrize("change, message", [
    (lambda c: (c["archs"].update(vgg={"kind": "vgg", "layers": 16}),
                c["studies"]["e1_norms"].update(archs=["vgg"], norms=["in"])),
     r"studies\.e1_norms: arch 'vgg' with norm 'in': norm 'in' would normalise a 1x1 map"),
    (lambda c: c["studies"]["e2_trajectories"].update(norms=["fixup"]),
     r"studies\.e2_trajectories: arch 'cnn' with norm 'fixup': norm 'fixup' is an init for residual nets"),
    (lambda c: (c["datasets"].update(mnist={"kind": "mnist"}), c["archs"].update(vgg={"kind": "vgg"}),
                c["studies"]["e1_norms"].update(dataset="mnist", archs=["vgg"], norms=["none"])),
     r"arch 'vgg' with norm 'none': input 28x28 shrinks below 1x1"),
    (lambda c: (c["archs"].update(soft={"kind": "linear"}), c["studies"]["e1_norms"].update(archs=["soft"])),
     r"arch 'soft' with norm 'bn': kind 'linear' has no layer to normalise"),
])
def test_impossible_cells_fail_at_config_time(default, change, message):
    cfg = copy.deepcopy(default)
    change(cfg)
    with pytest.raises(config.ConfigError, match=message):
        config.validate(cfg)


def test_a_preset_removes_an_inherited_attack_key_with_null(default):
    cfg = copy.deepcopy(default)
    cfg["training"]["history"]["attack"].update(norm="l2", eps=0.25, step=0.1)  # rel_step inherited
    with pytest.raises(config.ConfigError, match=r"training\.history\.attack: give one of 'step' or 'rel_step'"):
        config.validate(copy.deepcopy(cfg))
    cfg["training"]["history"]["attack"]["rel_step"] = None
    assert "rel_step" not in config.validate(cfg)["training"]["history"]["attack"]


def test_attack_specs_are_checked_by_the_attack_code(default):
    cfg = copy.deepcopy(default)
    cfg["evaluation"]["attacks"]["fgsm_linf"]["steps"] = 5
    with pytest.raises(config.ConfigError, match=r"evaluation\.attacks\.fgsm_linf: .*steps"):
        config.validate(cfg)


def test_schema_allowed_values_come_from_the_registries(default):
    """Norms, arch kinds, activations, attack types, objectives and dataset kinds are registered once, in the
    package: the schema marks where (x-registry) and does not type the values a second time."""
    from pathlib import Path

    from normrobust.models import NORMS

    text = (Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml").read_text()
    schema = config.load_schema()
    for name, values in config.REGISTRIES.items():
        assert f"x-registry: {name}" in text, name
        assert f"[{', '.join(map(str, values))}]" not in text, f"{name} typed in the schema too"
    assert schema["$defs"]["norm"]["enum"] == list(NORMS)
    bad = copy.deepcopy(default)
    bad["archs"]["cnn"]["activation"] = "swish"
    with pytest.raises(config.ConfigError, match="'swish' is not allowed.*relu, leaky_relu, selu"):
        config.validate(bad)


@pytest.mark.parametrize("where,set_bad", [
    ("training.lr: nan", lambda c: c["training"].update(lr=float("nan"))),
    ("evaluation.attacks.pgd_linf.eps[1]: inf", lambda c: c["evaluation"]["attacks"]["pgd_linf"].update(
        eps=[4, float("inf")])),
])
def test_nan_and_infinity_are_refused_at_config_time(default, where, set_bad):
    """The schema's ranges are false for NaN, so without this `lr: .nan` reached a job."""
    bad = copy.deepcopy(default)
    set_bad(bad)
    with pytest.raises(config.ConfigError, match=rf"^{re.escape(where)} is not a finite number$"):
        config.validate(bad)


@pytest.mark.parametrize("name,content,says", [
    ("syntax.yaml", "training: {epochs: [1\n", "config file syntax.yaml, line 2, column 1: not valid YAML"),
    ("empty.yaml", "", "config file empty.yaml holds nothing, not a mapping"),
    ("list.yaml", "- 1\n- 2\n", "config file list.yaml holds a list, not a mapping"),
    ("missing.yaml", None, "config file missing.yaml: does not exist"),
    ("zero.yaml", "training: {epochs: 0}\n", "training.epochs: 0 is less than the minimum of 1"),
])
def test_check_config_names_the_file_snakemake_does_not(tmp_path, name, content, says):
    """Snakemake reads --configfile files before the workflow, and for these says no file (or no line); the
    check-config command names it."""
    from conftest import normrobust_cli

    root = Path(__file__).resolve().parents[1]
    if content is not None:
        (tmp_path / name).write_text(content)
    r = normrobust_cli("check-config", "--base", str(root / "config.yaml"), name, cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stderr


def test_check_config_accepts_a_preset_and_says_what_it_plans(tmp_path):
    from conftest import normrobust_cli

    root = Path(__file__).resolve().parents[1]
    r = normrobust_cli("check-config", "--base", str(root / "config.yaml"),
                       str(root / "workflow" / "presets" / "mnist-quick.yaml"), cwd=tmp_path)
    assert r.returncode == 0 and re.match(r"ok: \d+ studies, \d+ trained models x \d+ seeds", r.stdout), r.stderr
