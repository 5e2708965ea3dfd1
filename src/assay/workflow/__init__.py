"""Running pipelines, generic: it is handed @dsl.pipeline objects and knows no study.

* ``local``: the one local-run driver (a pipeline through kfp.local into a run folder);
* ``kfp_local``: kfp.local execution, task logs and task boundaries;
* ``run_folder``: run.json and task outputs copied into the run folder;
* ``progress``: one console line per task while a local run goes;
* ``remote``: compile pipelines and submit them to a Kubeflow Pipelines endpoint.

kfp is imported inside functions only.
"""
