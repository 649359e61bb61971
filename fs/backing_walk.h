/*
 * Walking a backing directory by descriptor. The daemon and its tools run as root over trees
 * whose names other users choose and can rename at any instant, so no walk ever resolves a path
 * string twice: every directory is opened relative to its parent's descriptor with O_NOFOLLOW,
 * every file is opened relative to its directory's descriptor with O_NOFOLLOW, O_NONBLOCK and
 * O_NOCTTY and used only after fstat() of that descriptor says it is a regular file on the
 * backing filesystem. A name swapped for a symlink, a device node or a FIFO between the listing
 * and the open is skipped; it can never redirect an open outside the tree (docs/SECURITY.md,
 * "Walking the backing tree").
 */
#ifndef TDEFS_FS_BACKING_WALK_H
#define TDEFS_FS_BACKING_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Deeper trees are reported (BACKING_WALK_ERROR, ELOOP), not walked: one descriptor per level. */
#define BACKING_WALK_MAX_DEPTH 256

enum backing_walk_kind {
	BACKING_WALK_FILE,  /* a regular file, open in fd */
	BACKING_WALK_ERROR, /* a directory or file that could not be opened or read: error */
};

struct backing_walk_entry {
	enum backing_walk_kind kind;
	/* Relative to the walk's root descriptor, without a leading slash ("" is the root). */
	const char *relative;
	/*
	 * BACKING_WALK_FILE: the file, opened with the walk's open_flags (O_PATH gives a
	 * descriptor that only names the inode). The visitor may keep it by setting *fd_taken;
	 * otherwise the walk closes it after the visit.
	 */
	int fd;
	/*
	 * BACKING_WALK_FILE: the directory that listed it, open for the visit only (-1 for a walk
	 * that starts at a file). A job that changes the file's name works in it, never through
	 * the relative path again: a directory renamed meanwhile changes nothing.
	 */
	int dir_fd;
	struct stat st;
	int error; /* BACKING_WALK_ERROR: a positive errno value */
};

/*
 * Return 0 to go on, a negative errno to end the walk with that error, 1 to end it without
 * one (a job asked to stop).
 */
typedef int (*backing_walk_visit)(const struct backing_walk_entry *entry, bool *fd_taken,
				  void *context);

/*
 * Visit every regular file under START (a path relative to root_fd, resolved one component at
 * a time, never through a symlink or ".."; "" or "/" for the root itself; a regular file is
 * visited alone). Nothing on another filesystem is visited (bind mounts inside the tree are not
 * the backing directory). open_flags: O_PATH, O_RDONLY or O_RDWR (an O_RDWR walk opens each
 * name with O_PATH and reopens it read-write only after fstat() says it is a regular file on
 * the backing filesystem, so nothing else is ever opened read-write). Returns 0, the visitor's
 * negative error or 1, or a negative errno when START cannot be resolved.
 */
int backing_walk(int root_fd, const char *start, int open_flags, backing_walk_visit visit,
		 void *context);

/*
 * Open START under root_fd as backing_walk() resolves it (O_PATH, O_NOFOLLOW at every step, on
 * root_fd's filesystem): the descriptor in *fd, and its stat in *st. -ELOOP for a symlink
 * anywhere on the way, -EXDEV for another filesystem, -EINVAL for "..".
 */
int backing_open_beneath(int root_fd, const char *start, int *fd, struct stat *st);

/*
 * Open the regular file behind path_fd (an O_PATH descriptor from a walk) with flags, and make
 * sure the result is that same regular file: a new descriptor, or a negative errno.
 */
int backing_reopen(int path_fd, int flags);

#endif
