"""`sunbeam up` / `sunbeam demo`: the whole stack as local processes, no Docker."""
