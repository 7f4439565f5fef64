"""The project at a commit: its uv.lock, the interpreter it runs on, and the env key they make."""
