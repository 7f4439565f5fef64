"""`sunbeam demo`: a branch that changes the pipeline, run beside main, and the baseline it is measured against."""
