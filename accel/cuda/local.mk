# accel/cuda/: (rules added as the directory grows)
