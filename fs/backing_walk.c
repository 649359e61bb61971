/*
 * The one walk over a backing directory (fs/backing_walk.h says why it goes by descriptor).
 * Used by the daemon's jobs (rewrap, data rekey, the resume pass at mount, encrypt), by the key
 * census (tderekey status, tdekey keys --usage, delete-key, move-keys, isolate, unlink and
 * export --used-by), by tdefs --check, --repair, --rebind, --info and --init --adopt, and by
 * tderekey files and data.
 *
 * Sections: resolving a start path one component at a time; reopening an O_PATH descriptor;
 * the recursive walk, one directory descriptor per level.
 *
 * Between readdir() naming an entry and openat() opening it, another user may rename anything
 * in a directory they can write. That is harmless here: the open is relative to the directory
 * descriptor (a renamed parent changes nothing), O_NOFOLLOW refuses a symlink put in its
 * place, O_NONBLOCK keeps a FIFO from blocking the walk, O_NOCTTY keeps a terminal from
 * becoming ours, and the descriptor is used only once fstat() says it is a regular file on the
 * walk's filesystem. A device node cannot be put there by a user without CAP_MKNOD; a read-only
 * walk that opens one anyway (with O_NONBLOCK) only closes it again, and a walk that writes
 * opens nothing read-write before fstat() of an O_PATH descriptor said "regular file".
 */
#include "fs/backing_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct walk_state {
	dev_t dev; /* the root's filesystem: nothing on another one is visited */
	int open_flags;
	backing_walk_visit visit;
	void *context;
	char relative[PATH_MAX]; /* the entry being visited, relative to the root */
};

/* --- resolving a start path ------------------------------------------------------------ */

/* Resolve START below root_fd; the normalised relative path goes to relative (may be NULL). */
static int resolve_beneath(int root_fd, const char *start, int *out, struct stat *st,
			   char *relative, size_t relative_size)
{
	char component[NAME_MAX + 1];
	struct stat root_st;
	size_t length = 0;
	int fd, next;

	if (relative)
		relative[0] = '\0';
	if (fstat(root_fd, &root_st) < 0)
		return -errno;
	fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	*st = root_st;
	for (const char *p = start; *p;) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(component, p, n);
		component[n] = '\0';
		p += n;
		if (strcmp(component, ".") == 0)
			continue;
		if (strcmp(component, "..") == 0 || !S_ISDIR(st->st_mode)) {
			close(fd);
			return strcmp(component, "..") == 0 ? -EINVAL : -ENOTDIR;
		}
		next = openat(fd, component, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -errno;
		fd = next;
		if (fstat(fd, st) < 0) {
			int ret = -errno;

			close(fd);
			return ret;
		}
		if (S_ISLNK(st->st_mode) || st->st_dev != root_st.st_dev) {
			close(fd);
			return S_ISLNK(st->st_mode) ? -ELOOP : -EXDEV;
		}
		if (relative) {
			if (length + n + 2 > relative_size) {
				close(fd);
				return -ENAMETOOLONG;
			}
			if (length)
				relative[length++] = '/';
			memcpy(relative + length, component, n + 1);
			length += n;
		}
	}
	*out = fd;
	return 0;
}

int backing_open_beneath(int root_fd, const char *start, int *fd, struct stat *st)
{
	return resolve_beneath(root_fd, start, fd, st, NULL, 0);
}

/* --- reopening ------------------------------------------------------------------------- */

int backing_reopen(int path_fd, int flags)
{
	struct stat named, opened;
	char proc_path[64];
	int fd;

	if (fstat(path_fd, &named) < 0)
		return -errno;
	if (!S_ISREG(named.st_mode))
		return -EINVAL;
	/* The magic link names the inode itself, not a path: nothing on the way can be swapped. */
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", path_fd);
	fd = open(proc_path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &opened) < 0 || !S_ISREG(opened.st_mode) || opened.st_ino != named.st_ino ||
	    opened.st_dev != named.st_dev) {
		close(fd);
		return -EINVAL;
	}
	/* O_NONBLOCK only guarded the open; keep regular-file semantics obvious for the I/O. */
	if (!(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* --- the walk ---------------------------------------------------------------------------- */

static int report_error(struct walk_state *walk, size_t length, int error)
{
	struct backing_walk_entry entry = {
		.kind = BACKING_WALK_ERROR, .relative = walk->relative, .fd = -1, .dir_fd = -1,
		.error = error,
	};
	bool taken = false;

	walk->relative[length] = '\0';
	return walk->visit(&entry, &taken, walk->context);
}

static int visit_open_file(struct walk_state *walk, int dir_fd, int fd, size_t length)
{
	struct backing_walk_entry entry = {
		.kind = BACKING_WALK_FILE, .relative = walk->relative, .fd = fd, .dir_fd = dir_fd,
	};
	bool taken = false;
	int ret;

	walk->relative[length] = '\0';
	if (fstat(fd, &entry.st) < 0) {
		ret = errno;
		close(fd);
		return report_error(walk, length, ret);
	}
	/* Swapped for something else since the listing, or on another filesystem: not ours. */
	if (!S_ISREG(entry.st.st_mode) || entry.st.st_dev != walk->dev) {
		close(fd);
		return 0;
	}
	ret = walk->visit(&entry, &taken, walk->context);
	if (!taken)
		close(fd);
	return ret;
}

/* Gone, or swapped for a symlink, a directory or a socket since the listing: skipped. */
static bool vanished(int error)
{
	return error == ENOENT || error == ELOOP || error == EISDIR || error == ENOTDIR ||
	       error == ENXIO;
}

/*
 * A walk that writes (O_RDWR: the rewrap, --check --repair) first opens the name with O_PATH,
 * which opens nothing for I/O, and reopens it read-write only once fstat() of that descriptor
 * says it is a regular file on the walk's filesystem: nothing else is ever opened read-write,
 * whatever was swapped in under the name.
 */
static int visit_file(struct walk_state *walk, int dir_fd, const char *name, size_t length)
{
	bool writes = !(walk->open_flags & O_PATH) && (walk->open_flags & O_ACCMODE) != O_RDONLY;
	int fd = openat(dir_fd, name,
			(writes ? O_PATH : walk->open_flags) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);
	struct stat st;
	int rw;

	if (fd < 0)
		return vanished(errno) ? 0 : report_error(walk, length, errno);
	if (writes) {
		if (fstat(fd, &st) < 0) {
			rw = errno;
			close(fd);
			return vanished(rw) ? 0 : report_error(walk, length, rw);
		}
		if (!S_ISREG(st.st_mode) || st.st_dev != walk->dev) {
			close(fd);
			return 0;
		}
		rw = backing_reopen(fd, walk->open_flags);
		close(fd);
		if (rw < 0)
			return rw == -EINVAL || vanished(-rw) ? 0 : report_error(walk, length, -rw);
		fd = rw;
	} else if (!(walk->open_flags & O_PATH)) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	}
	return visit_open_file(walk, dir_fd, fd, length);
}

static int append_name(struct walk_state *walk, size_t length, const char *name,
		       size_t *child_length)
{
	size_t n = strlen(name), at = length ? length + 1 : 0;

	if (at + n >= sizeof(walk->relative))
		return -ENAMETOOLONG;
	if (length)
		walk->relative[length] = '/';
	memcpy(walk->relative + at, name, n + 1);
	*child_length = at + n;
	return 0;
}

/* Walk the directory open in dir_fd (consumed), whose path is walk->relative[0..length). */
static int walk_directory(struct walk_state *walk, int dir_fd, size_t length, unsigned depth)
{
	struct dirent *dirent;
	DIR *dir;
	int ret = 0;

	walk->relative[length] = '\0';
	if (depth >= BACKING_WALK_MAX_DEPTH) {
		close(dir_fd);
		return report_error(walk, length, ELOOP);
	}
	dir = fdopendir(dir_fd);
	if (!dir) {
		ret = errno;
		close(dir_fd);
		return report_error(walk, length, ret);
	}
	while (ret == 0) {
		unsigned char type;
		size_t child_length;
		struct stat st;
		int fd;

		errno = 0;
		dirent = readdir(dir);
		if (!dirent) {
			if (errno)
				ret = report_error(walk, length, errno);
			break;
		}
		if (strcmp(dirent->d_name, ".") == 0 || strcmp(dirent->d_name, "..") == 0)
			continue;
		type = dirent->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(dir), dirent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (type != DT_DIR && type != DT_REG)
			continue; /* symlinks, devices, FIFOs, sockets: never opened */
		if (append_name(walk, length, dirent->d_name, &child_length) < 0) {
			ret = report_error(walk, length, ENAMETOOLONG);
			continue;
		}
		if (type == DT_REG) {
			ret = visit_file(walk, dirfd(dir), dirent->d_name, child_length);
		} else {
			fd = openat(dirfd(dir), dirent->d_name,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				ret = vanished(errno) ? 0 : report_error(walk, child_length, errno);
			else if (fstat(fd, &st) < 0 || st.st_dev != walk->dev)
				close(fd); /* a mount inside the tree is not the backing directory */
			else
				ret = walk_directory(walk, fd, child_length, depth + 1);
		}
		walk->relative[length] = '\0';
	}
	closedir(dir);
	return ret;
}

int backing_walk(int root_fd, const char *start, int open_flags, backing_walk_visit visit,
		 void *context)
{
	struct walk_state walk = { .open_flags = open_flags, .visit = visit, .context = context };
	struct stat root_st, st;
	size_t length;
	int fd, ret;

	if (fstat(root_fd, &root_st) < 0)
		return -errno;
	walk.dev = root_st.st_dev;
	ret = resolve_beneath(root_fd, start, &fd, &st, walk.relative, sizeof(walk.relative));
	if (ret < 0)
		return ret;
	length = strlen(walk.relative);
	if (S_ISDIR(st.st_mode)) {
		int dir_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		ret = dir_fd < 0 ? -errno : 0;
		close(fd);
		return ret < 0 ? ret : walk_directory(&walk, dir_fd, length, 0);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (open_flags & O_PATH)
		return visit_open_file(&walk, -1, fd, length);
	ret = backing_reopen(fd, open_flags);
	close(fd);
	return ret < 0 ? ret : visit_open_file(&walk, -1, ret, length);
}
