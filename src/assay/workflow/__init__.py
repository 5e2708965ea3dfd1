"""Running pipelines, generic: it is handed @dsl.pipeline objects and knows no study.

* ``local``: the one local-run driver (a pipeline through kfp.local into a run folder);
* ``kfp_local``: kfp.local execution, task logs and task boundaries;
* ``containers``: the docker runner's engine, run network, Ray head and service containers,
  mounts and the container user;
* ``docker_steps``: kfp.local's DockerRunner with each step's real exit status;
* ``step_check``: a finished step's executor output and declared outputs, checked;
* ``run_folder``: run.json and task outputs copied into the run folder;
* ``progress``: one console line per task while a local run goes;
* ``remote``: compile pipelines and submit them to a Kubeflow Pipelines endpoint.

kfp and docker are imported inside functions only.
"""
