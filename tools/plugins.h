/* The plug-ins the m2rnn program finds by itself, shared by `m2rnn check` (which runs them all by
 * default) and `m2rnn info` (which lists them), so that both name the same set. */
#ifndef M2RNN_TOOLS_PLUGINS_H
#define M2RNN_TOOLS_PLUGINS_H

#define PLUGIN_NAME_MAX 64
/* The most found by default: `m2rnn check` runs at most 32 backends, the reference and these. */
#define PLUGINS_MAX 31

/* The names NAME of every libm2rnn-NAME.so in $M2RNN_PLUGIN_PATH (colon-separated) and in
 * M2RNN_PLUGIN_DIR, where m2rnn_backend_open(NAME) looks: each name once, at most max of them,
 * sorted. Returns how many. */
int find_default_plugins(char names[][PLUGIN_NAME_MAX], int max);

#endif
