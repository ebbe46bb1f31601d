# vectors/: (rules added as the directory grows)
