"""One module per `assay` sub-command; each imports its heavy dependencies lazily."""
