/*
 * The FUSE low-level operations table. Each handler turns the request into calls on the inode
 * table (fs/inode_table.c) or the encrypted file layer (fs/file_keys.c, fs/file_io.c) and sends
 * exactly one reply; errors travel as negative errno values until the one place here that replies with them.
 *
 * The daemon runs as root and creates backing objects itself, then gives them the caller's uid
 * and gid, so files on the mount belong to whoever made them (PostgreSQL's initdb refuses to run
 * as root). Permission checks are the kernel's (default_permissions, and POSIX ACLs where the
 * kernel and the backing filesystem support them). Extended attribute names are checked here:
 * the daemon writes them as root, so a name the kernel lets any caller through with (security.*,
 * system.*) must not reach the backing file unless this mount serves it (docs/SECURITY.md).
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"
#include "fs/fuse_channel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/util.h"

#define XATTR_ACL_ACCESS "system.posix_acl_access"
#define XATTR_ACL_DEFAULT "system.posix_acl_default"

/*
 * The daemon's state comes with each request as the session's userdata (fuse_session_new in
 * fs/main.c), as in libfuse's examples: no handler here reaches for a global.
 */
static struct tdefs_daemon *state_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct tdefs_inode *get_inode(fuse_req_t req, fuse_ino_t ino)
{
	return inode_from_fuse(state_of(req), ino);
}

/*
 * The one place an error becomes a reply: every handler's error is a negative errno until here,
 * and a status-only reply (0) goes through here too, so no handler calls fuse_reply_err itself.
 */
static void reply_result(fuse_req_t req, int ret)
{
	/*
	 * A format or keystore meaning (fs/format.h, keystore/keystore.h: values past MAX_ERRNO)
	 * that reached a reply is an I/O error to the application; the file's log line says why.
	 */
	if (ret < -4095)
		ret = -EIO;
	fd_limit_note(ret);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static bool is_reserved_name(const struct tdefs_daemon *state, const struct tdefs_inode *parent,
			     const char *name)
{
	return parent == &state->root && config_reserved_name(name);
}

/* Give a new backing object the caller's ownership (the group of a setgid parent stays). */
static int apply_owner(fuse_req_t req, struct tdefs_inode *parent, int dir_fd, const char *name,
		       int fd)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat parent_st;
	gid_t gid = ctx->gid;
	int ret;

	if (geteuid() != 0)
		return 0;
	ret = inode_fd_get(parent);
	if (ret < 0)
		return ret;
	if (fstatat(ret, "", &parent_st, AT_EMPTY_PATH) == 0 && (parent_st.st_mode & S_ISGID))
		gid = (gid_t)-1;
	inode_fd_put(parent);
	if (fd >= 0)
		ret = fchown(fd, ctx->uid, gid);
	else
		ret = fchownat(dir_fd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
	return ret < 0 ? -errno : 0;
}

/*
 * POSIX ACLs need the backing filesystem to store and apply them (the daemon passes ACL xattrs
 * through, and the backing filesystem inherits default ACLs and keeps the mode in sync).
 */
static bool backing_supports_acls(const struct tdefs_daemon *state)
{
	char proc_path[64];

	fd_proc_path(state->root.path_fd, proc_path, sizeof(proc_path)); /* kept open */
	return getxattr(proc_path, XATTR_ACL_ACCESS, NULL, 0) >= 0 || errno != EOPNOTSUPP;
}

/*
 * The backing filesystem's largest file (its s_maxbytes: 16 TiB less 4 KiB on ext4 with 4 KiB
 * blocks, 8 EiB on XFS, btrfs and tmpfs), found by growing an unnamed file of the backing
 * directory (O_TMPFILE, sparse: no block is allocated) until ftruncate says EFBIG. No
 * statfs or pathconf field tells it (FILESIZEBITS is 64 for ext4). Kept below RLIMIT_FSIZE,
 * whose signal would end the daemon. 0 when it cannot be told (read-only backing, no
 * O_TMPFILE): the backing filesystem still refuses what it cannot hold, with EFBIG.
 */
static uint64_t backing_max_file_size(const struct tdefs_daemon *state)
{
	uint64_t low = 0, high = (uint64_t)INT64_MAX; /* ftruncate to low works, high fails */
	struct rlimit limit;
	int fd;

	if (getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
	    limit.rlim_cur < high)
		high = limit.rlim_cur;
	fd = openat(state->backing_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (ftruncate(fd, (off_t)high) == 0)
		low = high;
	while (high - low > 1) {
		uint64_t middle = low + (high - low) / 2;

		if (ftruncate(fd, (off_t)middle) == 0)
			low = middle;
		else
			high = middle;
	}
	close(fd);
	return low;
}

static void tdefs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct tdefs_daemon *state = userdata;

	/*
	 * ACLs are enforced by the kernel or not served at all: without FUSE_CAP_POSIX_ACL the
	 * kernel would store them and check only the mode bits (default_permissions).
	 */
	state->acl_enforced = false;
	if (!state->xattr_off) {
		if (!(conn->capable & FUSE_CAP_POSIX_ACL))
			log_warning("tdefs: the kernel cannot enforce POSIX ACLs on FUSE mounts; "
				    "ACLs are refused (EOPNOTSUPP)");
		else if (!backing_supports_acls(state))
			log_warning("tdefs: the backing filesystem of %s has no POSIX ACLs; ACLs "
				    "are refused (EOPNOTSUPP)",
				    state->backing_path);
		else
			state->acl_enforced = true;
	}
	if (state->acl_enforced)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* The caller's umask comes with each creation and is applied here (caller_umask_begin). */
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	if (state->cache == CACHE_AUTO && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/*
	 * Set-id bits are cleared here, by the kernel's second protocol for it
	 * (FUSE_HANDLE_KILLPRIV_V2, added to the reply by fs/fuse_channel.c); the first would
	 * have the daemon clear them on root's writes too.
	 */
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	/* Locks stay with the kernel's local lock manager: this mount is the only writer. */
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/*
	 * FUSE gives the filesystem no way to set the kernel's limit (the superblock's
	 * s_maxbytes stays MAX_LFS_FILESIZE): the daemon refuses what lies beyond it
	 * (tdefs_write), and the header takes its 4 KiB off the backing file's limit.
	 */
	uint64_t backing_max = backing_max_file_size(state);

	state->max_file_size = TDEFS_MAX_FILE_SIZE;
	if (backing_max > TDEFS_HEADER_SIZE && backing_max - TDEFS_HEADER_SIZE < TDEFS_MAX_FILE_SIZE)
		state->max_file_size = backing_max - TDEFS_HEADER_SIZE;
}

static void tdefs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tdefs_daemon *state = state_of(req);
	struct fuse_entry_param entry;
	int ret = inode_lookup(state_of(req), get_inode(req, parent), name, &entry);

	if (ret == -ENOENT && state->timeout > 0) {
		/* Negative entry: cache "does not exist" as long as positive entries. */
		memset(&entry, 0, sizeof(entry));
		entry.entry_timeout = state->timeout;
		fuse_reply_entry(req, &entry);
		return;
	}
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_entry(req, &entry);
}

static void tdefs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(state_of(req), get_inode(req, ino), nlookup);
	fuse_reply_none(req);
}

static void tdefs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(state_of(req), get_inode(req, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void tdefs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tdefs_daemon *state = state_of(req);
	struct stat st;
	int ret = inode_stat(state_of(req), get_inode(req, ino), &st);

	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_attr(req, &st, state->timeout);
}

static int set_times(struct tdefs_inode *inode, struct stat *attr, int to_set)
{
	struct timespec times[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	char proc_path[64];
	int fd, ret;

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		times[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		times[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		times[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		times[1] = attr->st_mtim;
	fd = inode_fd_get(inode);
	if (fd < 0)
		return fd;
	if (S_ISLNK(inode->file_type)) {
		ret = utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	} else {
		fd_proc_path(fd, proc_path, sizeof(proc_path));
		ret = utimensat(AT_FDCWD, proc_path, times, 0) < 0 ? -errno : 0;
	}
	inode_fd_put(inode);
	return ret;
}

/* Whether the caller of REQ is in group GID (its fsgid or a supplementary group). */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t few[64], *groups = few;
	bool found = false;
	int n, room = 64;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, few);
	if (n > 64) { /* more than the stack holds: ask again with room for all */
		room = n;
		groups = malloc((size_t)room * sizeof(*groups));
		if (!groups)
			return false; /* not known to be in the group: the bit is dropped */
		n = fuse_req_getgroups(req, room, groups);
	}
	for (int i = 0; i < n && i < room && !found; i++)
		found = groups[i] == gid;
	if (groups != few)
		free(groups);
	return found;
}

/*
 * A write, truncate or open(O_TRUNC) the kernel flagged "kill suid/sgid" (the caller has no
 * CAP_FSETID; fs/fuse_channel.c): the backing file loses its set-id bits by the rules ext4
 * applies to the same caller (setattr_should_drop_suidgid): suid always, sgid when the group
 * may execute or the caller is not in the file's group. Done before the data changes, so a
 * failure fails the request. The daemon writes as root, which the backing filesystem would
 * let keep them. Capabilities are the kernel's (it removes security.capability first).
 */
static int kill_suidgid(fuse_req_t req, fuse_ino_t ino, struct tdefs_inode *inode)
{
	char proc_path[64];
	mode_t kill = 0;
	struct stat st;
	int fd, ret = 0;

	if (!fuse_channel_request_kills_suidgid())
		return 0;
	fd = inode_fd_get(inode);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		ret = -errno;
	else if (S_ISREG(st.st_mode)) {
		if (st.st_mode & S_ISUID)
			kill |= S_ISUID;
		if ((st.st_mode & S_ISGID) &&
		    ((st.st_mode & S_IXGRP) || !caller_in_group(req, st.st_gid)))
			kill |= S_ISGID;
		fd_proc_path(fd, proc_path, sizeof(proc_path));
		if (kill && chmod(proc_path, st.st_mode & 07777 & ~kill) < 0)
			ret = -errno;
	}
	inode_fd_put(inode);
	if (ret < 0 || kill == 0)
		return ret;
	/*
	 * A WRITE or OPEN reply carries no attributes, and the kernel keeps the mode it cached
	 * (it invalidates only size and times after a write): tell it that the mode changed.
	 * Attributes only (negative offset), so the kernel takes no page or inode lock that the
	 * request being served could hold.
	 */
	fuse_lowlevel_notify_inval_inode(state_of(req)->session, ino, -1, 0);
	return 0;
}

static void setattr_locked(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			   struct fuse_file_info *fi)
{
	struct tdefs_daemon *state = state_of(req);
	struct tdefs_inode *inode = get_inode(req, ino);
	char proc_path[64];
	struct stat st;
	int ret = 0;

	/* The root's owner and mode are those of the mount point it covers (daemon.h). */
	bool covered = inode == &state->root && state->mount_point_fd >= 0;
	int owner_fd = covered ? state->mount_point_fd : inode_fd_get(inode);

	if (owner_fd < 0) {
		ret = owner_fd;
		goto out_reply;
	}
	fd_proc_path(owner_fd, proc_path, sizeof(proc_path));
	if ((to_set & FUSE_SET_ATTR_MODE) && !S_ISLNK(inode->file_type) &&
	    chmod(proc_path, attr->st_mode & 07777) < 0)
		ret = -errno;
	if (ret == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(owner_fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			ret = -errno;
	}
	if (!covered)
		inode_fd_put(inode);
	if (ret < 0)
		goto out_reply;
	/* A SETATTR with nothing to set is the kernel's request to drop the set-id bits. */
	if (to_set == 0 && S_ISREG(inode->file_type)) {
		ret = kill_suidgid(req, ino, inode);
		if (ret < 0)
			goto out_reply;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(inode->file_type)) {
			ret = S_ISDIR(inode->file_type) ? -EISDIR : -EINVAL;
			goto out_reply;
		}
		ret = kill_suidgid(req, ino, inode);
		if (ret < 0)
			goto out_reply;
		if ((uint64_t)attr->st_size > state->max_file_size) {
			ret = -EFBIG;
			goto out_reply;
		}
		/* truncate(2) on a path comes without an open file: load the key for it. */
		ret = file_crypt_acquire(state_of(req), inode);
		if (ret < 0)
			goto out_reply;
		ret = file_truncate(inode, (uint64_t)attr->st_size);
		file_crypt_release(inode);
		if (ret < 0)
			goto out_reply;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
		      FUSE_SET_ATTR_MTIME_NOW)) {
		ret = set_times(inode, attr, to_set);
		if (ret < 0)
			goto out_reply;
	}
	ret = inode_stat(state_of(req), inode, &st);
out_reply:
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_attr(req, &st, state->timeout);
}

/* Under the namespace lock: a conversion's swap copies owner, mode and times (daemon.h). */
static void tdefs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	namespace_lock_shared();
	setattr_locked(req, ino, attr, to_set, fi);
	namespace_unlock();
}

static void tdefs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct tdefs_inode *inode = get_inode(req, ino);
	char target[PATH_MAX + 1];
	int fd = inode_fd_get(inode), saved;
	ssize_t n;

	if (fd < 0) {
		reply_result(req, fd);
		return;
	}
	n = readlinkat(fd, "", target, sizeof(target) - 1);
	saved = errno;
	inode_fd_put(inode);
	if (n < 0) {
		reply_result(req, -saved);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

/*
 * The kernel sends the mode unmasked and the creating process's umask beside it
 * (FUSE_CAP_DONT_MASK), because POSIX applies the umask only where the parent directory has no
 * default ACL, and only the backing filesystem knows that at the instant it creates the object.
 * So the worker thread creates with the caller's umask as its own: each worker gets a umask of
 * its own (unshare(CLONE_FS), once per thread) and goes back to 0 afterwards. Where unshare is
 * refused the mode is masked here, which errs towards fewer permissions under a default ACL.
 */
static _Thread_local bool thread_has_own_umask;

static void caller_umask_begin(fuse_req_t req, mode_t *mode)
{
	mode_t mask = fuse_req_ctx(req)->umask & 0777;

	if (!thread_has_own_umask && unshare(CLONE_FS) == 0)
		thread_has_own_umask = true;
	if (thread_has_own_umask)
		umask(mask);
	else
		*mode &= ~mask;
}

static void caller_umask_end(void)
{
	if (thread_has_own_umask)
		umask(0);
}

/* Create an empty encrypted regular file: the header is in place before the name is used. */
static int create_regular(fuse_req_t req, struct tdefs_inode *parent, const char *name,
			  mode_t mode, bool exclusive)
{
	int fd, ret, dir_fd;

	/* With the keystore closed no header could be sealed: nothing is made on disk. */
	if (keystore_is_closed())
		return -ENOKEY;
	dir_fd = inode_fd_get(parent);
	if (dir_fd < 0)
		return dir_fd;
	caller_umask_begin(req, &mode);
	fd = openat(dir_fd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW,
		    mode & 07777);
	caller_umask_end();
	if (fd < 0) {
		ret = (errno == EEXIST && !exclusive) ? 1 : -errno;
		inode_fd_put(parent);
		return ret;
	}
	ret = apply_owner(req, parent, -1, NULL, fd);
	if (ret == 0)
		ret = file_write_new_header(state_of(req), fd);
	close(fd);
	if (ret < 0)
		unlinkat(dir_fd, name, 0);
	inode_fd_put(parent);
	return ret;
}

static int make_node(fuse_req_t req, struct tdefs_inode *parent, const char *name, mode_t mode,
		     dev_t rdev, const char *link_target, struct fuse_entry_param *entry)
{
	int ret, dir_fd;

	if (is_reserved_name(state_of(req), parent, name))
		return -EPERM;
	if (S_ISREG(mode) && !link_target) {
		ret = create_regular(req, parent, name, mode, true);
		if (ret == 0)
			goto out_lookup;
		return ret;
	}
	dir_fd = inode_fd_get(parent);
	if (dir_fd < 0)
		return dir_fd;
	if (link_target) {
		ret = symlinkat(link_target, dir_fd, name) < 0 ? -errno : 0;
	} else if (S_ISDIR(mode)) {
		caller_umask_begin(req, &mode);
		ret = mkdirat(dir_fd, name, mode & 07777) < 0 ? -errno : 0;
		caller_umask_end();
	} else {
		caller_umask_begin(req, &mode);
		ret = mknodat(dir_fd, name, mode, rdev) < 0 ? -errno : 0;
		caller_umask_end();
	}
	if (ret == 0) {
		ret = apply_owner(req, parent, dir_fd, name, -1);
		if (ret < 0)
			unlinkat(dir_fd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
	}
	inode_fd_put(parent);
	if (ret < 0)
		return ret;
out_lookup:
	return inode_lookup(state_of(req), parent, name, entry);
}

static void reply_entry_result(fuse_req_t req, int ret, struct fuse_entry_param *entry)
{
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_entry(req, entry);
}

static void tdefs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	struct fuse_entry_param entry;

	reply_entry_result(req,
			   make_node(req, get_inode(req, parent), name, mode, rdev, NULL, &entry),
			   &entry);
}

static void tdefs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param entry;

	reply_entry_result(req,
			   make_node(req, get_inode(req, parent), name, S_IFDIR | mode, 0, NULL,
				     &entry),
			   &entry);
}

static void tdefs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param entry;

	reply_entry_result(req,
			   make_node(req, get_inode(req, parent), name, S_IFLNK | 0777, 0, link,
				     &entry),
			   &entry);
}

static void tdefs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct tdefs_inode *inode = get_inode(req, ino), *parent = get_inode(req, newparent);
	struct fuse_entry_param entry;
	char proc_path[64];
	int ret, fd, dir_fd;

	if (is_reserved_name(state_of(req), parent, newname)) {
		reply_result(req, -EPERM);
		return;
	}
	namespace_lock_shared();
	fd = inode_fd_get(inode);
	dir_fd = fd < 0 ? fd : inode_fd_get(parent);
	if (fd < 0 || dir_fd < 0) {
		if (fd >= 0)
			inode_fd_put(inode);
		namespace_unlock();
		reply_result(req, fd < 0 ? fd : dir_fd);
		return;
	}
	fd_proc_path(fd, proc_path, sizeof(proc_path));
	ret = linkat(AT_FDCWD, proc_path, dir_fd, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	inode_fd_put(parent);
	inode_fd_put(inode);
	namespace_unlock();
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	ret = inode_lookup(state_of(req), parent, newname, &entry);
	reply_entry_result(req, ret, &entry);
}

static int dir_unlink(struct tdefs_inode *dir, const char *name, int flags)
{
	int fd = inode_fd_get(dir), ret;

	if (fd < 0)
		return fd;
	namespace_lock_shared();
	ret = unlinkat(fd, name, flags) < 0 ? -errno : 0;
	namespace_unlock();
	inode_fd_put(dir);
	return ret;
}

static void tdefs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tdefs_inode *dir = get_inode(req, parent);

	if (is_reserved_name(state_of(req), dir, name)) {
		reply_result(req, -ENOENT);
		return;
	}
	reply_result(req, dir_unlink(dir, name, 0));
}

static void tdefs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_result(req, dir_unlink(get_inode(req, parent), name, AT_REMOVEDIR));
}

static void tdefs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct tdefs_inode *from = get_inode(req, parent), *to = get_inode(req, newparent);
	int from_fd, to_fd, ret;

	if (is_reserved_name(state_of(req), from, name) ||
	    is_reserved_name(state_of(req), to, newname)) {
		reply_result(req, -EPERM);
		return;
	}
	/* RENAME_WHITEOUT belongs to overlay filesystems; tdefs has no use for it. */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		reply_result(req, -EINVAL);
		return;
	}
	from_fd = inode_fd_get(from);
	to_fd = from_fd < 0 ? from_fd : inode_fd_get(to);
	if (from_fd < 0 || to_fd < 0) {
		if (from_fd >= 0)
			inode_fd_put(from);
		reply_result(req, from_fd < 0 ? from_fd : to_fd);
		return;
	}
	namespace_lock_shared();
	if (state_of(req)->adopted) {
		encrypt_note_rename(from_fd, name);
		if (flags & RENAME_EXCHANGE)
			encrypt_note_rename(to_fd, newname);
	}
	ret = renameat2(from_fd, name, to_fd, newname, flags) < 0 ? -errno : 0;
	namespace_unlock();
	inode_fd_put(to);
	inode_fd_put(from);
	reply_result(req, ret);
}

/*
 * The application bypasses the page cache; so does the daemon, end to end, for the whole-block
 * I/O that makes up a database's O_DIRECT traffic: it gets a backing descriptor of its own
 * opened with O_DIRECT. Two threads may get here at once for one open: the first wins.
 */
static int open_direct(struct open_file *open_file)
{
	struct tdefs_inode *inode = open_file->inode;
	int expected = -1, fd;

	if (__atomic_load_n(&open_file->direct_fd, __ATOMIC_ACQUIRE) >= 0)
		return 0;
	/*
	 * A plaintext file has one O_DIRECT descriptor for all its opens, which the conversion
	 * closes when it swaps the backing object: one of this open's own would outlive that and
	 * name the old object.
	 */
	if (__atomic_load_n(&inode->crypt->plaintext, __ATOMIC_ACQUIRE)) {
		int ret = file_plaintext_direct_open(inode);

		if (ret != -EAGAIN)
			return ret;
	}
	fd = inode_fd_get(inode);
	if (fd < 0)
		return fd;
	fd = backing_reopen(fd, (inode->crypt->writable ? O_RDWR : O_RDONLY) | O_DIRECT);
	inode_fd_put(inode);
	if (fd < 0)
		return fd;
	if (!__atomic_compare_exchange_n(&open_file->direct_fd, &expected, fd, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		close(fd);
	return 0;
}

/*
 * O_DIRECT set later with fcntl(F_SETFL), as InnoDB does, reaches no open handler; but every
 * read and write request carries the file's current flags, so the switch happens here.
 */
static int direct_fd_for(struct open_file *open_file, const struct fuse_file_info *fi)
{
	int fd;

	if (!(fi->flags & O_DIRECT) || open_direct(open_file) < 0)
		return -1; /* fall back to the buffered descriptor; the data path stays correct */
	fd = __atomic_load_n(&open_file->direct_fd, __ATOMIC_ACQUIRE);
	/* Still plaintext (or converted since: the encrypted path then goes buffered once). */
	return fd < 0 ? FILE_IO_DIRECT_PLAINTEXT : fd;
}

static int open_common(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct tdefs_daemon *state = state_of(req);
	struct tdefs_inode *inode = get_inode(req, ino);
	struct open_file *open_file;
	int ret;

	if (!S_ISREG(inode->file_type))
		return S_ISDIR(inode->file_type) ? -EISDIR : -EINVAL;
	ret = file_crypt_acquire(state_of(req), inode);
	if (ret < 0)
		return ret;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !inode->crypt->writable) {
		ret = state->read_only ? -EROFS : -EACCES;
		goto out_release;
	}
	/* libfuse enables atomic O_TRUNC: the truncate arrives with the open, not before it. */
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
		ret = kill_suidgid(req, ino, inode);
		if (ret == 0)
			ret = file_truncate(inode, 0);
		if (ret < 0)
			goto out_release;
	}
	open_file = calloc(1, sizeof(*open_file));
	if (!open_file) {
		ret = -ENOMEM;
		goto out_release;
	}
	open_file->inode = inode;
	open_file->direct_fd = -1;
	if (fi->flags & O_DIRECT) {
		ret = open_direct(open_file);
		if (ret < 0) {
			free(open_file);
			goto out_release;
		}
	}
	fi->fh = (uint64_t)(uintptr_t)open_file;
	fi->keep_cache = state->cache != CACHE_NONE;
	return 0;

out_release:
	file_crypt_release(inode);
	return ret;
}

static void tdefs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int ret = open_common(req, ino, fi);

	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_open(req, fi);
}

static void tdefs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct tdefs_inode *dir = get_inode(req, parent);
	struct fuse_entry_param entry;
	int ret;

	if (is_reserved_name(state_of(req), dir, name)) {
		reply_result(req, -EPERM);
		return;
	}
	ret = create_regular(req, dir, name, mode, (fi->flags & O_EXCL) != 0);
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	ret = inode_lookup(state_of(req), dir, name, &entry);
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	ret = open_common(req, entry.ino, fi);
	if (ret < 0) {
		inode_forget(state_of(req), inode_from_fuse(state_of(req), entry.ino), 1);
		reply_result(req, ret);
		return;
	}
	fuse_reply_create(req, &entry, fi);
}

static struct open_file *open_file_of(struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static void tdefs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	struct open_file *open_file = open_file_of(fi);
	uint8_t *data = NULL;
	size_t length = 0;
	int ret;

	ret = file_read(open_file->inode, direct_fd_for(open_file, fi), (uint64_t)offset, size,
			&data, &length);
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_buf(req, (const char *)data, length);
}

/*
 * A write-back WRITE failed: the kernel has recorded the error for the next
 * fsync or close, and keeps the pages, clean and up to date, with bytes the backing file does
 * not have. They are dropped (fs/fuse_channel.c), so reads come from the backing file again.
 * The kernel keeps its own size with the writeback cache and takes none from the daemon; after
 * a shortage of space (ENOSPC, EDQUOT: a hole needs none) the stored file grows to the end of
 * the failed range as a hole, so that stat and reads show what is stored, zeros where the
 * write was lost, before and after a remount alike. After EFBIG the kernel's size stays until
 * the inode leaves its cache; the range past the stored end reads as zeros.
 */
static void write_back_failed(fuse_ino_t ino, struct tdefs_inode *inode, uint64_t end, int error)
{
	if (error == -ENOSPC || error == -EDQUOT)
		file_extend(inode, end);
	fuse_channel_invalidate_later(ino);
}

static void tdefs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
			off_t offset, struct fuse_file_info *fi)
{
	struct open_file *open_file = open_file_of(fi);
	uint64_t max = state_of(req)->max_file_size;
	int ret;

	if (offset < 0) {
		reply_result(req, -EINVAL);
		return;
	}
	/*
	 * Past the largest file, as a local filesystem answers write(2): EFBIG at or beyond it, a
	 * short write up to it. Write-back has no short write: its range fails whole.
	 */
	if ((uint64_t)offset >= max || (fi->writepage && size > max - (uint64_t)offset)) {
		ret = -EFBIG;
		goto out_reply;
	}
	if (size > max - (uint64_t)offset)
		size = (size_t)(max - (uint64_t)offset);
	ret = kill_suidgid(req, ino, open_file->inode);
	if (ret == 0)
		ret = file_write(open_file->inode, direct_fd_for(open_file, fi),
				 (const uint8_t *)buf, size, (uint64_t)offset);
out_reply:
	/*
	 * Queued before the reply: the invalidating thread then waits in the kernel for this
	 * request's pages to leave write-back, and drops them as soon as the reply lets them go.
	 */
	if (ret < 0 && fi->writepage)
		write_back_failed(ino, open_file->inode, (uint64_t)offset + size, ret);
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_write(req, size);
}

static void tdefs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Writes reach the backing file when they are made; close() has nothing to push. */
	reply_result(req, 0);
}

static void tdefs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *open_file = open_file_of(fi);

	if (open_file->direct_fd >= 0)
		close(open_file->direct_fd);
	file_crypt_release(open_file->inode);
	free(open_file);
	reply_result(req, 0);
}

static void tdefs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_result(req, file_fsync(open_file_of(fi)->inode, datasync != 0));
}

static void tdefs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			    off_t length, struct fuse_file_info *fi)
{
	if (offset < 0 || length <= 0) {
		reply_result(req, -EINVAL);
		return;
	}
	if ((uint64_t)offset + (uint64_t)length > state_of(req)->max_file_size) {
		reply_result(req, -EFBIG);
		return;
	}
	reply_result(req, file_fallocate(open_file_of(fi)->inode, mode, (uint64_t)offset,
					 (uint64_t)length));
}

static void tdefs_lseek(fuse_req_t req, fuse_ino_t ino, off_t offset, int whence,
			struct fuse_file_info *fi)
{
	struct tdefs_daemon *state = state_of(req);
	uint64_t result;
	int ret;

	if (offset < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		reply_result(req, -EINVAL);
		return;
	}
	/*
	 * With the writeback cache the kernel may hold dirty pages we have not seen, and it does
	 * not flush them before asking. Invalidating the inode's cache makes it write them back
	 * (through other worker threads) first, so holes are answered on current data.
	 */
	if (state->cache == CACHE_AUTO) {
		ret = fuse_lowlevel_notify_inval_inode(state->session, ino, 0, 0);
		if (ret < 0 && ret != -ENOENT) {
			reply_result(req, ret);
			return;
		}
	}
	ret = file_lseek(open_file_of(fi)->inode, (uint64_t)offset, whence, &result);
	if (ret < 0)
		reply_result(req, ret);
	else
		fuse_reply_lseek(req, (off_t)result);
}

/* --- directories ------------------------------------------------------------------------ */

struct directory_handle {
	DIR *stream;
	off_t offset;
	struct dirent *entry; /* read but not yet sent (the reply buffer was full) */
};

static void tdefs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct directory_handle *handle = calloc(1, sizeof(*handle));
	int fd;

	if (!handle) {
		reply_result(req, -ENOMEM);
		return;
	}
	fd = inode_fd_get(get_inode(req, ino));
	if (fd >= 0) {
		int dir_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), saved = errno;

		inode_fd_put(get_inode(req, ino));
		fd = dir_fd;
		errno = saved;
	} else {
		errno = -fd;
	}
	if (fd < 0 || !(handle->stream = fdopendir(fd))) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		free(handle);
		reply_result(req, -saved);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)handle;
	fi->cache_readdir = state_of(req)->cache != CACHE_NONE;
	fuse_reply_open(req, fi);
}

static void tdefs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
			  struct fuse_file_info *fi)
{
	struct directory_handle *handle = (struct directory_handle *)(uintptr_t)fi->fh;
	bool is_root = get_inode(req, ino) == &state_of(req)->root;
	char *buffer = calloc(1, size);
	size_t used = 0;

	if (!buffer) {
		reply_result(req, -ENOMEM);
		return;
	}
	if (offset != handle->offset) {
		seekdir(handle->stream, offset);
		handle->entry = NULL;
		handle->offset = offset;
	}
	for (;;) {
		struct stat st = { 0 };
		size_t entry_size;

		if (!handle->entry) {
			errno = 0;
			handle->entry = readdir(handle->stream);
			if (!handle->entry) {
				if (errno && used == 0) {
					int saved = errno;
					free(buffer);
					reply_result(req, -saved);
					return;
				}
				break;
			}
		}
		if (is_root && config_reserved_name(handle->entry->d_name)) {
			handle->offset = handle->entry->d_off;
			handle->entry = NULL;
			continue;
		}
		st.st_ino = handle->entry->d_ino;
		st.st_mode = (mode_t)handle->entry->d_type << 12;
		entry_size = fuse_add_direntry(req, buffer + used, size - used,
					       handle->entry->d_name, &st, handle->entry->d_off);
		if (entry_size > size - used)
			break;
		used += entry_size;
		handle->offset = handle->entry->d_off;
		handle->entry = NULL;
	}
	fuse_reply_buf(req, buffer, used);
	free(buffer);
}

static void tdefs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct directory_handle *handle = (struct directory_handle *)(uintptr_t)fi->fh;

	closedir(handle->stream);
	free(handle);
	reply_result(req, 0);
}

static void tdefs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	struct directory_handle *handle = (struct directory_handle *)(uintptr_t)fi->fh;
	int fd = dirfd(handle->stream);

	reply_result(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0);
}

static void tdefs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	if (fstatvfs(state_of(req)->backing_fd, &st) < 0)
		reply_result(req, -errno);
	else
		fuse_reply_statfs(req, &st);
}

/* --- extended attributes: stored on the backing object as they are (docs/SECURITY.md) ---- */

/*
 * With -o xattr=off every xattr request gets ENOSYS rather than EOPNOTSUPP: the kernel then
 * stops sending that request type for the mount's lifetime and answers EOPNOTSUPP itself,
 * which is what removes the GETXATTR(security.capability) round trip before each write.
 */
static bool xattr_disabled(fuse_req_t req)
{
	if (!state_of(req)->xattr_off)
		return false;
	reply_result(req, -ENOSYS);
	return true;
}

#define SECURITY_PREFIX "security."
#define SECURITY_PREFIX_LENGTH (sizeof(SECURITY_PREFIX) - 1)
#define DEFAULT_SECURITY_NAMES "capability"

/*
 * -o xattr_security=all | none | NAME[:NAME...]: the security.* names the mount serves, named
 * without the prefix ("capability:ima"). The default is security.capability alone: the kernel
 * checks CAP_SETFCAP before it sets that one, while other security.* names (an LSM's label)
 * pass the kernel unchecked when no LSM claims them, and the daemon would set them as root.
 */
int xattr_security_option(struct tdefs_daemon *state, const char *value)
{
	char *copy;

	if (strcmp(value, "none") == 0)
		value = "";
	else if (strcmp(value, "all") != 0)
		for (const char *p = value;; p++) {
			bool item_end = *p == ':' || *p == '\0';

			if (item_end && (p == value || p[-1] == ':'))
				return -EINVAL; /* an empty name */
			if (*p == '\0')
				break;
			if (!item_end && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
			    !(*p >= '0' && *p <= '9') && *p != '.' && *p != '_' && *p != '-')
				return -EINVAL;
		}
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(state->xattr_security);
	state->xattr_security = copy;
	return 0;
}

static bool security_name_served(const struct tdefs_daemon *state, const char *suffix)
{
	const char *list =
		state->xattr_security ? state->xattr_security : DEFAULT_SECURITY_NAMES;
	size_t length = strlen(suffix);

	if (strcmp(list, "all") == 0)
		return true;
	for (const char *item = list; *item;) {
		const char *end = strchrnul(item, ':');

		if ((size_t)(end - item) == length && memcmp(item, suffix, length) == 0)
			return true;
		item = *end ? end + 1 : end;
	}
	return false;
}

enum xattr_use { XATTR_READ, XATTR_CHANGE };

static bool is_acl_name(const char *name)
{
	return strcmp(name, XATTR_ACL_ACCESS) == 0 || strcmp(name, XATTR_ACL_DEFAULT) == 0;
}

/*
 * Whether the mount serves the xattr name to this caller: 0, or the answer of a filesystem
 * that does not have that name (ENODATA to a read; EOPNOTSUPP, or EPERM, to a change).
 *  - user.*: served; the kernel has checked the caller's permission on the file.
 *  - trusted.*: to uid 0 only. The kernel asks for CAP_SYS_ADMIN already, but the daemon sets
 *    the name as root, so it does not take the request's word for where it came from.
 *  - security.*: the names of -o xattr_security (security.capability by default).
 *  - system.posix_acl_access and _default: when the kernel enforces ACLs (tdefs_init).
 *  - anything else (other system.* names, unknown namespaces): not served.
 */
static int xattr_name_check(fuse_req_t req, const char *name, enum xattr_use use)
{
	/* The daemon's own (the plaintext marker, fs/format.h): never shown, set or removed. */
	if (strncmp(name, "trusted.tdefs.", 14) == 0)
		return use == XATTR_READ ? -ENODATA : -EPERM;
	if (strncmp(name, "user.", 5) == 0)
		return 0;
	if (strncmp(name, "trusted.", 8) == 0) {
		if (fuse_req_ctx(req)->uid == 0)
			return 0;
		return use == XATTR_READ ? -ENODATA : -EPERM;
	}
	if (strncmp(name, SECURITY_PREFIX, SECURITY_PREFIX_LENGTH) == 0) {
		if (security_name_served(state_of(req), name + SECURITY_PREFIX_LENGTH))
			return 0;
		return use == XATTR_READ ? -ENODATA : -EOPNOTSUPP;
	}
	if (is_acl_name(name))
		return state_of(req)->acl_enforced ? 0 : -EOPNOTSUPP;
	return -EOPNOTSUPP;
}

static bool is_file_capability(const char *name)
{
	return strcmp(name, "security.capability") == 0;
}

/* After a setxattr of security.capability: forget "has none", and bump the generation. */
static void file_capability_changed(struct tdefs_inode *inode)
{
	uint64_t state = __atomic_load_n(&inode->file_capability_state, __ATOMIC_ACQUIRE);

	while (!__atomic_compare_exchange_n(&inode->file_capability_state, &state,
					    (state | 1) + 1, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE))
		;
}

/* On success the caller ends the use of the path with inode_fd_put(inode). */
static int xattr_path(struct tdefs_inode *inode, char *buf, size_t len)
{
	int fd;

	/* The /proc link of an O_PATH descriptor would follow a symlink to its target. */
	if (S_ISLNK(inode->file_type))
		return -EOPNOTSUPP;
	fd = inode_fd_get(inode);
	if (fd < 0)
		return fd;
	fd_proc_path(fd, buf, len);
	return 0;
}

static void reply_xattr_result(fuse_req_t req, ssize_t n, size_t size, const char *value)
{
	if (n < 0)
		reply_result(req, -errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, value, (size_t)n);
}

static void tdefs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct tdefs_inode *inode = get_inode(req, ino);
	char path[64], *value = NULL;
	uint64_t capability_state = 0;
	bool capability = is_file_capability(name);
	ssize_t n;
	int ret;

	if (xattr_disabled(req))
		return;
	ret = xattr_name_check(req, name, XATTR_READ);
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	if (capability) {
		capability_state = __atomic_load_n(&inode->file_capability_state, __ATOMIC_ACQUIRE);
		if (capability_state & 1) {
			reply_result(req, -ENODATA);
			return;
		}
	}
	ret = xattr_path(inode, path, sizeof(path));
	/*
	 * The kernel asks for the access ACL before it checks a permission: "none" lets the
	 * mode bits decide, where any error would refuse the access.
	 */
	if (ret == -EOPNOTSUPP && is_acl_name(name))
		ret = -ENODATA;
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	if (size && !(value = malloc(size))) {
		inode_fd_put(inode);
		reply_result(req, -ENOMEM);
		return;
	}
	n = getxattr(path, name, value, size);
	if (n < 0)
		ret = -errno;
	inode_fd_put(inode);
	errno = -ret;
	if (n < 0 && errno == ENODATA && capability)
		__atomic_compare_exchange_n(&inode->file_capability_state, &capability_state,
					    capability_state | 1, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
	reply_xattr_result(req, n, size, value);
	free(value);
}

/* The names of the backing object's xattrs, less those the mount does not serve this caller. */
static ssize_t list_served_names(fuse_req_t req, const char *path, char **names)
{
	ssize_t length, kept = 0;

	*names = NULL;
	/* The list may grow between asking its length and reading it: ask again then. */
	for (int attempt = 0;; attempt++) {
		length = listxattr(path, NULL, 0);
		if (length < 0)
			return -errno;
		free(*names);
		*names = malloc((size_t)length + 1);
		if (!*names)
			return -ENOMEM;
		length = listxattr(path, *names, (size_t)length);
		if (length >= 0) {
			(*names)[length] = '\0';
			break;
		}
		if (errno != ERANGE || attempt == 8)
			return -errno;
	}
	for (ssize_t at = 0; at < length;) {
		size_t name_length = strnlen(*names + at, (size_t)(length - at));

		if (xattr_name_check(req, *names + at, XATTR_READ) == 0) {
			memmove(*names + kept, *names + at, name_length + 1);
			kept += (ssize_t)name_length + 1;
		}
		at += (ssize_t)name_length + 1;
	}
	return kept;
}

static void tdefs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[64], *names = NULL;
	ssize_t length;
	int ret;

	if (xattr_disabled(req))
		return;
	ret = xattr_path(get_inode(req, ino), path, sizeof(path));
	if (ret < 0) {
		reply_result(req, ret);
		return;
	}
	length = list_served_names(req, path, &names);
	inode_fd_put(get_inode(req, ino));
	if (length < 0)
		reply_result(req, (int)length);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)length);
	else if ((size_t)length > size)
		reply_result(req, -ERANGE);
	else
		fuse_reply_buf(req, names, (size_t)length);
	free(names);
}

static void tdefs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	struct tdefs_inode *inode = get_inode(req, ino);
	char path[64];
	int ret;

	if (xattr_disabled(req))
		return;
	ret = xattr_name_check(req, name, XATTR_CHANGE);
	if (ret == 0)
		ret = xattr_path(inode, path, sizeof(path));
	if (ret == 0) {
		if (setxattr(path, name, value, size, flags) < 0)
			ret = -errno;
		inode_fd_put(inode);
	}
	if (ret == 0 && is_file_capability(name))
		file_capability_changed(inode);
	reply_result(req, ret);
}

static void tdefs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[64];
	int ret;

	if (xattr_disabled(req))
		return;
	ret = xattr_name_check(req, name, XATTR_CHANGE);
	if (ret == 0)
		ret = xattr_path(get_inode(req, ino), path, sizeof(path));
	if (ret == 0) {
		if (removexattr(path, name) < 0)
			ret = -errno;
		inode_fd_put(get_inode(req, ino));
	}
	reply_result(req, ret);
}

const struct fuse_lowlevel_ops tdefs_operations = {
	.init = tdefs_init,
	.lookup = tdefs_lookup,
	.forget = tdefs_forget,
	.forget_multi = tdefs_forget_multi,
	.getattr = tdefs_getattr,
	.setattr = tdefs_setattr,
	.readlink = tdefs_readlink,
	.mknod = tdefs_mknod,
	.mkdir = tdefs_mkdir,
	.symlink = tdefs_symlink,
	.link = tdefs_link,
	.unlink = tdefs_unlink,
	.rmdir = tdefs_rmdir,
	.rename = tdefs_rename,
	.open = tdefs_open,
	.create = tdefs_create,
	.read = tdefs_read,
	.write = tdefs_write,
	.flush = tdefs_flush,
	.release = tdefs_release,
	.fsync = tdefs_fsync,
	.fallocate = tdefs_fallocate,
	.lseek = tdefs_lseek,
	.opendir = tdefs_opendir,
	.readdir = tdefs_readdir,
	.releasedir = tdefs_releasedir,
	.fsyncdir = tdefs_fsyncdir,
	.statfs = tdefs_statfs,
	.getxattr = tdefs_getxattr,
	.listxattr = tdefs_listxattr,
	.setxattr = tdefs_setxattr,
	.removexattr = tdefs_removexattr,
};
