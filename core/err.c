/* SPDX-License-Identifier: MIT */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

int lp_fail(int err, const char *path, const char *fmt, ...)
{
	char reason[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (path && *path)
		snprintf(errbuf, sizeof(errbuf), "%s: %s", path, reason);
	else
		snprintf(errbuf, sizeof(errbuf), "%s", reason);
	return err;
}

const char *lp_errmsg(void)
{
	return errbuf;
}

void lp_errmsg_set(const char *msg)
{
	snprintf(errbuf, sizeof(errbuf), "%s", msg ? msg : "");
}

void lp_errmsg_clear(void)
{
	errbuf[0] = '\0';
}

const char *lp_strerror(int err)
{
	static const char *const names[] = {
		[LP_E_NOTELF - LP_E_FIRST] = "not a usable ELF file",
		[LP_E_BADARCHIVE - LP_E_FIRST] = "corrupt or unreadable archive",
		[LP_E_UNSAFEPATH - LP_E_FIRST] = "unsafe path",
		[LP_E_DUPLICATE - LP_E_FIRST] = "duplicate path",
		[LP_E_TOOBIG - LP_E_FIRST] = "over a Lambda size limit",
		[LP_E_SYMLINK - LP_E_FIRST] = "bad symbolic link",
		[LP_E_BADTYPE - LP_E_FIRST] = "unsupported file type",
		[LP_E_USAGE - LP_E_FIRST] = "invalid argument",
		[LP_E_BADIMAGE - LP_E_FIRST] = "malformed image",
		[LP_E_CHECK - LP_E_FIRST] = "compatibility check failed",
		[LP_E_INPUT - LP_E_FIRST] = "problems in the input",
	};

	if (err < 0)
		err = -err;
	if (err > LP_E_FIRST && err < LP_E_LAST && names[err - LP_E_FIRST])
		return names[err - LP_E_FIRST];
	return strerror(err);
}
