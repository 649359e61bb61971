/*
 * Unit tests that the daemon's state is an argument, not a global (fs/daemon.h): two struct
 * tdefs_daemon side by side in one process, each over a backing directory and a mount point of
 * its own, with different mount options. The inode table's functions (fs/inode_table.c) that
 * take the daemon must answer each from its own state: the root inode, the backing root a name
 * is looked up in, the entry timeouts, the owner and mode the mount root shows. A change to one
 * daemon must not show in the other. Were any of them to read a shared instance, one of the two
 * daemons would get the other's answers here. Each daemon has its own inode table too (struct
 * inode_table in fs/daemon.h): one backing file hard-linked into both backing directories is
 * one (st_dev, st_ino), which a shared table would give both daemons as one inode with both
 * lookups counted on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/daemon.h"

struct side {
	char top[64];        /* a temporary directory holding both of the below */
	char backing[96];
	char mount_point[96];
	struct tdefs_daemon daemon;
};

static struct side sides[2];

/* A daemon as fs/main.c's prepare_mount leaves it, over a fresh backing and mount point. */
static void side_open(struct side *side, const char *only_file, mode_t mount_mode, double timeout)
{
	struct stat st;
	int fd;

	snprintf(side->top, sizeof(side->top), "%s/tdefs-state-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(side->top));
	snprintf(side->backing, sizeof(side->backing), "%s/backing", side->top);
	snprintf(side->mount_point, sizeof(side->mount_point), "%s/mnt", side->top);
	assert_int_equal(mkdir(side->backing, 0700), 0);
	assert_int_equal(mkdir(side->mount_point, 0700), 0);
	assert_int_equal(chmod(side->mount_point, mount_mode), 0);
	if (only_file) {
		char path[160];

		snprintf(path, sizeof(path), "%s/%s", side->backing, only_file);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		close(fd);
	}

	memset(&side->daemon, 0, sizeof(side->daemon));
	pthread_rwlock_init(&side->daemon.keyring_lock, NULL);
	side->daemon.timeout = timeout;
	side->daemon.backing_fd = open(side->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	side->daemon.mount_point_fd = open(side->mount_point, O_PATH | O_DIRECTORY | O_CLOEXEC);
	side->daemon.root.path_fd = open(side->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(side->daemon.backing_fd >= 0 && side->daemon.mount_point_fd >= 0 &&
		    side->daemon.root.path_fd >= 0);
	assert_int_equal(fstat(side->daemon.root.path_fd, &st), 0);
	side->daemon.root.backing_dev = st.st_dev;
	side->daemon.root.backing_ino = st.st_ino;
	side->daemon.root.file_type = S_IFDIR;
	side->daemon.root.lookup_count = 1;
	side->daemon.root.retired_fd = -1;
	pthread_mutex_init(&side->daemon.root.crypt_lock, NULL);
	inode_table_init(&side->daemon);
}

static void side_close(struct side *side)
{
	char path[160];

	close(side->daemon.backing_fd);
	close(side->daemon.mount_point_fd);
	close(side->daemon.root.path_fd);
	pthread_mutex_destroy(&side->daemon.root.crypt_lock);
	pthread_rwlock_destroy(&side->daemon.keyring_lock);
	snprintf(path, sizeof(path), "%s/only-a", side->backing);
	unlink(path);
	snprintf(path, sizeof(path), "%s/only-b", side->backing);
	unlink(path);
	snprintf(path, sizeof(path), "%s/linked", side->backing);
	unlink(path);
	rmdir(side->backing);
	rmdir(side->mount_point);
	rmdir(side->top);
}

static int setup(void **state)
{
	(void)state;
	side_open(&sides[0], "only-a", 0751, 1.5);
	side_open(&sides[1], "only-b", 0705, 0.25);
	return 0;
}

/* The same backing object in both backing directories: "linked" in each, one inode. */
static void link_into_both(void)
{
	char from[160], to[160];
	int fd;

	snprintf(from, sizeof(from), "%s/linked", sides[0].backing);
	snprintf(to, sizeof(to), "%s/linked", sides[1].backing);
	fd = open(from, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(link(from, to), 0);
}

/* Whether the daemon's hash table holds an inode of this backing (st_dev, st_ino). */
static bool table_holds(const struct tdefs_daemon *daemon, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < INODE_HASH_BUCKETS; i++)
		for (const struct tdefs_inode *inode = daemon->inodes.buckets[i]; inode;
		     inode = inode->hash_next)
			if (inode->backing_dev == dev && inode->backing_ino == ino)
				return true;
	return false;
}

static int teardown(void **state)
{
	(void)state;
	inode_table_clear(&sides[0].daemon);
	inode_table_clear(&sides[1].daemon);
	side_close(&sides[0]);
	side_close(&sides[1]);
	return 0;
}

/* FUSE's root inode number names each daemon's own root. */
static void test_root_is_each_daemons(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;

	(void)state;
	assert_ptr_equal(inode_from_fuse(a, FUSE_ROOT_ID), &a->root);
	assert_ptr_equal(inode_from_fuse(b, FUSE_ROOT_ID), &b->root);
	assert_ptr_not_equal(inode_from_fuse(a, FUSE_ROOT_ID), inode_from_fuse(b, FUSE_ROOT_ID));
}

/* A lookup goes to the daemon's backing root and takes its timeout. */
static void test_lookup_uses_each_daemons_backing_and_timeout(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct fuse_entry_param entry;

	(void)state;
	assert_int_equal(inode_lookup(a, &a->root, "only-a", &entry), 0);
	assert_true(entry.attr_timeout == 1.5 && entry.entry_timeout == 1.5);
	inode_forget(a, inode_from_fuse(a, entry.ino), 1);
	assert_int_equal(inode_lookup(b, &b->root, "only-a", &entry), -ENOENT);

	assert_int_equal(inode_lookup(b, &b->root, "only-b", &entry), 0);
	assert_true(entry.attr_timeout == 0.25 && entry.entry_timeout == 0.25);
	inode_forget(b, inode_from_fuse(b, entry.ino), 1);
	assert_int_equal(inode_lookup(a, &a->root, "only-b", &entry), -ENOENT);
}

/* The mount root shows its own mount point's mode, each. */
static void test_root_stat_uses_each_daemons_mount_point(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct stat st;

	(void)state;
	assert_int_equal(inode_stat(a, &a->root, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0751);
	assert_int_equal(inode_stat(b, &b->root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0705);
}

/* A change to one daemon's state leaves the other's answers as they were. */
static void test_change_to_one_leaves_the_other(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct fuse_entry_param entry;
	struct stat st;
	int covered = a->mount_point_fd;

	(void)state;
	a->timeout = 9;
	a->mount_point_fd = -1; /* no mount point: the root shows the 0700 backing root */
	assert_int_equal(inode_lookup(b, &b->root, "only-b", &entry), 0);
	assert_true(entry.attr_timeout == 0.25);
	inode_forget(b, inode_from_fuse(b, entry.ino), 1);
	assert_int_equal(inode_stat(b, &b->root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0705);

	assert_int_equal(inode_lookup(a, &a->root, "only-a", &entry), 0);
	assert_true(entry.attr_timeout == 9);
	inode_forget(a, inode_from_fuse(a, entry.ino), 1);
	assert_int_equal(inode_stat(a, &a->root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	a->mount_point_fd = covered;
	a->timeout = 1.5;
}

/* Forgetting a daemon's root through that daemon leaves it in place, as at FUSE's forget. */
static void test_forget_keeps_each_root(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct fuse_entry_param entry;

	(void)state;
	inode_forget(a, &a->root, 1);
	inode_forget(b, &b->root, 1);
	assert_int_equal(a->root.lookup_count, 1);
	assert_int_equal(b->root.lookup_count, 1);
	assert_int_equal(inode_lookup(a, &a->root, "only-a", &entry), 0);
	inode_forget(a, inode_from_fuse(a, entry.ino), 1);
}

/* Each daemon probes for file handles on its own backing root, at its own first new inode. */
static void test_handle_probe_is_each_daemons(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct fuse_entry_param entry;

	(void)state;
	assert_false(a->inodes.handles_probed);
	assert_false(b->inodes.handles_probed);
	assert_int_equal(inode_lookup(a, &a->root, "only-a", &entry), 0);
	inode_forget(a, inode_from_fuse(a, entry.ino), 1);
	assert_true(a->inodes.handles_probed);
	assert_false(b->inodes.handles_probed);
	assert_int_equal(b->inodes.handle_mount_fd, -1);
	assert_int_equal(inode_lookup(b, &b->root, "only-b", &entry), 0);
	inode_forget(b, inode_from_fuse(b, entry.ino), 1);
	assert_true(b->inodes.handles_probed);
}

/*
 * One backing object looked up through both daemons is an inode in each table, with one
 * lookup each: found in neither table before, in its own only after, and a forget in one
 * frees its own and leaves the other's count and inode alone.
 */
static void test_inode_tables_are_each_daemons(void **state)
{
	struct tdefs_daemon *a = &sides[0].daemon, *b = &sides[1].daemon;
	struct fuse_entry_param entry;
	struct tdefs_inode *in_a, *in_b;
	struct stat st;
	dev_t dev;
	ino_t ino;

	(void)state;
	link_into_both();
	assert_int_equal(inode_lookup(a, &a->root, "linked", &entry), 0);
	in_a = inode_from_fuse(a, entry.ino);
	dev = in_a->backing_dev;
	ino = in_a->backing_ino;
	assert_ptr_equal(in_a->table, &a->inodes);
	assert_true(table_holds(a, dev, ino));
	assert_false(table_holds(b, dev, ino));
	assert_int_equal(in_a->lookup_count, 1);

	assert_int_equal(inode_lookup(b, &b->root, "linked", &entry), 0);
	in_b = inode_from_fuse(b, entry.ino);
	assert_ptr_not_equal(in_a, in_b);
	assert_true(in_b->backing_dev == dev && in_b->backing_ino == ino);
	assert_ptr_equal(in_b->table, &b->inodes);
	assert_true(table_holds(b, dev, ino));
	assert_int_equal(in_a->lookup_count, 1);
	assert_int_equal(in_b->lookup_count, 1);

	/* The last forget in A frees A's inode; B's stays, counted and usable. */
	inode_forget(a, in_a, 1);
	assert_false(table_holds(a, dev, ino));
	assert_true(table_holds(b, dev, ino));
	assert_int_equal(in_b->lookup_count, 1);
	assert_int_equal(inode_stat(b, in_b, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_ino == ino);

	/* Looked up in A again: a fresh inode of A's, counted once; B's count stays. */
	assert_int_equal(inode_lookup(a, &a->root, "linked", &entry), 0);
	in_a = inode_from_fuse(a, entry.ino);
	assert_ptr_not_equal(in_a, in_b);
	assert_int_equal(in_a->lookup_count, 1);
	assert_int_equal(in_b->lookup_count, 1);
	inode_forget(b, in_b, 1);
	assert_false(table_holds(b, dev, ino));
	assert_true(table_holds(a, dev, ino));
	assert_int_equal(in_a->lookup_count, 1);
	inode_forget(a, in_a, 1);
	assert_false(table_holds(a, dev, ino));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handle_probe_is_each_daemons),
		cmocka_unit_test(test_root_is_each_daemons),
		cmocka_unit_test(test_lookup_uses_each_daemons_backing_and_timeout),
		cmocka_unit_test(test_root_stat_uses_each_daemons_mount_point),
		cmocka_unit_test(test_change_to_one_leaves_the_other),
		cmocka_unit_test(test_forget_keeps_each_root),
		cmocka_unit_test(test_inode_tables_are_each_daemons),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
