"""Plain numba kernels over numpy arrays, each with a numpy reference its tests compare against."""
