# accel/cuda/: the CUDA backend plug-in, libm2rnn-cuda.so.
#
# libtool has no CUDA tag, and the plug-in is only ever dlopen()ed, so it is built with plain rules:
# nvcc compiles backend.cu (which includes the kernel headers) with -fPIC and links a shared object
# against libm2rnn (for m2rnn_set_error and the argument checks) and the static CUDA runtime, so the
# only CUDA library it needs at run time is the driver's libcuda. The tests find it through
# M2RNN_PLUGIN_PATH (set in Makefile.am); `make install` puts it in $(pkglibdir), where
# m2rnn_backend_open("cuda") looks after that path.
CUDA_PLUGIN_FILES = \
	accel/cuda/backend.cu \
	accel/cuda/common.cuh \
	accel/cuda/recurrence_general.cuh \
	accel/cuda/recurrence_v16.cuh \
	accel/cuda/recurrence_v16_t1.cuh
EXTRA_DIST += $(CUDA_PLUGIN_FILES) accel/cuda/NOTES.md accel/cuda/device_run.sh accel/cuda/device_variants.sh \
	accel/cuda/microbench/ubench.cu accel/cuda/microbench/profile.sh accel/cuda/microbench/durations.sh \
	accel/cuda/microbench/stalls.sh accel/cuda/microbench/ncu_kernel.sh accel/cuda/microbench/quick.sh \
	accel/cuda/microbench/ab.sh accel/cuda/microbench/source_counters.sh accel/cuda/microbench/source_summary.py \
	accel/cuda/microbench/ckpt_sweep.sh accel/cuda/microbench/sass_compare.py accel/cuda/microbench/pipes.sh \
	accel/cuda/microbench/tanh_fma_fit.py accel/cuda/microbench/tanh_fma_check.c accel/cuda/microbench/kv_exact.cu \
	accel/cuda/microbench/clockrate.cu \
	accel/cuda/device_env.sh

if HAVE_CUDA
CUDA_PLUGIN = accel/cuda/libm2rnn-cuda.so
CUDA_NVCCFLAGS = -O3 -std=c++17 $(NVCC_ARCH_FLAGS) -Xcompiler -fPIC -Xcompiler -fvisibility=hidden \
	-I$(top_srcdir)/ref -I$(top_builddir)

all-local: $(CUDA_PLUGIN)

accel/cuda/backend.o: $(CUDA_PLUGIN_FILES) $(top_srcdir)/ref/m2rnn/backend.h
	@$(MKDIR_P) accel/cuda
	$(AM_V_GEN)$(NVCC) $(CUDA_NVCCFLAGS) $(NVCCFLAGS) -c -o $@ $(srcdir)/accel/cuda/backend.cu

$(CUDA_PLUGIN): accel/cuda/backend.o libm2rnn.la
	$(AM_V_GEN)$(NVCC) -shared $(NVCC_ARCH_FLAGS) -o $@ accel/cuda/backend.o -L$(top_builddir)/.libs -lm2rnn

install-exec-local: $(CUDA_PLUGIN)
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_PROGRAM) $(CUDA_PLUGIN) '$(DESTDIR)$(pkglibdir)/libm2rnn-cuda.so'

uninstall-local:
	rm -f '$(DESTDIR)$(pkglibdir)/libm2rnn-cuda.so'

CLEANFILES += accel/cuda/backend.o $(CUDA_PLUGIN)

if HAVE_CHECK
# The CUDA backend against the reference (without a GPU it skips: a "1..0 # SKIP" plan, exit 77,
# or 0 under the TAP harness, which then reports the SKIP).
check_PROGRAMS += tests/check_cuda
TESTS += tests/check_cuda
tests_check_cuda_SOURCES = tests/check_cuda.c
tests_check_cuda_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_cuda_LDADD = libm2rnn.la $(CHECK_LIBS) -lm
endif
endif
