"""Repeated stratified CV with nested tuning, the single 80/20 split and the final refit.

Work is split into coarse units so scheduling overhead stays small on two cores:
one preprocessing unit per outer split (shared by all models), then one unit per
(model x outer split) that runs that model's whole inner search (its trials) and its outer fit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from assay.classify.executor import Call, Executor
from assay.classify.folds import Fold, full_data, outer_folds, single_split
from assay.classify.models import MODELS, candidate_params
from assay.classify.seeds import derive_seed
from assay.classify.units import UnitResult, prepare_bundle, run_model_unit
from assay.obs.logging import get_logger

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from assay.classify.config import TrainConfig

log = get_logger("assay.classify.cv")
ResultCallback = Callable[[UnitResult], None]


def _progress(total: int, description: str, enabled: bool) -> Any:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


class NestedCV:
    """Holds one run's folds and prepared splits; runs CV units, then the final refit."""

    def __init__(
        self,
        X: NDArray[np.float64],
        y: NDArray[np.int64],
        config: TrainConfig,
        executor: Executor,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.executor = executor
        self.progress = progress
        self.folds: list[Fold] = outer_folds(y, config.folds, config.repeats, config.seed)
        self.single: Fold | None = single_split(y) if config.single_split else None
        self.full: Fold = full_data(y)
        self.keys = config.model_keys()
        self.candidates = {
            key: candidate_params(key, config.tuning_iter, derive_seed(config.seed, "cand", key))
            for key in self.keys
        }
        self._X = executor.put(X)
        self._y = executor.put(y)
        self._bundles: dict[str, Any] = {}

    def _all_splits(self) -> list[Fold]:
        return [*self.folds, *([self.single] if self.single else []), self.full]

    def prepare(self) -> None:
        """Fit the shared preprocessors of every split (each on its own training rows)."""
        c = self.config
        calls = [
            Call(
                f.fold_id,
                prepare_bundle,
                (self._X, self._y, f, c.inner_folds, c.k_features, c.seed),
            )
            for f in self._all_splits()
        ]
        with _progress(len(calls), "", self.progress) as bar:
            task = bar.add_task("preprocessing splits", total=len(calls))
            for key, handle in self.executor.run(calls):
                self._bundles[str(key)] = handle
                bar.advance(task)
        log.info("preprocessing fitted", splits=len(calls), k_features=c.k_features)

    def _unit(self, key: str, fold_id: str, keep_pipeline: bool = False) -> Call:
        c = self.config
        args = (
            key,
            self._bundles[fold_id],
            self._X,
            self.candidates[key],
            c.seed,
            c.selection_metric,
            keep_pipeline,
        )
        return Call((key, fold_id), run_model_unit, args)

    def run(self, on_result: ResultCallback | None = None) -> list[UnitResult]:
        """Every model on every outer split (and the single split); heavy models go first."""
        if not self._bundles:
            self.prepare()
        fold_ids = [f.fold_id for f in self.folds] + ([self.single.fold_id] if self.single else [])
        order = sorted(self.keys, key=lambda k: -MODELS[k].relative_cost)
        calls = [self._unit(key, fold_id) for fold_id in fold_ids for key in order]
        results: dict[Hashable, UnitResult] = {}
        with _progress(len(calls), "", self.progress) as bar:
            task = bar.add_task("cross-validation units", total=len(calls))
            for call_key, handle in self.executor.run(calls):
                result: UnitResult = self.executor.get(handle)
                results[call_key] = result
                if on_result is not None:
                    on_result(result)
                bar.advance(task)
        log.info("cross-validation finished", units=len(calls), workers=self.executor.workers)
        return [results[call.key] for call in calls]

    def refit_final(self, key: str) -> UnitResult:
        """The selected model tuned (same inner search) and refitted on all rows."""
        if not self._bundles:
            self.prepare()
        call = self._unit(key, self.full.fold_id, keep_pipeline=True)
        ((_, handle),) = list(self.executor.run([call]))
        result: UnitResult = self.executor.get(handle)
        log.info("final model refitted", model=key, params=result.best_params)
        return result
