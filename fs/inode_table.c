/*
 * The inode table, keyed on the backing (st_dev, st_ino) as libfuse's passthrough_ll does: every
 * name of a hard-linked file maps to one tdefs_inode, so all links share one encryption state
 * and one set of locks. The FUSE node ID is the inode's address; the kernel's lookup count
 * decides when it is freed.
 *
 * Each daemon has its own table (struct inode_table in fs/daemon.h, set up by inode_table_init):
 * the hash, the descriptor cache and the file-handle probe below are its fields, not file
 * statics, so two daemons in one process never share an inode.
 *
 * Descriptors. The kernel may cache far more inodes than the daemon may open descriptors
 * (RLIMIT_NOFILE, often 1024), so an inode does not keep one: it keeps its backing file handle
 * (name_to_handle_at, taken at lookup) and an O_PATH descriptor only while it is in use
 * (inode_fd_get/inode_fd_put, reference-counted) or among the FD_CACHE_MAX most recently used
 * (an LRU list; eviction never closes a descriptor in use). An evicted descriptor comes back with
 * open_by_handle_at() on the backing root's filesystem: a handle names the inode itself (with
 * its generation, so a freed and reused inode number gives ESTALE), no path is resolved, and the
 * result is checked to be the same (st_dev, st_ino), so nothing outside the backing root can be
 * reached this way. Where handles do not work (a filesystem without them, an object on another
 * filesystem mounted below the root, a daemon without CAP_DAC_READ_SEARCH), the inode keeps its
 * O_PATH descriptor for its life, as before. An open file costs one descriptor, its data
 * descriptor (fs/file_keys.c): while the kernel still holds an inode, an unlinked but open file
 * or a removed directory still reopens by handle (ext4), so nothing needs pinning. At a hard
 * limit below the cache's size, an EMFILE empties the idle cache and the open is retried once
 * (inode_fd_cache_shrink); an EMFILE that still reaches a reply is logged once (fd_limit_note).
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

#include <sys/resource.h>
#include <sys/xattr.h>

/* Idle O_PATH descriptors kept open (beyond those in use): far below the usual 1024 limit. */
#define FD_CACHE_MAX 256

static size_t bucket_of(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)dev;
	return (size_t)(h >> 52) % INODE_HASH_BUCKETS;
}

struct tdefs_inode *inode_from_fuse(struct tdefs_daemon *daemon, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &daemon->root;
	return (struct tdefs_inode *)(uintptr_t)ino;
}

void fd_proc_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

void fd_limit_note(int error)
{
	static int logged; /* atomic: once per daemon */
	struct rlimit limit;

	if (error != -EMFILE && error != -ENFILE)
		return;
	if (__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
		return;
	if (error == -ENFILE) {
		log_error("tdefs: the system is out of file descriptors (ENFILE); raise "
			  "fs.file-max (sysctl) or close files elsewhere");
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		limit.rlim_cur = limit.rlim_max = 0;
	log_error("tdefs: out of file descriptors (EMFILE) at RLIMIT_NOFILE %llu (hard %llu); "
		  "raise the daemon's hard limit (ulimit -Hn, or LimitNOFILE= in its systemd unit)",
		  (unsigned long long)limit.rlim_cur, (unsigned long long)limit.rlim_max);
}

/* --- the descriptor cache ---------------------------------------------------------------- */

/* Can this daemon reopen by handle on the backing filesystem? Tried once, on the root. */
static void handles_probe(struct tdefs_daemon *daemon)
{
	struct inode_table *table = &daemon->inodes;
	struct file_handle *handle;
	struct stat st;
	int mount_id, fd;

	if (fstat(daemon->root.path_fd, &st) < 0)
		return;
	table->backing_dev = st.st_dev;
	handle = calloc(1, sizeof(*handle) + MAX_HANDLE_SZ);
	if (!handle)
		return;
	handle->handle_bytes = MAX_HANDLE_SZ;
	table->handle_mount_fd = openat(daemon->root.path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (table->handle_mount_fd >= 0 &&
	    name_to_handle_at(daemon->root.path_fd, "", handle, &mount_id, AT_EMPTY_PATH) == 0) {
		fd = open_by_handle_at(table->handle_mount_fd, handle, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			table->handles_usable = true;
			close(fd);
		}
	}
	if (!table->handles_usable)
		log_info("tdefs: the backing filesystem gives no reopenable file handles (%s); "
			 "each cached inode keeps a descriptor", strerror(errno));
	free(handle);
}

/* The handle of the object open as fd, or NULL when it cannot be reopened by one. */
static struct file_handle *handle_of(struct tdefs_daemon *daemon, int fd, const struct stat *st)
{
	struct inode_table *table = &daemon->inodes;
	struct {
		struct file_handle handle;
		unsigned char bytes[MAX_HANDLE_SZ];
	} buf;
	struct file_handle *handle;
	int mount_id;

	/* Once, on the first inode: pthread_once cannot hand the probe its daemon. */
	if (!__atomic_load_n(&table->handles_probed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&table->handles_probe_lock);
		if (!table->handles_probed) {
			handles_probe(daemon);
			__atomic_store_n(&table->handles_probed, true, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&table->handles_probe_lock);
	}
	if (!table->handles_usable || st->st_dev != table->backing_dev)
		return NULL;
	buf.handle.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &buf.handle, &mount_id, AT_EMPTY_PATH) < 0)
		return NULL;
	handle = malloc(sizeof(*handle) + buf.handle.handle_bytes);
	if (handle)
		memcpy(handle, &buf.handle, sizeof(*handle) + buf.handle.handle_bytes);
	return handle;
}

static void lru_unlink(struct tdefs_inode *inode)
{
	struct inode_table *table = inode->table;

	if (!inode->in_lru)
		return;
	if (inode->lru_prev)
		inode->lru_prev->lru_next = inode->lru_next;
	else
		table->lru_head = inode->lru_next;
	if (inode->lru_next)
		inode->lru_next->lru_prev = inode->lru_prev;
	else
		table->lru_tail = inode->lru_prev;
	inode->lru_prev = inode->lru_next = NULL;
	inode->in_lru = false;
}

static void lru_push(struct tdefs_inode *inode)
{
	struct inode_table *table = inode->table;

	inode->lru_prev = NULL;
	inode->lru_next = table->lru_head;
	if (table->lru_head)
		table->lru_head->lru_prev = inode;
	else
		table->lru_tail = inode;
	table->lru_head = inode;
	inode->in_lru = true;
}

/* Close idle descriptors beyond the cache's size; called with the descriptor cache lock held. */
static void lru_trim(struct inode_table *table)
{
	while (table->fd_cached > FD_CACHE_MAX && table->lru_tail) {
		struct tdefs_inode *victim = table->lru_tail;

		lru_unlink(victim);
		close(victim->path_fd);
		victim->path_fd = -1;
		table->fd_cached--;
	}
}

/* Give a fresh O_PATH descriptor to an inode with a handle (its cache lock held): consumed. */
static void cache_adopt(struct tdefs_inode *inode, int fd)
{
	struct inode_table *table = inode->table;

	if (inode->path_fd >= 0) {
		close(fd);
		/* Another thread cached one meanwhile, maybe idle by now: in use again, not evictable. */
		if (inode->fd_users > 0)
			lru_unlink(inode);
		return;
	}
	inode->path_fd = fd;
	table->fd_cached++;
	if (inode->fd_users == 0)
		lru_push(inode);
	lru_trim(inode->table);
}

bool inode_fd_cache_shrink(struct inode_table *table, int error)
{
	size_t closed = 0;

	if (error != -EMFILE)
		return false;
	pthread_mutex_lock(&table->fd_cache_lock);
	while (table->lru_tail) {
		struct tdefs_inode *victim = table->lru_tail;

		lru_unlink(victim);
		close(victim->path_fd);
		victim->path_fd = -1;
		table->fd_cached--;
		closed++;
	}
	pthread_mutex_unlock(&table->fd_cache_lock);
	return closed > 0;
}

int inode_fd_get(struct tdefs_inode *inode)
{
	struct inode_table *table = inode->table;
	struct stat st;
	int fd;

	if (!inode->handle)
		return inode->path_fd; /* kept for the inode's life */
	pthread_mutex_lock(&table->fd_cache_lock);
	if (inode->path_fd >= 0) {
		lru_unlink(inode);
		inode->fd_users++;
		fd = inode->path_fd;
		pthread_mutex_unlock(&table->fd_cache_lock);
		return fd;
	}
	pthread_mutex_unlock(&table->fd_cache_lock);

	fd = open_by_handle_at(table->handle_mount_fd, inode->handle, O_PATH | O_CLOEXEC);
	if (fd < 0 && inode_fd_cache_shrink(table, -errno))
		fd = open_by_handle_at(table->handle_mount_fd, inode->handle, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		int ret = -errno;

		fd_limit_note(ret);
		return ret;
	}
	if (fstat(fd, &st) < 0 || st.st_dev != inode->backing_dev || st.st_ino != inode->backing_ino) {
		close(fd);
		return -ESTALE;
	}
	pthread_mutex_lock(&table->fd_cache_lock);
	inode->fd_users++; /* before adopting: an in-use descriptor is never trimmed */
	cache_adopt(inode, fd);
	fd = inode->path_fd;
	pthread_mutex_unlock(&table->fd_cache_lock);
	return fd;
}

void inode_fd_put(struct tdefs_inode *inode)
{
	struct inode_table *table = inode->table;

	if (!inode->handle)
		return;
	pthread_mutex_lock(&table->fd_cache_lock);
	if (--inode->fd_users == 0 && inode->path_fd >= 0) {
		lru_push(inode);
		lru_trim(inode->table);
	}
	pthread_mutex_unlock(&table->fd_cache_lock);
}

void inode_describe(struct tdefs_inode *inode, char *buf, size_t len)
{
	char proc_path[64];
	ssize_t n = -1;
	int fd = inode_fd_get(inode);

	if (fd >= 0) {
		fd_proc_path(fd, proc_path, sizeof(proc_path));
		n = readlink(proc_path, buf, len - 1);
		inode_fd_put(inode);
	}
	if (n < 0)
		snprintf(buf, len, "(backing inode %llu)", (unsigned long long)inode->backing_ino);
	else
		buf[n] = '\0';
}

void stat_to_plaintext(struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return;
	/* A backing file shorter than its header is empty or damaged: it shows as size 0. */
	st->st_size = st->st_size > (off_t)TDEFS_HEADER_SIZE ? st->st_size - TDEFS_HEADER_SIZE : 0;
	st->st_blocks = st->st_blocks > (blkcnt_t)(TDEFS_HEADER_SIZE / 512)
				? st->st_blocks - TDEFS_HEADER_SIZE / 512
				: 0;
}

/*
 * In an adopted directory, whether the regular file open in fd (O_PATH) carries the plaintext
 * marker, cached in the inode (fs/daemon.h): its size shows as it is, not less a header.
 */
static void note_plaintext_state(const struct tdefs_daemon *daemon, struct tdefs_inode *inode,
				 int fd, const struct stat *st)
{
	uint8_t value[PLAINTEXT_MARKER_SIZE];
	char proc_path[64];
	ssize_t n;

	if (!daemon->adopted || !S_ISREG(st->st_mode) ||
	    __atomic_load_n(&inode->plaintext_state, __ATOMIC_ACQUIRE) != INODE_PLAINTEXT_UNKNOWN)
		return;
	fd_proc_path(fd, proc_path, sizeof(proc_path));
	n = getxattr(proc_path, PLAINTEXT_MARKER_NAME, value, sizeof(value));
	if (n < 0 && errno != ENODATA)
		return; /* asked again next time */
	__atomic_store_n(&inode->plaintext_state,
			 n > 0 && plaintext_marker_decode(value, (size_t)n, NULL) == 0
				 ? INODE_PLAINTEXT_YES
				 : INODE_PLAINTEXT_NO,
			 __ATOMIC_RELEASE);
}

static void inode_stat_to_plaintext(struct tdefs_inode *inode, struct stat *st)
{
	if (S_ISREG(st->st_mode) &&
	    __atomic_load_n(&inode->plaintext_state, __ATOMIC_ACQUIRE) == INODE_PLAINTEXT_YES)
		return;
	stat_to_plaintext(st);
}

int inode_stat(struct tdefs_daemon *daemon, struct tdefs_inode *inode, struct stat *st)
{
	struct stat cover;
	int fd = inode_fd_get(inode), ret = 0;

	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else
		note_plaintext_state(daemon, inode, fd, st);
	inode_fd_put(inode);
	if (ret < 0)
		return ret;
	inode_stat_to_plaintext(inode, st);
	/* The root: owner and mode of the covered mount point, not of the 0700 backing root. */
	if (inode == &daemon->root && daemon->mount_point_fd >= 0) {
		if (fstat(daemon->mount_point_fd, &cover) < 0)
			return -errno;
		st->st_mode = (st->st_mode & S_IFMT) | (cover.st_mode & 07777);
		st->st_uid = cover.st_uid;
		st->st_gid = cover.st_gid;
	}
	return 0;
}

static void inode_destroy(struct tdefs_inode *inode)
{
	struct inode_table *table = inode->table;

	/* The kernel holds a lookup reference while a file is open, so no crypt state remains. */
	if (inode->handle) {
		pthread_mutex_lock(&table->fd_cache_lock);
		lru_unlink(inode);
		if (inode->path_fd >= 0)
			table->fd_cached--;
		pthread_mutex_unlock(&table->fd_cache_lock);
		free(inode->handle);
	}
	/* No request uses a forgotten inode (fd_users is 0): its descriptor can go. */
	if (inode->path_fd >= 0)
		close(inode->path_fd);
	if (inode->retired_fd >= 0)
		close(inode->retired_fd);
	pthread_mutex_destroy(&inode->crypt_lock);
	free(inode);
}

static struct tdefs_inode *table_find(struct inode_table *table, size_t bucket,
				      const struct stat *st)
{
	for (struct tdefs_inode *inode = table->buckets[bucket]; inode; inode = inode->hash_next)
		if (inode->backing_ino == st->st_ino && inode->backing_dev == st->st_dev)
			return inode;
	return NULL;
}

/*
 * Find or insert the inode of the O_PATH descriptor fd (consumed), with one more reference.
 * The handle is taken only for an inode not in the table yet, outside the table lock.
 */
static int inode_insert(struct tdefs_daemon *daemon, int fd, struct stat *st,
			struct tdefs_inode **out)
{
	struct inode_table *table = &daemon->inodes;
	struct tdefs_inode *found, *fresh;
	struct file_handle *handle;
	size_t bucket;

	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	bucket = bucket_of(st->st_dev, st->st_ino);
	pthread_mutex_lock(&table->lock);
	found = table_find(table, bucket, st);
	if (found) {
		found->lookup_count++;
		pthread_mutex_unlock(&table->lock);
		goto out_found;
	}
	pthread_mutex_unlock(&table->lock);

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		close(fd);
		return -ENOMEM;
	}
	handle = handle_of(daemon, fd, st);
	fresh->table = table;
	fresh->handle = handle;
	fresh->path_fd = handle ? -1 : fd;
	fresh->backing_dev = st->st_dev;
	fresh->backing_ino = st->st_ino;
	fresh->file_type = st->st_mode & S_IFMT;
	fresh->lookup_count = 1;
	fresh->retired_fd = -1;
	pthread_mutex_init(&fresh->crypt_lock, NULL);

	pthread_mutex_lock(&table->lock);
	found = table_find(table, bucket, st); /* another lookup of it may have won meanwhile */
	if (found) {
		found->lookup_count++;
	} else {
		fresh->hash_next = table->buckets[bucket];
		table->buckets[bucket] = fresh;
	}
	pthread_mutex_unlock(&table->lock);
	if (!found) {
		found = fresh;
		note_plaintext_state(daemon, found, fd, st);
		if (!handle)
			goto out; /* fd is the inode's for its life */
	} else {
		pthread_mutex_destroy(&fresh->crypt_lock);
		free(handle);
		free(fresh);
	}
out_found:
	note_plaintext_state(daemon, found, fd, st);
	/* The lookup's descriptor is likely to be used next (getattr, open): keep it cached. */
	if (found->handle) {
		pthread_mutex_lock(&table->fd_cache_lock);
		cache_adopt(found, fd);
		pthread_mutex_unlock(&table->fd_cache_lock);
	} else {
		close(fd);
	}
out:
	*out = found;
	return 0;
}

int inode_get_by_fd(struct tdefs_daemon *daemon, int path_fd, struct tdefs_inode **inode)
{
	struct stat st;

	return inode_insert(daemon, path_fd, &st, inode);
}

int inode_lookup(struct tdefs_daemon *daemon, struct tdefs_inode *parent, const char *name,
		 struct fuse_entry_param *entry)
{
	struct tdefs_inode *found;
	struct stat st;
	int fd, ret;

	/* The config file is the backing directory's, not the user's: it never shows. */
	if (parent == &daemon->root && config_reserved_name(name))
		return -ENOENT;
	ret = inode_fd_get(parent);
	if (ret < 0)
		return ret;
	/* From the name to the table entry in one piece: a conversion's swap waits (daemon.h). */
	namespace_lock_shared();
	fd = openat(ret, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && inode_fd_cache_shrink(&daemon->inodes, -errno))
		fd = openat(ret, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	inode_fd_put(parent);
	if (ret < 0) {
		namespace_unlock();
		fd_limit_note(ret);
		return ret;
	}
	ret = inode_insert(daemon, fd, &st, &found);
	namespace_unlock();
	if (ret < 0)
		return ret;

	memset(entry, 0, sizeof(*entry));
	inode_stat_to_plaintext(found, &st);
	entry->ino = (fuse_ino_t)(uintptr_t)found;
	entry->attr = st;
	entry->attr_timeout = daemon->timeout;
	entry->entry_timeout = daemon->timeout;
	return 0;
}

int inode_retarget(struct tdefs_daemon *daemon, struct tdefs_inode *inode, int new_fd)
{
	struct inode_table *table = &daemon->inodes;
	struct tdefs_inode **link;
	struct file_handle *handle;
	struct stat st;

	if (fstat(new_fd, &st) < 0) {
		int ret = -errno;

		close(new_fd);
		return ret;
	}
	handle = handle_of(daemon, new_fd, &st);
	pthread_mutex_lock(&table->lock);
	for (link = &table->buckets[bucket_of(inode->backing_dev, inode->backing_ino)]; *link;
	     link = &(*link)->hash_next) {
		if (*link == inode) {
			*link = inode->hash_next;
			break;
		}
	}
	pthread_mutex_lock(&table->fd_cache_lock);
	/*
	 * The old descriptor: closed when idle; a request still using it (a getattr in flight)
	 * keeps it until the inode is freed, so that its number is never reused under it.
	 */
	if (inode->path_fd >= 0) {
		if (inode->handle && inode->fd_users == 0) {
			lru_unlink(inode);
			table->fd_cached--;
			close(inode->path_fd);
		} else {
			if (inode->handle)
				table->fd_cached--;
			if (inode->retired_fd >= 0)
				close(inode->retired_fd);
			inode->retired_fd = inode->path_fd;
		}
	}
	free(inode->handle);
	inode->handle = handle;
	inode->path_fd = -1;
	if (handle) {
		inode->path_fd = new_fd;
		table->fd_cached++;
		if (inode->fd_users == 0)
			lru_push(inode);
		lru_trim(inode->table);
	} else {
		inode->path_fd = new_fd;
	}
	pthread_mutex_unlock(&table->fd_cache_lock);
	inode->backing_dev = st.st_dev;
	inode->backing_ino = st.st_ino;
	__atomic_store_n(&inode->file_capability_state, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&inode->plaintext_state, INODE_PLAINTEXT_NO, __ATOMIC_RELEASE);
	link = &table->buckets[bucket_of(st.st_dev, st.st_ino)];
	inode->hash_next = *link;
	*link = inode;
	pthread_mutex_unlock(&table->lock);
	return 0;
}

void inode_forget(struct tdefs_daemon *daemon, struct tdefs_inode *inode, uint64_t count)
{
	struct inode_table *table = &daemon->inodes;
	struct tdefs_inode **link;

	if (inode == &daemon->root)
		return;
	pthread_mutex_lock(&table->lock);
	if (inode->lookup_count > count) {
		inode->lookup_count -= count;
		pthread_mutex_unlock(&table->lock);
		return;
	}
	for (link = &table->buckets[bucket_of(inode->backing_dev, inode->backing_ino)]; *link;
	     link = &(*link)->hash_next) {
		if (*link == inode) {
			*link = inode->hash_next;
			break;
		}
	}
	pthread_mutex_unlock(&table->lock);
	inode_destroy(inode);
}

void inode_table_init(struct tdefs_daemon *daemon)
{
	struct inode_table *table = &daemon->inodes;

	memset(table, 0, sizeof(*table));
	pthread_mutex_init(&table->lock, NULL);
	pthread_mutex_init(&table->fd_cache_lock, NULL);
	pthread_mutex_init(&table->handles_probe_lock, NULL);
	table->handle_mount_fd = -1;
	daemon->root.table = table;
}

void inode_table_clear(struct tdefs_daemon *daemon)
{
	struct inode_table *table = &daemon->inodes;

	pthread_mutex_lock(&table->lock);
	for (size_t i = 0; i < INODE_HASH_BUCKETS; i++) {
		while (table->buckets[i]) {
			struct tdefs_inode *inode = table->buckets[i];

			table->buckets[i] = inode->hash_next;
			/* At unmount any key still loaded is wiped here. */
			while (inode->crypt_users > 0)
				file_crypt_release(inode);
			inode_destroy(inode);
		}
	}
	pthread_mutex_unlock(&table->lock);
	if (table->handle_mount_fd >= 0) {
		close(table->handle_mount_fd);
		table->handle_mount_fd = -1;
	}
	pthread_mutex_destroy(&table->lock);
	pthread_mutex_destroy(&table->fd_cache_lock);
	pthread_mutex_destroy(&table->handles_probe_lock);
}

int inode_table_visit_loaded(struct tdefs_daemon *daemon,
			     void (*visit)(struct tdefs_inode *inode, void *context),
			     void *context)
{
	struct inode_table *table = &daemon->inodes;
	struct tdefs_inode **loaded = NULL;
	size_t count = 0, room = 0;
	int ret = 0;

	/* Collected under the table lock with a lookup reference and a state user each... */
	pthread_mutex_lock(&table->lock);
	for (size_t i = 0; i < INODE_HASH_BUCKETS && ret == 0; i++) {
		for (struct tdefs_inode *inode = table->buckets[i]; inode; inode = inode->hash_next) {
			pthread_mutex_lock(&inode->crypt_lock);
			if (inode->crypt_users > 0) {
				if (count == room) {
					size_t grown = room ? 2 * room : 64;
					struct tdefs_inode **bigger =
						realloc(loaded, grown * sizeof(*loaded));

					if (!bigger) {
						pthread_mutex_unlock(&inode->crypt_lock);
						ret = -ENOMEM;
						break;
					}
					loaded = bigger;
					room = grown;
				}
				inode->crypt_users++;
				metrics_gauge_add(&metrics.file_users, 1);
				inode->lookup_count++;
				loaded[count++] = inode;
			}
			pthread_mutex_unlock(&inode->crypt_lock);
		}
	}
	pthread_mutex_unlock(&table->lock);
	/* ...and visited with no lock held, so that visit may wait for the file's requests. */
	for (size_t i = 0; i < count; i++) {
		if (ret == 0)
			visit(loaded[i], context);
		file_crypt_release(loaded[i]);
		inode_forget(daemon, loaded[i], 1);
	}
	free(loaded);
	return ret;
}
