"""Git: one bare mirror per repository, one read-only checkout per commit, refs checked first."""
