"""Results in MongoDB: the one data-access layer (store), series windows, downsampling, output, compare."""
