#include <stdio.h>
#include "m2rnn/m2rnn.h"
int main(void) { printf("m2rnn %s\n", m2rnn_version()); return 0; }
