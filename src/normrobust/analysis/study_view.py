"""What a study module sees of a run: :class:`StudyView`, one enabled study of ``run_info.json``'s config.

Claims, figures and report sections all take a view: the study's config entry (``spec``), the run's whole
config, its cells (the study's design, seeds aside), the headline robust accuracy, and the standard regime.
``rows(df)`` keeps a table's rows of the study's cells, so every part of a study reads the same cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ..layout import Model
from ..plan import enabled_studies, study_datasets, study_models, transfer_attack
from ..regimes import objective, training_overrides
from .labels import dataset_label, join_words, norm_label, regime_label, sort_norms, sort_regimes, tex_escape
from .metric import Metric, headline
from .selection import select


@dataclass(frozen=True)
class StudyView:
    key: str
    spec: dict[str, Any]  # the study's config entry
    config: dict[str, Any]  # the run's resolved config
    head: Metric = field(default_factory=lambda: headline({}))  # headline robust accuracy

    @classmethod
    def of(cls, run_info: dict[str, Any], key: str, **overrides: Any) -> StudyView:
        """The view of study ``key`` of a run; ``overrides`` replace keys of its config entry (e.g. ``archs``).

        A study the config does not list gets an empty entry (no cells): its figures then say so."""
        config = run_info.get("config") or {}
        spec = dict((config.get("studies") or {}).get(key) or {})
        spec.update({k: v for k, v in overrides.items() if v is not None})
        return cls(key, spec, config, headline(run_info))

    @property
    def enabled(self) -> bool:
        return self.key in enabled_studies(self.config)

    @property
    def datasets(self) -> list[str]:
        return study_datasets(self.spec)

    @property
    def archs(self) -> list[str]:
        return [str(a) for a in self.spec.get("archs", [])]

    @property
    def norms(self) -> list[str]:
        return [str(n) for n in self.spec.get("norms", [])]

    @property
    def regimes(self) -> list[str]:
        return [str(r) for r in self.spec.get("regimes", [])]

    @property
    def models(self) -> list[Model]:
        """The study's models (dataset, arch, norm, regime; they unpack as tuples), its design applied (seeds aside)."""
        return study_models(self.spec)

    @property
    def transfer(self) -> dict[str, Any]:
        """The study's transfer block ({} without one)."""
        return dict(self.spec.get("transfer") or {})

    @property
    def transfer_attack(self) -> dict[str, Any]:
        """The attack the study's transfer jobs made (as the config writes it; normrobust.plan.transfer_attack)."""
        return transfer_attack(self.config, self.spec)

    def regime_config(self, regime: str) -> dict[str, Any]:
        return dict((self.config.get("regimes") or {}).get(regime) or {})

    def arch_config(self, arch: str) -> dict[str, Any]:
        return dict((self.config.get("archs") or {}).get(arch) or {})

    @property
    def std(self) -> str | None:
        """The standard regime: ``standard`` when listed, else the first clean regime without training overrides."""
        if "standard" in self.regimes:
            return "standard"
        for r in self.regimes:
            cfg = self.regime_config(r)
            if cfg and objective(cfg) == "clean" and not training_overrides(cfg):
                return r
        return None

    def rows(self, df: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
        """The rows of ``df`` that belong to the study's cells (``prefix="source_"`` on transfer.csv)."""
        return select(df, self.models, prefix=prefix)

    def narrowed(self, **overrides: Any) -> StudyView:
        """The same study with some config entries replaced (``dataset``, ``archs``, ...)."""
        return replace(self, spec={**self.spec, **{k: v for k, v in overrides.items() if v is not None}})

    def where(self, dataset: str | None, arch: str | None) -> tuple[str, str]:
        """(claim-id suffix, text suffix) naming the dataset and arch when the study has several."""
        parts = ([str(dataset)] if len(self.datasets) > 1 else []) + ([str(arch)] if len(self.archs) > 1 else [])
        if not parts:
            return "", ""
        return "@" + "/".join(parts), " (" + ", ".join(parts) + ")"

    def scope_tex(self) -> str:
        """The study's cells in words, for the report: datasets, architectures, norms, regimes."""
        ds = [tex_escape(dataset_label(self.config, d)) for d in self.datasets]
        archs = [tex_escape(a) for a in self.archs]
        return (f"dataset{'s' if len(ds) > 1 else ''} {join_words(ds)}; architecture{'s' if len(archs) > 1 else ''} "
                f"{join_words(archs)}; norms "
                f"{join_words([tex_escape(norm_label(n)) for n in sort_norms(self.norms)])}; regimes "
                f"{join_words([tex_escape(regime_label(r)) for r in sort_regimes(self.regimes)])}")
