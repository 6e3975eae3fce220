/* SPDX-License-Identifier: MIT */
#include "elftest.h"
int main(void) { return 0; }
