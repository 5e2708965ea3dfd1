"""KFP components, the only KFP-aware adapters: each a thin @dsl.component that imports the
study's steps module inside its body (``assay.classify.steps``, or for the light steps
``assay.classify.data_steps`` / ``assay.classify.registration``; ``assay.bias.steps``) and
calls one step."""
