/*
 * The inode table, keyed on the backing (st_dev, st_ino) as libfuse's passthrough_ll does: every
 * name of a hard-linked file maps to one tdefs_inode, so all links share one encryption state
 * and one set of locks. The FUSE node ID is the inode's address; the kernel's lookup count
 * decides when it is freed.
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

#define INODE_HASH_BUCKETS 4096

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tdefs_inode *buckets[INODE_HASH_BUCKETS]; /* guarded by table_lock */

static size_t bucket_of(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)dev;
	return (size_t)(h >> 52) % INODE_HASH_BUCKETS;
}

struct tdefs_inode *inode_from_fuse(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &daemon_state.root;
	return (struct tdefs_inode *)(uintptr_t)ino;
}

void inode_proc_path(const struct tdefs_inode *inode, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", inode->path_fd);
}

void inode_describe(const struct tdefs_inode *inode, char *buf, size_t len)
{
	char proc_path[64];
	ssize_t n;

	inode_proc_path(inode, proc_path, sizeof(proc_path));
	n = readlink(proc_path, buf, len - 1);
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

int inode_stat(struct tdefs_inode *inode, struct stat *st)
{
	struct stat cover;

	if (fstatat(inode->path_fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	stat_to_plaintext(st);
	/* The root: owner and mode of the covered mount point, not of the 0700 backing root. */
	if (inode == &daemon_state.root && daemon_state.mount_point_fd >= 0) {
		if (fstat(daemon_state.mount_point_fd, &cover) < 0)
			return -errno;
		st->st_mode = (st->st_mode & S_IFMT) | (cover.st_mode & 07777);
		st->st_uid = cover.st_uid;
		st->st_gid = cover.st_gid;
	}
	return 0;
}

static void inode_destroy(struct tdefs_inode *inode)
{
	/* The kernel holds a lookup reference while a file is open, so no crypt state remains. */
	close(inode->path_fd);
	pthread_mutex_destroy(&inode->crypt_lock);
	free(inode);
}

/* Find or insert the inode of the O_PATH descriptor fd (consumed), with one more reference. */
static int inode_insert(int fd, struct stat *st, struct tdefs_inode **out)
{
	struct tdefs_inode *inode, *found = NULL;
	size_t bucket;

	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	bucket = bucket_of(st->st_dev, st->st_ino);
	pthread_mutex_lock(&table_lock);
	for (inode = buckets[bucket]; inode; inode = inode->hash_next) {
		if (inode->backing_ino == st->st_ino && inode->backing_dev == st->st_dev) {
			found = inode;
			found->lookup_count++;
			break;
		}
	}
	if (!found) {
		found = calloc(1, sizeof(*found));
		if (!found) {
			pthread_mutex_unlock(&table_lock);
			close(fd);
			return -ENOMEM;
		}
		found->path_fd = fd;
		fd = -1;
		found->backing_dev = st->st_dev;
		found->backing_ino = st->st_ino;
		found->file_type = st->st_mode & S_IFMT;
		found->lookup_count = 1;
		pthread_mutex_init(&found->crypt_lock, NULL);
		found->hash_next = buckets[bucket];
		buckets[bucket] = found;
	}
	pthread_mutex_unlock(&table_lock);
	if (fd >= 0)
		close(fd);
	*out = found;
	return 0;
}

int inode_get_by_fd(int path_fd, struct tdefs_inode **inode)
{
	struct stat st;

	return inode_insert(path_fd, &st, inode);
}

int inode_lookup(struct tdefs_inode *parent, const char *name, struct fuse_entry_param *entry)
{
	struct tdefs_inode *found;
	struct stat st;
	int fd, ret;

	/* The config file is the backing directory's, not the user's: it never shows. */
	if (parent == &daemon_state.root && strcmp(name, CONFIG_FILE_NAME) == 0)
		return -ENOENT;
	fd = openat(parent->path_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = inode_insert(fd, &st, &found);
	if (ret < 0)
		return ret;

	memset(entry, 0, sizeof(*entry));
	stat_to_plaintext(&st);
	entry->ino = (fuse_ino_t)(uintptr_t)found;
	entry->attr = st;
	entry->attr_timeout = daemon_state.timeout;
	entry->entry_timeout = daemon_state.timeout;
	return 0;
}

void inode_forget(struct tdefs_inode *inode, uint64_t count)
{
	struct tdefs_inode **link;

	if (inode == &daemon_state.root)
		return;
	pthread_mutex_lock(&table_lock);
	if (inode->lookup_count > count) {
		inode->lookup_count -= count;
		pthread_mutex_unlock(&table_lock);
		return;
	}
	for (link = &buckets[bucket_of(inode->backing_dev, inode->backing_ino)]; *link;
	     link = &(*link)->hash_next) {
		if (*link == inode) {
			*link = inode->hash_next;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	inode_destroy(inode);
}

void inode_table_clear(void)
{
	pthread_mutex_lock(&table_lock);
	for (size_t i = 0; i < INODE_HASH_BUCKETS; i++) {
		while (buckets[i]) {
			struct tdefs_inode *inode = buckets[i];

			buckets[i] = inode->hash_next;
			/* At unmount any key still loaded is wiped here. */
			while (inode->crypt_users > 0)
				file_crypt_release(inode);
			inode_destroy(inode);
		}
	}
	pthread_mutex_unlock(&table_lock);
}
