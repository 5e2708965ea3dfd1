"""Attack: a training CSV whose path is HTML. The path given to ``assay train --data`` is the
only user text the classifier report prints (feature names are WDBC's 30, checked on load; the
target column is not shown), as "Data: <source>". A CSV at
``<img src=x onerror=alert(1)>/<script>alert(1)</script>/" onmouseover="x.csv`` goes through a
tiny real training run and the evaluation; the report must print the path as text and hold no
element or attribute of it. Nothing is mocked.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _html_markup import HOSTILE_NAMES, live_markup, visible_text

from assay.classify.report import FIGURE_ALTS
from assay.classify.stages import run_evaluation, run_training


def test_hostile_data_path_renders_as_text_not_markup(
    tmp_path: Path, wdbc_csv: Path, tiny_config: Callable[..., Any]
) -> None:
    hostile = tmp_path.joinpath(*HOSTILE_NAMES[:2]) / f"{HOSTILE_NAMES[2]}.csv"
    hostile.parent.mkdir(parents=True)
    shutil.copyfile(wdbc_csv, hostile)
    config = tiny_config(folds=2)
    run_training(hostile, config, tmp_path / "train", executor="inline", progress=False)
    run_evaluation(tmp_path / "train", tmp_path / "no-vif.csv", tmp_path / "eval")

    page = (tmp_path / "eval" / "report.html").read_text()

    assert live_markup(page, set(FIGURE_ALTS.values())) == []
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["data"]["source"] == str(hostile)
    assert f"Data: {hostile} - " in visible_text(page)  # the path reached the page, as text
