/* SPDX-License-Identifier: MIT */
#include <stdio.h>
int main(void) { puts("lambdapack"); return 0; }
