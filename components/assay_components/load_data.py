"""Load + validate the input data (bundled WDBC, a CSV path or s3://bucket/key.csv)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def load_data(data: str, target: str, impute: str, dataset: Output[Dataset]):
    """Validate the data and write it as the canonical 30 features + diagnosis 0/1 CSV.

    data: "" for the bundled WDBC, a CSV path, or s3://bucket/key.csv (MINIO_* env).
    target: name of the label column (M/B, malignant/benign or 1/0).
    impute: "none" (missing values are an error) or "median".
    """
    from assay.classify.data_steps import load_data_step

    load_data_step(data, target, impute, dataset)
