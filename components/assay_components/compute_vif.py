"""Variance inflation factors of the features (analysis for the report, not a filter)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def compute_vif(dataset: Input[Dataset], vif_table: Output[Dataset]):
    """Write vif_table/vif.csv (statsmodels VIF per feature)."""
    from assay.classify.data_steps import vif_step

    vif_step(dataset, vif_table)
