#!/bin/sh
# The Python loader's tests (TAP), with the python3 that configure found to have numpy.
if [ -z "$PYTHON_NUMPY" ]; then
    echo "1..0 # SKIP no python3 with numpy (Debian: apt-get install python3-numpy)"
    exit 0
fi
exec "$PYTHON_NUMPY" "${M2RNN_SRCDIR:-.}/tests/test_vectors.py"
