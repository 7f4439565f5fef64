"""Work pools whose runs go through `sunbeam-run`: the stock workers' templates and `sunbeam pool`."""
