"""The `sunbeam` command: the whole Sunbeam stack as local processes (`up`, `demo`) and `deploy`."""
