/* Plug-in discovery for `m2rnn check` and `m2rnn info` (plugins.h). */
#include "config.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins.h"

/* Every plug-in name (libm2rnn-NAME.so) in a colon-separated list of directories, appended to the
 * n names already there unless one of them has it. */
static int find_plugins(const char *dirs, char names[][PLUGIN_NAME_MAX], int n, int max)
{
    for (const char *p = dirs; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)len, p);
        DIR *d = len ? opendir(dir) : NULL;
        for (struct dirent *e; d && (e = readdir(d)) && n < max;) {
            size_t l = strlen(e->d_name);
            if (strncmp(e->d_name, "libm2rnn-", 9) != 0 || l < 13 || strcmp(e->d_name + l - 3, ".so") != 0 ||
                l - 12 >= PLUGIN_NAME_MAX)
                continue;
            char name[PLUGIN_NAME_MAX];
            snprintf(name, sizeof name, "%.*s", (int)(l - 12), e->d_name + 9);
            bool dup = false;
            for (int i = 0; i < n; i++) dup |= strcmp(names[i], name) == 0;
            if (!dup) snprintf(names[n++], PLUGIN_NAME_MAX, "%s", name);
        }
        if (d) closedir(d);
        p = colon ? colon + 1 : NULL;
    }
    return n;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

int find_default_plugins(char names[][PLUGIN_NAME_MAX], int max)
{
    /* The order m2rnn_backend_open searches; a name in both resolves to the first, so once is enough. */
    int n = find_plugins(getenv("M2RNN_PLUGIN_PATH"), names, 0, max);
    n = find_plugins(M2RNN_PLUGIN_DIR, names, n, max);
    /* readdir's order is the file system's: sorted, the lists are the same from run to run */
    qsort(names, (size_t)n, PLUGIN_NAME_MAX, compare_names);
    return n;
}
