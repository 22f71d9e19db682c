"""Typed settings of the compute jobs, resolved once from the validated config and parsed once by the job.

The planner (:mod:`normrobust.plan`) builds these objects from the config; the workflow hands each job its settings
as JSON (a rule's ``--settings`` param, so a change reruns the job); the job parses that JSON once
(``TrainSettings.from_json``) and passes objects on, never dicts. Every default lives here:

* :data:`LIGS_SIGMA`: σ of LIGS's Gaussian noise, [B] (0.01 on [0,1] images);
* :class:`Execution`: how a job runs, not what it computes (batch sizes of evaluation and transfer, the fast
  path). Execution details never make finished work stale: they reach the jobs through the environment
  (:data:`EXECUTION_ENV`), not through a rule's params.

Torch-free (a leaf beside :mod:`normrobust.attack_specs` and :mod:`normrobust.regimes`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .attack_specs import parse_spec
from .layout import Model
from .regimes import clean_weight, ligs_weight, objective, uses_aux_norm

#: σ of LIGS's noise v ~ N(0, σ²I) on [0,1] images ([B]; docs/science.md, "LIGS")
LIGS_SIGMA = 0.01
#: extra evaluation measurements a study may declare (its ``MEASURES``) → the metrics.json rows they add; the
#: core rows (clean_acc, robust_acc per attack and ε, noise_acc, ligs) are measured for every cell
MEASUREMENTS = {
    "shifted_acc": ("shifted_acc",),  # accuracy against the labels (y + 1) mod K
    "train_acc": ("train_acc",),  # accuracy on the first n_test images of the cell's own training set
    "adv_confidence": ("adv_confidence", "adv_wrong_confidence"),  # mean max-softmax on the adversarial examples
    "nrf_reliance": ("rf_only_acc", "nrf_only_acc", "conflict_rf_rate", "conflict_nrf_rate", "nrf_reliance",
                     "nrf_only_acc_family", "conflict_rf_rate_family", "conflict_nrf_rate_family",
                     "nrf_reliance_family"),  # on the generated data's counterfactual test sets
}
#: transfer measurements a study may declare (its ``MEASURES``) → what the transfer job adds per target
TRANSFER_MEASUREMENTS = {
    # on data with known feature templates (the generated data): the examples' perturbation projected onto the span
    # of the robust features and onto that of the non-robust ones, each rescaled to the full perturbation's L2
    # norm, tried on every target: does the RF part or the NRF part transfer better?
    "rf_nrf": ("rf_success_rate", "nrf_success_rate"),
}
EXECUTION_ENV = "NORMROBUST_EXECUTION"


def _plain(obj: Any) -> Any:
    """JSON round trip: tuples to lists, keys sorted (the form a rule param and a saved file hold)."""
    return json.loads(json.dumps(obj, sort_keys=True))


@dataclass(frozen=True)
class Attack:
    """One attack: ``spec`` as the config writes it (ε in its unit) and its values in pixel units, parsed once."""

    spec: dict = field(compare=False, hash=False)
    type: str
    norm: str
    eps: float
    step: float | None
    steps: int
    targeted: bool
    random_start: bool
    restarts: int

    @classmethod
    def of(cls, spec: Attack | dict) -> Attack:
        """``spec`` parsed (normrobust.attack_specs.parse_spec: ValueError naming a bad key); an Attack as is."""
        if isinstance(spec, Attack):
            return spec
        return cls(spec=_plain(spec), **parse_spec(spec))

    @classmethod
    def optional(cls, spec: dict | None) -> Attack | None:
        return None if not spec else cls.of(spec)


@dataclass(frozen=True)
class AttackGrid:
    """An evaluation attack over a grid of ε (``spec["eps"]`` a list)."""

    name: str
    spec: dict

    def points(self) -> list[tuple[float, Attack]]:
        """(ε in the config's unit, the attack at that ε), in grid order."""
        return [(eps, Attack.of({**self.spec, "eps": eps})) for eps in self.spec["eps"]]


@dataclass(frozen=True)
class History:
    """What training measures after every epoch on the first ``n_test`` test images: clean accuracy always, robust
    accuracy under ``attack`` and each of ``extra`` (history column ``robust_acc_<name>``), LIGS if ``ligs``."""

    n_test: int
    attack: Attack | None = None
    extra: tuple[tuple[str, Attack], ...] = ()  # by name
    ligs: bool = False

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"n_test": self.n_test, "ligs": self.ligs}
        if self.attack is not None:
            out["attack"] = self.attack.spec
        if self.extra:
            out["extra_attacks"] = {n: a.spec for n, a in self.extra}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> History:
        extra = tuple((n, Attack.of(s)) for n, s in sorted((d.get("extra_attacks") or {}).items()))
        return cls(int(d["n_test"]), Attack.optional(d.get("attack")), extra, bool(d.get("ligs", False)))


@dataclass(frozen=True)
class Training:
    """The optimisation of one model: a dataset's, then a regime's overrides already applied."""

    epochs: int
    batch_size: int
    lr: float
    history: History
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: dict = field(default_factory=lambda: {"kind": "constant"})
    save_epochs: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer,
                "momentum": self.momentum, "weight_decay": self.weight_decay, "schedule": self.schedule,
                "save_epochs": list(self.save_epochs), "history": self.history.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Training:
        return cls(int(d["epochs"]), int(d["batch_size"]), float(d["lr"]), History.from_dict(d["history"]),
                   d.get("optimizer", "sgd"), float(d.get("momentum", 0.9)), float(d.get("weight_decay", 0.0)),
                   dict(d.get("schedule") or {"kind": "constant"}), tuple(int(e) for e in d.get("save_epochs") or ()))


@dataclass(frozen=True)
class Regime:
    """A training regime: its attack (None: clean), the model's mode while attacking, its objective and weights."""

    name: str
    attack: Attack | None
    objective: str
    attack_mode: str = "eval"
    clean_weight: float = 0.5
    ligs_weight: float = 1.0
    ligs_sigma: float = LIGS_SIGMA

    @classmethod
    def from_config(cls, name: str, cfg: dict) -> Regime:
        return cls(name, Attack.optional(cfg.get("attack")), objective(cfg), cfg.get("attack_mode", "eval"),
                   clean_weight(cfg), ligs_weight(cfg), float(cfg.get("ligs_sigma", LIGS_SIGMA)))

    def uses_aux_norm(self, norm: str) -> bool:
        return uses_aux_norm({"objective": self.objective}, norm)

    def to_dict(self) -> dict:
        return {"name": self.name, "attack": None if self.attack is None else self.attack.spec,
                "objective": self.objective, "attack_mode": self.attack_mode, "clean_weight": self.clean_weight,
                "ligs_weight": self.ligs_weight, "ligs_sigma": self.ligs_sigma}

    @classmethod
    def from_dict(cls, d: dict) -> Regime:
        return cls(d["name"], Attack.optional(d.get("attack")), d["objective"], d.get("attack_mode", "eval"),
                   float(d["clean_weight"]), float(d["ligs_weight"]), float(d["ligs_sigma"]))


@dataclass(frozen=True)
class TrainSettings:
    """Everything one training job needs, for every seed of one model (the seed is the job's argument)."""

    model: Model
    arch: dict
    regime: Regime
    training: Training
    ligs_sigma: float = LIGS_SIGMA  # LIGS in the per-epoch history

    def to_dict(self) -> dict:
        return {"model": self.model.as_dict(), "arch": self.arch, "regime": self.regime.to_dict(),
                "training": self.training.to_dict(), "ligs_sigma": self.ligs_sigma}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def digest(self) -> str:
        """A short hash of these settings: a job that reads a model.pt checks it was trained with them."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        return cls(Model.of(d["model"]), dict(d["arch"]), Regime.from_dict(d["regime"]),
                   Training.from_dict(d["training"]), float(d["ligs_sigma"]))

    @classmethod
    def from_json(cls, text: str) -> TrainSettings:
        return cls.from_dict(json.loads(text))

    @property
    def aux_norm(self) -> bool:
        """Training splits every norm layer into a main and an auxiliary copy (AdvProp with a norm)."""
        return self.regime.uses_aux_norm(self.model.norm)


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation job measures on every seed of a model: the core rows and the declared ``measures``."""

    n_test: int
    attacks: tuple[AttackGrid, ...]  # by name: an attack's index seeds its random stream
    noise_std: tuple[float, ...] = ()
    ligs_sigma: float = LIGS_SIGMA
    measures: tuple[str, ...] = ()  # keys of MEASUREMENTS, what the studies that read the model declare

    def to_dict(self) -> dict:
        return {"n_test": self.n_test, "attacks": {g.name: g.spec for g in self.attacks},
                "noise_std": list(self.noise_std), "ligs_sigma": self.ligs_sigma, "measures": list(self.measures)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> EvalSettings:
        unknown = sorted(set(d.get("measures") or ()) - set(MEASUREMENTS))
        if unknown:
            raise ValueError(f"evaluation measures: unknown {', '.join(unknown)} (allowed: {', '.join(MEASUREMENTS)})")
        return cls(int(d["n_test"]), tuple(AttackGrid(n, _plain(s)) for n, s in sorted(d["attacks"].items())),
                   tuple(float(s) for s in d.get("noise_std") or ()), float(d.get("ligs_sigma", LIGS_SIGMA)),
                   tuple(sorted(d.get("measures") or ())))

    @classmethod
    def from_json(cls, text: str) -> EvalSettings:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class TransferSettings:
    """One study's transfer attack, the test images it is made from, and what else the study declares measured of
    the transfer (``measures``: keys of :data:`TRANSFER_MEASUREMENTS`)."""

    study: str
    n_test: int
    attack: Attack
    measures: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"study": self.study, "n_test": self.n_test, "attack": self.attack.spec,
                           "measures": list(self.measures)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TransferSettings:
        d = json.loads(text)
        return cls(d["study"], int(d["n_test"]), Attack.of(d["attack"]), tuple(d.get("measures") or ()))


@dataclass(frozen=True)
class Execution:
    """How the jobs run (config: ``training.fast``, ``evaluation.batch_size`` / ``fast``, ``transfer.batch_size`` /
    ``fast``): never part of a rule's params, so changing it reruns nothing. Handed to the jobs in
    ``$NORMROBUST_EXECUTION`` (JSON); the defaults here when it is unset."""

    eval_batch_size: int = 512
    transfer_batch_size: int = 500
    train_fast: dict | None = None
    eval_fast: dict | None = None
    transfer_fast: dict | None = None

    #: (config block, key) → field
    CONFIG_KEYS = {("evaluation", "batch_size"): "eval_batch_size", ("transfer", "batch_size"): "transfer_batch_size",
                   ("training", "fast"): "train_fast", ("evaluation", "fast"): "eval_fast",
                   ("transfer", "fast"): "transfer_fast"}

    @classmethod
    def from_config(cls, config: dict) -> Execution:
        found = {f: (config.get(b) or {}).get(k) for (b, k), f in cls.CONFIG_KEYS.items()}
        return cls(**{k: v for k, v in found.items() if v is not None})

    def to_json(self) -> str:
        return json.dumps({f: getattr(self, f) for f in self.CONFIG_KEYS.values()}, sort_keys=True)

    @classmethod
    def from_env(cls) -> Execution:
        raw = os.environ.get(EXECUTION_ENV)
        if not raw:
            return cls()
        try:
            d = json.loads(raw)
            return cls(**{f: d[f] for f in cls.CONFIG_KEYS.values() if d.get(f) is not None})
        except (ValueError, TypeError) as e:
            raise ValueError(f"${EXECUTION_ENV}: not the execution settings the workflow writes ({e})") from None
