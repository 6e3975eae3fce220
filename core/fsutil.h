/* SPDX-License-Identifier: MIT */
/*
 * File system helpers. Outputs are written to a temporary name beside the
 * destination and renamed into place only when complete, so a failed or
 * interrupted run never leaves a half-written artifact at the output path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lp_outfile {
	char *path;		/* final destination */
	char *tmp;		/* temporary sibling being written */
	int fd;
};

/*
 * May a file output be written at path? Absent or a regular file (which the
 * rename replaces, as a build artifact should be) is fine; a directory, a
 * symlink or anything else is refused with -EEXIST and a message naming
 * the path. lp_outfile_open() checks this itself.
 */
int lp_output_check_file(const char *path);

/*
 * Create "<dir>/.<name>.XXXXXX" beside path, mode 0644. Refuses as
 * lp_output_check_file() does.
 */
int lp_outfile_open(struct lp_outfile *o, const char *path);
/* fsync, close and rename over path. On failure the temp file is removed. */
int lp_outfile_commit(struct lp_outfile *o);
/* Close and unlink the temp file (safe to call twice, or after commit). */
void lp_outfile_abort(struct lp_outfile *o);

/* Same idea for a directory output (an OCI layout). */
struct lp_outdir {
	char *path;
	char *tmp;
};
int lp_outdir_open(struct lp_outdir *o, const char *path);
/*
 * Move the finished directory to path, which must be absent or an empty
 * directory (rename(2) replaces an empty one atomically). Anything else at
 * path is never removed: the commit fails and the temporary goes.
 */
int lp_outdir_commit(struct lp_outdir *o);
void lp_outdir_abort(struct lp_outdir *o);

/* The name lp_outfile_open()/lp_outdir_open() give a temporary beside "<name>": ".<name>.XXXXXX". */
bool lp_output_is_temp_name(const char *tempname, const char *name);

/* A private temporary directory under $TMPDIR (or /tmp). */
int lp_tmpdir_create(const char *tag, char **ret);

/* Remove a tree (no symlink following). Missing is not an error. */
int lp_rm_rf(const char *path);

/* mkdir -p relative to nothing (absolute or cwd-relative). */
int lp_mkdir_p(const char *path, mode_t mode);

/* write(2) until done, retrying on EINTR / short writes. */
int lp_write_all(int fd, const void *buf, size_t n);
/* pread(2) exactly n bytes (short read at EOF is -EIO). */
int lp_pread_all(int fd, void *buf, size_t n, off_t off);

/* Copy a file's bytes to a new file (mode 0644). */
int lp_copy_file(const char *from, const char *to);

/* Read a whole (small) file into a malloc'd, NUL-terminated buffer. */
int lp_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/*
 * Paths to remove if the process is killed by SIGINT/SIGTERM/SIGHUP. The
 * front end waits for those signals on a thread of its own and calls
 * lp_cleanup_run(); library code registers what it creates, creating and
 * registering under lp_cleanup_lock() so an interrupt cannot fall between.
 * The lock is recursive: lp_cleanup_register() may be called while holding it.
 */
void lp_cleanup_lock(void);
void lp_cleanup_unlock(void);
void lp_cleanup_register(const char *path, bool is_dir);
void lp_cleanup_unregister(const char *path);
/* Remove everything registered; keeps the lock (the caller exits next). */
void lp_cleanup_run(void);

/*
 * Cancellation. The front end's signal thread calls lp_cancel() on SIGINT or
 * SIGTERM; every long loop (staging, classify, dedupe, strip, zip and layer
 * writing) checks lp_cancelled() and returns -EINTR, so the command unwinds
 * through its normal cleanup and exits 130 with no temporary left behind.
 */
void lp_cancel(int sig);
bool lp_cancelled(void);
/* The signal that cancelled the run (0 if none). */
int lp_cancel_signal(void);
/* lp_fail(-EINTR, path, "interrupted") if cancelled, else 0: one line per loop. */
int lp_check_cancel(const char *path);
