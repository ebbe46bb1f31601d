# tests/: (rules added as the directory grows)
