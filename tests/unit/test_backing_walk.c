/*
 * Unit tests of the descriptor walk (fs/backing_walk.c) on a tree in a temporary directory,
 * without FUSE: which entries are visited, that symlinks, FIFOs and ".." never lead anywhere,
 * how a start path is resolved, that the depth limit is reported, and that backing_reopen()
 * opens only the regular file it was given; that a walk that writes opens nothing but a regular
 * file read-write, even a FIFO swapped in after the listing. The races themselves are played by
 * tests/security/test_rename_race.sh against a real mount.
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
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/backing_walk.h"

struct visits {
	char names[64][256];
	size_t count;
	size_t errors;
	int last_error;
	bool keep_fd;
	int kept_fd;
};

static char tree[256], outside[300];

static void write_file(const char *relative, const char *text)
{
	char path[1024];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", tree, relative);
	file = fopen(path, "w");
	assert_non_null(file);
	fputs(text, file);
	fclose(file);
}

static void make_dir(const char *base, const char *relative)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", base, relative);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int record(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct visits *visits = context;

	if (entry->kind == BACKING_WALK_ERROR) {
		visits->errors++;
		visits->last_error = entry->error;
		return 0;
	}
	assert_true(S_ISREG(entry->st.st_mode));
	assert_true(entry->fd >= 0);
	assert_true(visits->count < 64);
	snprintf(visits->names[visits->count++], 256, "%s", entry->relative);
	if (visits->keep_fd) {
		visits->kept_fd = entry->fd;
		*fd_taken = true;
	}
	return 0;
}

static bool visited(const struct visits *visits, const char *name)
{
	for (size_t i = 0; i < visits->count; i++)
		if (strcmp(visits->names[i], name) == 0)
			return true;
	return false;
}

static int open_tree(void)
{
	int fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int setup(void **state)
{
	char path[1024];

	(void)state;
	snprintf(tree, sizeof(tree), "%s/tdefs-walk-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
									   : "/tmp");
	if (!mkdtemp(tree))
		return -1;
	snprintf(outside, sizeof(outside), "%s.outside", tree);
	if (mkdir(outside, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/secret", outside);
	FILE *file = fopen(path, "w");
	if (!file)
		return -1;
	fputs("outside the tree", file);
	fclose(file);

	make_dir(tree, "a");
	make_dir(tree, "a/b");
	write_file("top", "1");
	write_file("a/one", "22");
	write_file("a/b/two", "333");
	snprintf(path, sizeof(path), "%s/link-dir", tree);
	if (symlink(outside, path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/a/link-file", tree);
	if (symlink("../top", path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/a/fifo", tree);
	if (mkfifo(path, 0644) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char command[1200];

	(void)state;
	snprintf(command, sizeof(command), "rm -rf '%s' '%s'", tree, outside);
	return system(command) == 0 ? 0 : -1;
}

/* Every regular file in the tree, and nothing a symlink or a FIFO leads to. */
static void test_walk_visits_regular_files_only(void **state)
{
	struct visits visits = { 0 };
	int root = open_tree();

	(void)state;
	assert_int_equal(backing_walk(root, "", O_RDONLY, record, &visits), 0);
	assert_int_equal(visits.count, 3);
	assert_true(visited(&visits, "top"));
	assert_true(visited(&visits, "a/one"));
	assert_true(visited(&visits, "a/b/two"));
	assert_false(visited(&visits, "link-dir/secret"));
	assert_int_equal(visits.errors, 0);
	close(root);
}

/* A start path is resolved one component at a time: no symlink on the way, no "..". */
static void test_start_resolution(void **state)
{
	struct visits visits = { 0 };
	int root = open_tree();

	(void)state;
	assert_int_equal(backing_walk(root, "a/b", O_RDONLY, record, &visits), 0);
	assert_int_equal(visits.count, 1);
	assert_string_equal(visits.names[0], "a/b/two");

	memset(&visits, 0, sizeof(visits));
	assert_int_equal(backing_walk(root, "/a//one", O_PATH, record, &visits), 0);
	assert_int_equal(visits.count, 1);
	assert_string_equal(visits.names[0], "a/one");

	assert_int_equal(backing_walk(root, "link-dir", O_RDONLY, record, &visits), -ELOOP);
	assert_int_equal(backing_walk(root, "link-dir/secret", O_RDONLY, record, &visits),
			 -ELOOP);
	assert_int_equal(backing_walk(root, "a/../top", O_RDONLY, record, &visits), -EINVAL);
	assert_int_equal(backing_walk(root, "a/fifo", O_RDONLY, record, &visits), -EINVAL);
	assert_int_equal(backing_walk(root, "missing", O_RDONLY, record, &visits), -ENOENT);
	assert_int_equal(backing_walk(root, "top/x", O_RDONLY, record, &visits), -ENOTDIR);
	close(root);
}

static void test_open_beneath(void **state)
{
	struct stat st;
	int root = open_tree(), fd = -1;

	(void)state;
	assert_int_equal(backing_open_beneath(root, "a/b/two", &fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 3);
	close(fd);
	assert_int_equal(backing_open_beneath(root, "a/link-file", &fd, &st), -ELOOP);
	close(root);
}

/* A visitor may keep the descriptor; backing_reopen gives that same regular file. */
static void test_kept_descriptor_and_reopen(void **state)
{
	struct visits visits = { .keep_fd = true, .kept_fd = -1 };
	struct stat named, reopened;
	char text[8] = "";
	int root = open_tree(), fd;

	(void)state;
	assert_int_equal(backing_walk(root, "a/b/two", O_PATH, record, &visits), 0);
	assert_true(visits.kept_fd >= 0);
	fd = backing_reopen(visits.kept_fd, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(visits.kept_fd, &named), 0);
	assert_int_equal(fstat(fd, &reopened), 0);
	assert_int_equal(named.st_ino, reopened.st_ino);
	assert_int_equal(read(fd, text, sizeof(text) - 1), 3);
	assert_string_equal(text, "333");
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	close(visits.kept_fd);

	/* Not a regular file: never opened for data. */
	fd = open(tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(backing_reopen(fd, O_RDONLY), -EINVAL);
	close(fd);
	close(root);
}

/*
 * A walk that writes (O_RDWR) gets read-write descriptors of regular files, and never opens
 * anything else read-write: a FIFO renamed over the second file after the listing named it is
 * opened only with O_PATH (no IN_OPEN event on it) and skipped.
 */
struct swap {
	char fifo[1024];
	char dir[1024];
	char other[8];
	unsigned visits;
	bool read_write;
};

static int swap_in_fifo(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct swap *swap = context;
	char target[1100];
	const char *name = strrchr(entry->relative, '/');

	(void)fd_taken;
	assert_int_equal(entry->kind, BACKING_WALK_FILE);
	swap->read_write = (fcntl(entry->fd, F_GETFL) & O_ACCMODE) == O_RDWR;
	if (swap->visits++ == 0) {
		snprintf(swap->other, sizeof(swap->other), "%s",
			 strcmp(name ? name + 1 : entry->relative, "x") == 0 ? "y" : "x");
		snprintf(target, sizeof(target), "%s/%s", swap->dir, swap->other);
		assert_int_equal(rename(swap->fifo, target), 0);
	}
	return 0;
}

static void test_writing_walk_opens_regular_files_only(void **state)
{
	struct swap swap = { 0 };
	char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int root, watch;
	ssize_t n;

	(void)state;
	make_dir(tree, "race");
	write_file("race/x", "x");
	write_file("race/y", "y");
	snprintf(swap.dir, sizeof(swap.dir), "%s/race", tree);
	snprintf(swap.fifo, sizeof(swap.fifo), "%s/fifo", outside);
	assert_int_equal(mkfifo(swap.fifo, 0600), 0);
	watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(watch >= 0);
	assert_true(inotify_add_watch(watch, swap.dir, IN_OPEN) >= 0);
	root = open_tree();
	assert_int_equal(backing_walk(root, "race", O_RDWR, swap_in_fifo, &swap), 0);
	assert_int_equal(swap.visits, 1);
	assert_true(swap.read_write);
	while ((n = read(watch, buffer, sizeof(buffer))) > 0) {
		for (char *p = buffer; p < buffer + n;) {
			const struct inotify_event *event = (const struct inotify_event *)p;

			if (event->len)
				assert_string_not_equal(event->name, swap.other);
			p += sizeof(*event) + event->len;
		}
	}
	close(watch);
	close(root);
	/* The other tests count the tree's files: leave it as it was. */
	snprintf(buffer, sizeof(buffer), "rm -rf '%s'", swap.dir);
	assert_int_equal(system(buffer), 0);
}

/* Deeper than BACKING_WALK_MAX_DEPTH: reported as ELOOP, the rest still walked. */
static void test_depth_limit(void **state)
{
	struct visits visits = { 0 };
	char relative[BACKING_WALK_MAX_DEPTH * 2 + 16] = "deep";
	int root;

	(void)state;
	make_dir(tree, relative);
	for (int i = 0; i < BACKING_WALK_MAX_DEPTH + 2; i++) {
		strcat(relative, "/d");
		make_dir(tree, relative);
	}
	strcat(relative, "/lost");
	write_file(relative, "x");
	root = open_tree();
	assert_int_equal(backing_walk(root, "", O_RDONLY, record, &visits), 0);
	assert_int_equal(visits.errors, 1);
	assert_int_equal(visits.last_error, ELOOP);
	assert_true(visited(&visits, "a/b/two"));
	assert_int_equal(visits.count, 3);
	close(root);
}

/* The visitor's return value ends the walk. */
static int stop_at_first(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	(void)entry;
	(void)fd_taken;
	(*(int *)context)++;
	return 1;
}

static void test_visitor_stops_walk(void **state)
{
	int root = open_tree(), count = 0;

	(void)state;
	assert_int_equal(backing_walk(root, "", O_RDONLY, stop_at_first, &count), 1);
	assert_int_equal(count, 1);
	close(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_visits_regular_files_only),
		cmocka_unit_test(test_start_resolution),
		cmocka_unit_test(test_open_beneath),
		cmocka_unit_test(test_kept_descriptor_and_reopen),
		cmocka_unit_test(test_writing_walk_opens_regular_files_only),
		cmocka_unit_test(test_visitor_stops_walk),
		cmocka_unit_test(test_depth_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
