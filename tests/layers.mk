# tests/layers.mk: the layers of issue 5 (their sources and Check suites).
