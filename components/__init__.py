"""KFP components, the only KFP-aware adapters: each a thin @dsl.component that imports the
study's steps module inside its body (``assay.classify.steps``, ``assay.bias.steps``) and calls
one step."""
