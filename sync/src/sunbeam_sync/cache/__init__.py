"""The cache folder: where everything lives, its locks, atomic files, usage records, link mode."""
