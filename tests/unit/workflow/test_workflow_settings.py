"""One declaration per option: the settings objects against the CLI flags and the pipelines'
parameters (names, defaults, help, environment variables, types). A field added in one place
only fails here."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from assay.bias.config import (
    BUDGET_FIELDS,
    INPUT_FIELDS,
    PIPELINE_PARAMETERS,
    RUN_PARAMETERS,
    BiasStudySettings,
)
from assay.classify.config import TrainConfig, TrainingOptions, TrainingSettings
from assay.classify.steps import TrainOptions
from assay.commands import bias_study, train
from assay.commands._common import setting, settings_from
from assay.errors import UsageError
from assay_components.train_models import train_models
from assay_pipelines import get_pipeline

KFP_TYPES = {str: "String", int: "Integer", float: "Float", bool: "Boolean"}


def cli_options(command: Callable[..., Any]) -> dict[str, Any]:
    """parameter name -> typer OptionInfo of a command."""
    return {p.name: p.default for p in inspect.signature(command).parameters.values()}


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def check_cli_against(
    settings: type[BaseSettings],
    command: Callable[..., Any],
    runner: tuple[str, ...],
    unset: set[str],
) -> None:
    options = cli_options(command)
    assert set(options) - set(runner) == set(settings.model_fields)
    for name, field in settings.model_fields.items():
        option = options[name]
        assert option.help == field.description, name
        assert option.envvar == "ASSAY_" + name.upper(), name
        expected = None if name in unset else field.default
        assert plain(option.default) == expected, name
        assert option.help, f"{name} has no help"


def test_train_flags_are_the_training_settings() -> None:
    check_cli_against(TrainingSettings, train.train, train.RUNNER_OPTIONS, unset={"registry"})
    impute = typing.get_args(TrainingSettings.model_fields["impute"].annotation)
    assert tuple(train.Impute) == impute


def test_training_pipeline_parameters_are_the_training_settings() -> None:
    inputs = get_pipeline("training").component_spec.inputs
    assert set(inputs) == set(TrainingSettings.model_fields)
    arguments = TrainingSettings().arguments()
    assert set(arguments) == set(inputs)
    for name, spec in inputs.items():
        assert spec.default == arguments[name], name
        assert spec.type == KFP_TYPES[type(arguments[name])], name


def test_train_config_shares_the_option_declarations() -> None:
    for name, field in TrainingOptions.model_fields.items():
        assert repr(TrainConfig.model_fields[name]) == repr(field), name
        assert repr(TrainingSettings.model_fields[name]) == repr(field), name
    options = set(TrainOptions.__required_keys__)
    assert options == set(TrainingOptions.model_fields) | {"models", "ray_cpus"}
    assert options <= set(TrainingSettings.model_fields)
    assert options == set(train_models.component_spec.inputs) - {"dataset"}
    settings = TrainingSettings(models="adaboost", ray_cpus=2, folds=3)
    config = settings.train_config()
    assert (config.models, config.workers, config.folds) == (["adaboost"], 2, 3)


def test_bias_study_flags_are_the_bias_settings() -> None:
    check_cli_against(
        BiasStudySettings, bias_study.bias_study, bias_study.RUNNER_OPTIONS, unset=set()
    )
    scale = typing.get_args(BiasStudySettings.model_fields["scale"].annotation)
    assert tuple(bias_study.ScaleChoice) == scale


def test_bias_pipeline_parameters_come_from_the_bias_settings() -> None:
    fields = set(BiasStudySettings.model_fields)
    assert fields == set(INPUT_FIELDS) | set(PIPELINE_PARAMETERS) | set(BUDGET_FIELDS)
    inputs = get_pipeline("bias-study").component_spec.inputs
    assert set(inputs) == set(PIPELINE_PARAMETERS.values()) | set(RUN_PARAMETERS)
    arguments = BiasStudySettings().pipeline_arguments()
    assert set(arguments) == set(PIPELINE_PARAMETERS.values())
    for name, value in arguments.items():
        assert inputs[name].default == value, name
        assert inputs[name].type == KFP_TYPES[type(value)], name
    with pytest.raises(ValueError, match="not bias-study run parameters"):
        BiasStudySettings().pipeline_arguments(draws=1)


def test_settings_read_the_environment_once_given_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSAY_FOLDS", "4")
    monkeypatch.setenv("ASSAY_DRAWS", "300")
    assert TrainingSettings().folds == 4
    assert settings_from(TrainingSettings, {"folds": 3, "out": "ignored"}).folds == 3
    assert BiasStudySettings().draws == 300


def test_bad_values_are_one_sentence() -> None:
    with pytest.raises(UsageError, match=r"^Invalid canary_percent: "):
        settings_from(TrainingSettings, {"canary_percent": 0})
    with pytest.raises(UsageError, match=r"^Invalid chains: "):
        settings_from(BiasStudySettings, {"chains": 0})
    with pytest.raises(UsageError, match="Use only one of --babe, --ratings"):
        BiasStudySettings(babe="a", ratings="b")


def test_setting_builds_the_option_from_the_field() -> None:
    option = setting(TrainingSettings, "tuning_iter")
    assert option.default == 3 and option.param_decls == ("--tuning-iter",)
    assert option.envvar == "ASSAY_TUNING_ITER"
    assert setting(TrainingSettings, "registry", unset=True).default is None
