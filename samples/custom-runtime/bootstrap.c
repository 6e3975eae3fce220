/* SPDX-License-Identifier: MIT */
/*
 * A custom-runtime bootstrap compiled at test time. A real one polls the
 * Runtime API; this one answers one event given on the command line (or
 * stdin), so tests can run it like the runtime would start it.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	char buf[4096] = "{}";

	if (argc > 1)
		snprintf(buf, sizeof(buf), "%s", argv[1]);
	else if (!fgets(buf, sizeof(buf), stdin))
		strcpy(buf, "{}");
	buf[strcspn(buf, "\n")] = '\0';
	printf("{\"statusCode\":200,\"body\":\"bootstrap got %zu bytes\"}\n", strlen(buf));
	return 0;
}
