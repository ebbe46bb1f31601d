/* m2rnn info: what was built, the threads it will use, and the backends it can find. */
#include "config.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "m2rnn/m2rnn.h"
#include "commands.h"
#include "plugins.h"

int cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: m2rnn info\n\nPrints the version, the BLAS library, OpenMP threads and the backends found: the\n"
                   "reference, and every plug-in libm2rnn-<name>.so in $M2RNN_PLUGIN_PATH (colon-separated), then\n"
                   "%s, with its description or why it cannot be used here. These are the\n"
                   "backends `m2rnn check` runs by default.\n", M2RNN_PLUGIN_DIR);
            return 0;
        }
        fprintf(stderr, "m2rnn info: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    printf("m2rnn %s (backend ABI %d.%d)\n", m2rnn_version(), M2RNN_ABI_MAJOR, M2RNN_ABI_MINOR);
#ifdef HAVE_OPENBLAS_GET_CONFIG
    printf("BLAS:    %s\n", openblas_get_config());
#else
    printf("BLAS:    CBLAS (not OpenBLAS)\n");
#endif
#ifdef _OPENMP
    printf("OpenMP:  %d threads (OMP_NUM_THREADS sets it)\n", omp_get_max_threads());
#else
    printf("OpenMP:  off (built with --disable-openmp)\n");
#endif
    /* The plug-ins `m2rnn check` runs by default, each opened to say what it is or why it cannot run here. */
    static char found[PLUGINS_MAX][PLUGIN_NAME_MAX];
    int n = find_default_plugins(found, PLUGINS_MAX);
    int width = 6; /* the names' column: "ref" and "cuda" fit, a longer name widens it */
    for (int i = 0; i < n; i++) if ((int)strlen(found[i]) > width) width = (int)strlen(found[i]);
    printf("backends:\n");
    const m2rnn_backend *ref = m2rnn_backend_reference();
    printf("  %-*s %s\n", width, ref->name, ref->description);
    for (int i = 0; i < n; i++) {
        const m2rnn_backend *be;
        if (m2rnn_backend_open(found[i], &be) == M2RNN_OK)
            printf("  %-*s %s\n", width, found[i], be->description ? be->description : "");
        else
            printf("  %-*s unavailable: %s\n", width, found[i], m2rnn_last_error());
    }
    if (n == 0) printf("  (no plug-in: no libm2rnn-NAME.so in $M2RNN_PLUGIN_PATH or %s)\n", M2RNN_PLUGIN_DIR);
    return 0;
}
