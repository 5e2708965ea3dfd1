"""KFP components: each a thin @dsl.component that imports assay inside its body and calls one
function of ``assay.workflow.steps`` (training) or of the library."""
