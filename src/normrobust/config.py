"""Config validation and the cells it asks for.

``validate(config)`` checks the config against ``workflow/schemas/config.schema.yaml`` (its study keys are
the studies of the registry, ``normrobust.studies``) and then the cross-references the schema cannot express;
any problem raises ``ConfigError`` with one line naming the key and what is allowed. What the config asks for
(cells, datasets, transfer jobs) is decided by ``normrobust.plan``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import jsonschema
import yaml

from . import attack_specs, resources
from .attack_specs import parse_spec
from .data import DATASET_KINDS, check_sizes, dataset_shape, dataset_test_size, dataset_train_size
from .data.derived_settings import resolve_settings
from .models import ACTIVATIONS, ARCH_KINDS, NORMS, check_arch
from .plan import Plan, derived_source, enabled_studies, study_datasets, study_models
from .regimes import ADVERSARIAL_OBJECTIVES, OBJECTIVES, OPTIMIZERS, SCHEDULES, uses_aux_norm
from .studies import STUDIES

SCHEMA = resources.SCHEMA  # workflow/schemas/config.schema.yaml, shipped as package data
LINF_EPS_MAX = 80  # in 1/255 steps (0.3 on MNIST is 76.5); beyond this an attack is no longer small


class ConfigError(ValueError):
    pass


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _format(err) -> str:
    where = _path(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        return f"{where}: unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(allowed)})"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not allowed (allowed: {', '.join(map(str, err.validator_value))})"
    if err.validator == "const":
        return f"{where}: {err.instance!r} is not allowed (allowed: {err.validator_value})"
    if err.validator == "oneOf":
        return f"{where}: {err.instance!r} must be null or an attack (type, norm, eps, ...)"
    return f"{where}: {err.message}"


def _deepest(errors):
    """The most specific error: the longest path, looking inside oneOf/anyOf alternatives."""
    flat = []
    for e in errors:
        flat += [e] + ([_deepest(e.context)] if e.context else [])
    return max(flat, key=lambda e: (len(e.absolute_path), e.validator not in ("oneOf", "anyOf", "type")))


def _mapping(value) -> dict:
    """``value`` if it is a mapping, else an empty one: the walks below run before the schema has checked types
    (``--config training=5`` must reach the schema's one-line error, not crash here)."""
    return value if isinstance(value, dict) else {}


def _attack_specs(config: dict):
    """(where, spec) for every attack spec of the config."""
    for name, r in _mapping(config.get("regimes")).items():
        if isinstance(r, dict) and isinstance(r.get("attack"), dict):
            yield f"regimes.{name}.attack", r["attack"]
    hist = _mapping(_mapping(config.get("training")).get("history"))
    if isinstance(hist.get("attack"), dict):
        yield "training.history.attack", hist["attack"]
    for name, spec in _mapping(hist.get("extra_attacks")).items():
        if isinstance(spec, dict):
            yield f"training.history.extra_attacks.{name}", spec
    if isinstance(_mapping(config.get("transfer")).get("attack"), dict):
        yield "transfer.attack", config["transfer"]["attack"]
    for name, spec in _mapping(_mapping(config.get("evaluation")).get("attacks")).items():
        if isinstance(spec, dict):
            yield f"evaluation.attacks.{name}", spec
    aa = _mapping(config.get("evaluation")).get("autoattack")
    if isinstance(aa, dict):
        yield "evaluation.autoattack", {k: v for k, v in aa.items() if k != "n_test"}
    for name, st in _mapping(config.get("studies")).items():
        t = st.get("transfer") if isinstance(st, dict) else None
        if isinstance(t, dict) and isinstance(t.get("attack"), dict):
            yield f"studies.{name}.transfer.attack", t["attack"]


def _drop_nulls_in_attacks(config: dict) -> None:
    """A preset is merged onto config.yaml key by key; setting an inherited attack key to null
    removes it (e.g. ``rel_step: null`` where the preset gives ``step``)."""
    for _, spec in list(_attack_specs(config)):
        for k in [k for k, v in spec.items() if v is None]:
            del spec[k]
    extra = _mapping(_mapping(config.get("training")).get("history")).get("extra_attacks")
    if isinstance(extra, dict):  # a preset drops an inherited per-epoch attack with `name: null`
        for k in [k for k, v in extra.items() if v is None]:
            del extra[k]


#: the package's registries: the schema names one with ``x-registry: <name>`` where its values are the allowed ones
REGISTRIES = {
    "norms": NORMS,
    "arch_kinds": ARCH_KINDS,
    "activations": ACTIVATIONS,
    "attack_types": attack_specs.GRADIENT_TYPES,
    "autoattack_types": attack_specs.AUTOATTACK_TYPES,
    "attack_norms": attack_specs.NORMS,
    "objectives": OBJECTIVES,
    "optimizers": OPTIMIZERS,
    "schedules": SCHEDULES,
    "dataset_kinds": DATASET_KINDS,
}


def _fill_registries(node) -> None:
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = list(REGISTRIES[node["x-registry"]])
        for v in node.values():
            _fill_registries(v)
    elif isinstance(node, list):
        for v in node:
            _fill_registries(v)


def load_schema(schema_path: Path | str = SCHEMA) -> dict:
    """The config schema with the package's registries filled in: every ``x-registry`` node gets the registry's
    values as its ``enum``, and the studies the package knows (normrobust.studies) are the keys allowed under
    ``studies``. A new norm, arch kind, attack or objective is registered once, in the package."""
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    _fill_registries(schema)
    schema["properties"]["studies"]["properties"] = {k: {"$ref": "#/$defs/study"} for k in STUDIES}
    schema["properties"]["run"]["items"]["enum"] = list(STUDIES)
    return schema


def _check_finite(node, where: tuple) -> None:
    """NaN and infinity are refused everywhere (the schema's ranges are false for NaN, so ``lr: .nan`` would pass
    them and fail inside a job)."""
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, (*where, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, (*where, i))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{_path(where)}: {node} is not a finite number")


def validate(config: dict, schema_path: Path | str = SCHEMA) -> dict:
    """Validate ``config`` in place (schema defaults filled in); raise ConfigError on the first problem."""
    _drop_nulls_in_attacks(config)
    _check_finite(config, ())
    for name, s in _mapping(config.get("studies")).items():
        if isinstance(s, dict) and "enabled" in s:
            raise ConfigError(f"studies.{name}.enabled: a study runs when the config lists it under run (run: "
                              f"[{name}, ...]); remove 'enabled' and name the studies to run there")
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        # the deepest, most specific error is the one that names the bad key
        raise ConfigError(_format(_deepest(errors)))
    config.setdefault("device", "auto")
    for r in config["regimes"].values():
        r.setdefault("attack_mode", "eval")
    _check_references(config)
    return config


def _check_attack(where: str, spec: dict) -> None:
    eps_list = spec["eps"] if isinstance(spec["eps"], list) else [spec["eps"]]
    if "step" in spec and "rel_step" in spec:
        raise ConfigError(f"{where}: give one of 'step' or 'rel_step', not both (a preset inherits keys from "
                          f"config.yaml: set the other to null)")
    for eps in eps_list:
        if spec["norm"] == "linf" and eps > LINF_EPS_MAX:
            raise ConfigError(f"{where}.eps: {eps} (= {eps}/255) is absurd; L∞ eps is in 1/255 steps, "
                              f"allowed (0, {LINF_EPS_MAX}]")
        if spec["norm"] == "linf" and eps < 0.5:
            raise ConfigError(f"{where}.eps: {eps} looks like [0,1] units; L∞ eps is in 1/255 steps "
                              f"(8 means 8/255), allowed [0.5, {LINF_EPS_MAX}]")
    try:  # the attack code's own check of the spec (steps, step or rel_step, ...)
        for eps in eps_list:
            parse_spec({**spec, "eps": eps})
    except ValueError as e:
        raise ConfigError(f"{where}: {e}".replace("attack spec: ", "")) from None


def _check_references(config: dict) -> None:
    for where, spec in _attack_specs(config):
        _check_attack(where, spec)
    for name, r in config["regimes"].items():
        obj = r.get("objective")
        if obj in ("clean", "ligs_reg") and r["attack"]:
            raise ConfigError(f"regimes.{name}: objective '{obj}' trains without an attack; set attack: null "
                              f"or an adversarial objective (adversarial, weighted, mixed, advprop)")
        if obj in ADVERSARIAL_OBJECTIVES and not r["attack"]:
            raise ConfigError(f"regimes.{name}: objective '{obj}' needs an attack (type, norm, eps, ...)")
    attacks = config["evaluation"]["attacks"]
    head = config["evaluation"]["headline"]
    if head["attack"] not in attacks:
        raise ConfigError(f"evaluation.headline.attack: '{head['attack']}' is not an evaluation attack "
                          f"(allowed: {', '.join(attacks)})")
    if head["eps"] not in attacks[head["attack"]]["eps"]:
        raise ConfigError(f"evaluation.headline.eps: {head['eps']} is not in evaluation.attacks."
                          f"{head['attack']}.eps (allowed: {attacks[head['attack']]['eps']})")
    for name in config["run"]:
        if name not in config["studies"]:
            raise ConfigError(f"run: '{name}' has no entry under studies (add studies.{name}: dataset, archs, norms, "
                              f"regimes; studies with an entry: {', '.join(config['studies'])})")
    for name, d in config["datasets"].items():  # a real dataset's sizes within its official splits
        try:
            check_sizes(name, d)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    _check_derived(config)
    tr = config["training"]
    for sname, s in enabled_studies(config).items():
        for d in study_datasets(s):
            if d not in config["datasets"]:
                raise ConfigError(f"studies.{sname}.dataset: '{d}' is not defined under datasets "
                                  f"(allowed: {', '.join(config['datasets'])})")
        for key, table in (("archs", "archs"), ("regimes", "regimes")):
            for v in s[key]:
                if v not in config[table]:
                    raise ConfigError(f"studies.{sname}.{key}: '{v}' is not defined under {table} "
                                      f"(allowed: {', '.join(config[table])})")
        t = s.get("transfer")
        if t:
            for r in t["targets"]:
                if r not in s["regimes"]:
                    raise ConfigError(f"studies.{sname}.transfer.targets: '{r}' is not a regime of the study "
                                      f"(allowed: {', '.join(s['regimes'])})")
            for e in t.get("source_epochs") or []:
                if e > tr["epochs"]:
                    raise ConfigError(f"studies.{sname}.transfer.source_epochs: epoch {e} is beyond "
                                      f"training.epochs ({tr['epochs']}); allowed 1..{tr['epochs']}")
    plan = Plan(config)
    _check_cells(config, plan)
    _check_batch_size(config, plan)
    _check_bounds(config, plan)
    if config["training"]["epochs"] < max(tr.get("save_epochs") or [0]):
        raise ConfigError(f"training.save_epochs: {tr['save_epochs']} asks for epochs beyond "
                          f"training.epochs ({tr['epochs']})")


def _check_derived(config: dict) -> None:
    """Derived datasets (E3/E4): their base and source cell exist, and no dataset derives from itself."""
    ds = config["datasets"]
    for name, d in ds.items():
        if d.get("kind") != "derived":
            continue
        where = f"datasets.{name}"
        seen = [name]
        base = d["base"]
        while True:
            if base not in ds:
                raise ConfigError(f"{where}.base: '{base}' is not defined under datasets (allowed: "
                                  f"{', '.join(n for n in ds if n != name)})")
            if base in seen:
                chain = " -> ".join(seen + [base])
                raise ConfigError(f"{where}.base: '{d['base']}' derives from '{name}' again ({chain})")
            if ds[base].get("kind") != "derived":
                break
            seen.append(base)
            base = ds[base]["base"]
        src = derived_source(config, name)
        for key, table in (("dataset", "datasets"), ("arch", "archs"), ("regime", "regimes")):
            if getattr(src, key) not in config[table]:
                raise ConfigError(f"{where}.source.{key}: '{getattr(src, key)}' is not defined under {table} "
                                  f"(allowed: {', '.join(config[table])})")
        if src.seed not in config["seeds"]:  # a training job trains every seed of the config's seeds
            raise ConfigError(f"{where}.source.seed: {src.seed} is not one of the config's seeds (allowed: "
                              f"{', '.join(map(str, config['seeds']))})")
        if ds[src.dataset].get("kind") == "derived":
            raise ConfigError(f"{where}.source.dataset: '{src.dataset}' is derived; the source model must be "
                              f"trained on a real or generated dataset")
        try:
            resolve_settings(name, d, n_base=dataset_train_size(ds[d["base"]], datasets=ds))
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _check_cells(config: dict, plan: Plan) -> None:
    """Every (dataset, arch, norm, regime) an enabled study asks for can be built: e.g. no instance
    norm over a 1x1 map, no VGG on 28x28 images, FixUp on residual nets only."""
    try:  # with torch: the feature-map shapes too (on the meta device)
        from .models.build import check_compatible as check
    except ImportError:  # planning without torch (snakemake -n in CI): the checks that need no model
        check = check_arch
    for n, s in plan.studies.items():  # an exclude entry that matches nothing is a typo, not a no-op
        design = study_models({k: v for k, v in s.items() if k != "exclude"})
        for i, e in enumerate(s.get("exclude") or ()):
            if not any(m.matches(e) for m in design):
                raise ConfigError(f"studies.{n}.exclude[{i}]: {e} matches none of the study's cells (its archs "
                                  f"{s.get('archs')}, norms {s.get('norms')}, regimes {s.get('regimes')})")
    seen = set()
    groups = [(f"studies.{n}", study_models(s)) for n, s in plan.studies.items()]
    groups += [("datasets (a derived dataset's source)", [c.model for c in plan.sources])]
    for sname, group in groups:
        for m in group:
            if m in seen:
                continue
            seen.add(m)
            try:
                shape = dataset_shape(config["datasets"][m.dataset], datasets=config["datasets"])
                check(config["archs"][m.arch], m.norm, shape, arch_name=m.arch,
                      aux_norm=uses_aux_norm(config["regimes"][m.regime], m.norm))
            except ValueError as e:
                raise ConfigError(f"{sname}: {e} (dataset '{m.dataset}', regime '{m.regime}')") from None


def _check_batch_size(config: dict, plan: Plan) -> None:
    bs = config["training"]["batch_size"]
    for name in plan.datasets:
        n = dataset_train_size(config["datasets"][name], datasets=config["datasets"])
        if bs > n:
            raise ConfigError(f"training.batch_size: {bs} is larger than the training set of dataset '{name}' "
                              f"({n} images); allowed 1..{n}")


def _check_bounds(config: dict, plan: Plan) -> None:
    """Values that cannot mean what they say, by the data the plan uses: an L2 ε beyond the largest distance two
    [0,1] images can have, more test images than a test split holds, a schedule milestone beyond the epochs."""
    ds = config["datasets"]
    pixels = {n: math.prod(dataset_shape(ds[n], datasets=ds)) for n in plan.datasets}
    smallest = min(pixels, key=pixels.get)
    l2_max = math.sqrt(pixels[smallest])
    for where, spec in _attack_specs(config):
        if spec.get("norm") != "l2":
            continue
        for eps in spec["eps"] if isinstance(spec["eps"], list) else [spec["eps"]]:
            if eps > l2_max:
                raise ConfigError(f"{where}.eps: {eps:g} is more than any two [0,1] images of dataset '{smallest}' "
                                  f"differ by in L2 (the square root of its {pixels[smallest]} values, "
                                  f"{l2_max:.4g}); allowed (0, {l2_max:.4g}]")
    tests = {n: dataset_test_size(ds[n], datasets=ds) for n in plan.datasets}
    fewest = min(tests, key=tests.get)
    ev = config["evaluation"]
    transfer_n = config["transfer"]["n_test"] if plan.transfer_jobs else None  # read only by transfer jobs
    for where, n in (("evaluation.n_test", ev["n_test"]), ("transfer.n_test", transfer_n),
                     ("training.history.n_test", (config["training"].get("history") or {}).get("n_test")),
                     ("evaluation.autoattack.n_test", (ev.get("autoattack") or {}).get("n_test"))):
        if n is not None and n > tests[fewest]:
            raise ConfigError(f"{where}: {n} is more than the test split of dataset '{fewest}' holds ({tests[fewest]} "
                              f"images); allowed 1..{tests[fewest]}")
    for pair in sorted({(m.dataset, m.regime) for m in plan.models}):  # the schedules the jobs train with
        _check_milestones(config, *pair)


def _check_milestones(config: dict, dataset: str, regime: str) -> None:
    """The schedule a model of ``dataset`` and ``regime`` trains with (a dataset's, then a regime's overrides of the
    training block) drops its learning rate within its epochs; the error names the blocks that set them."""
    blocks = [("training", config["training"]),
              (f"datasets.{dataset}.training", config["datasets"][dataset].get("training") or {}),
              (f"regimes.{regime}.training", config["regimes"][regime].get("training") or {})]
    (ep_where, epochs), = [(w, b["epochs"]) for w, b in blocks if "epochs" in b][-1:]
    (sc_where, schedule), = [(w, b["schedule"]) for w, b in blocks if "schedule" in b][-1:] or [("training", {})]
    for m in (schedule.get("milestones") or []) if schedule.get("kind") == "multistep" else []:
        if m > epochs:
            raise ConfigError(f"{sc_where}.schedule.milestones: {m} is beyond {ep_where}.epochs ({epochs}); allowed "
                              f"1..{epochs}")


def check_writable(path: str | Path = "results") -> None:
    """Fail early, naming the directory, when the results directory (or, before it exists, the
    working directory that will hold it) cannot be written."""
    p = Path(path)
    try:
        if p.exists() and not p.is_dir():
            raise NotADirectoryError(20, "it exists and is not a directory")
        fd, probe = tempfile.mkstemp(dir=p if p.exists() else p.parent, prefix=".normrobust-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"results directory '{p.resolve()}' is not writable ({e.strerror or e}); "
                          f"run from a writable working directory (snakemake -d DIR) or fix its permissions") from None


def load(path: str | Path) -> dict:
    with open(path) as f:
        return validate(yaml.safe_load(f))
