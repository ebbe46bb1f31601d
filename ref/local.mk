# ref/: the public headers and the reference implementation (libm2rnn).
lib_LTLIBRARIES += libm2rnn.la
libm2rnn_la_SOURCES = \
	ref/status.c \
	ref/tensor.c \
	ref/scalar_math.h \
	ref/m2rnn_args.c \
	ref/recurrence_lanes.h \
	ref/recurrence_lanes.c \
	ref/m2rnn.c \
	ref/backend.c
# -fno-trapping-math: lets the compiler vectorise the selects in m2rnn_tanh (scalar_math.h); the
# library never inspects floating-point exception flags, so nothing observable changes.
libm2rnn_la_CFLAGS = $(AM_CFLAGS) -fno-trapping-math $(BLAS_CFLAGS) $(CJSON_CFLAGS)
libm2rnn_la_LIBADD = $(BLAS_LIBS) $(CJSON_LIBS)
libm2rnn_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined

# Installed as <m2rnn/...>.
m2rnnincludedir = $(includedir)/m2rnn
m2rnninclude_HEADERS = \
	ref/m2rnn/m2rnn.h \
	ref/m2rnn/status.h \
	ref/m2rnn/tensor.h \
	ref/m2rnn/recurrence.h \
	ref/m2rnn/backend.h

EXTRA_DIST += ref/SPEC.md
