/*
 * tdefs-posix-check: the POSIX behaviour databases and their tools rely on, checked on a
 * directory of a tdefs mount, one named check after another (TAP-like "ok"/"not ok" lines).
 *
 * Each check creates its own files under DIR and verifies the results by reading them back:
 * contents of files of sizes around the block and XTS edges, I/O at offsets past 2 and 4 GiB
 * (64-bit block numbers and tweaks), an unlinked file still usable through its open descriptor
 * (PostgreSQL drops relations that backends still have open), rename over an open file,
 * renameat2 NOREPLACE and EXCHANGE, hard links, symlinks, O_APPEND, O_DIRECT, POSIX and flock
 * locks between processes, xattrs, utimensat, chmod, directory fsync, sync_file_range and
 * posix_fadvise (PostgreSQL's writeback hints), readdir of many entries, statfs, and
 * copy_file_range within the mount (cp uses it: a daemon that copied ciphertext between files
 * with different keys would produce garbage). Exit status: 0 all passed, 1 some check failed,
 * 2 usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

static const char *base;        /* directory under test */
static char msg[1024];          /* why the current check failed */
static int failures;

__attribute__((format(printf, 1, 2)))
static bool why(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return false;
}

/* Like why(), appending strerror(errno) of the failed call. */
static bool why_errno(const char *what)
{
	return why("%s: %s", what, strerror(errno));
}

static void path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", base, name);
}

static void pattern(unsigned char *b, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

static bool write_all(int fd, const void *b, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(fd, (const char *)b + done, n - done, off + (off_t)done);
		if (w <= 0)
			return false;
		done += (size_t)w;
	}
	return true;
}

static ssize_t read_all(int fd, void *b, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)b + done, n - done, off + (off_t)done);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Writes a file with pattern(seed) contents of length n. */
static bool make_file(const char *p, size_t n, unsigned seed)
{
	unsigned char *b = malloc(n ? n : 1);
	if (!b)
		return why("out of memory");
	pattern(b, n, seed);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write_all(fd, b, n, 0);
	if (!ok)
		why_errno("create/write");
	if (fd >= 0 && close(fd) < 0 && ok)
		ok = why_errno("close");
	free(b);
	return ok;
}

/* Checks that file p has exactly pattern(seed) of length n. */
static bool expect_file(const char *p, size_t n, unsigned seed)
{
	unsigned char *want = malloc(n + 1), *got = malloc(n + 1);
	bool ok = false;
	if (!want || !got) {
		why("out of memory");
		goto out;
	}
	pattern(want, n, seed);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		why_errno(p);
		goto out;
	}
	ssize_t r = read_all(fd, got, n + 1, 0);
	close(fd);
	if (r != (ssize_t)n) {
		why("%s: read %zd bytes, expected %zu", p, r, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			why("%s: byte %zu is 0x%02x, expected 0x%02x", p, i, got[i], want[i]);
			goto out;
		}
	}
	ok = true;
out:
	free(want);
	free(got);
	return ok;
}

static bool check_sizes(void)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 31, 4080, 4095, 4096, 4097, 4111, 4112,
					4113, 8191, 8192, 8193, 65536 + 7, 1048576 + 3 };
	char p[4096];
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		snprintf(p, sizeof p, "%s/size-%zu", base, sizes[i]);
		if (!make_file(p, sizes[i], (unsigned)i + 1) || !expect_file(p, sizes[i], (unsigned)i + 1))
			return false;
		struct stat st;
		if (stat(p, &st) < 0)
			return why_errno("stat");
		if ((size_t)st.st_size != sizes[i])
			return why("%s: st_size %lld, expected %zu", p, (long long)st.st_size, sizes[i]);
		unlink(p);
	}
	return true;
}

/* Block numbers above 2^20 and offsets above 2^31 and 2^32 catch 32-bit arithmetic in the
 * block index or the XTS tweak. The file stays sparse. */
static bool check_large_offsets(void)
{
	static const long long offs[] = { (1LL << 31) - 5, (1LL << 32) - 7, (5LL << 30) + 4093 };
	char p[4096];
	unsigned char w[64], r[64];
	path(p, sizeof p, "large-offsets");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return why_errno("open");
	bool ok = true;
	for (size_t i = 0; ok && i < 3; i++) {
		pattern(w, sizeof w, 100 + (unsigned)i);
		if (!write_all(fd, w, sizeof w, offs[i]))
			ok = why("pwrite at %lld: %s", offs[i], strerror(errno));
	}
	if (ok && fsync(fd) < 0)
		ok = why_errno("fsync");
	close(fd);
	fd = ok ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	if (ok && fd < 0)
		ok = why_errno("reopen");
	for (size_t i = 0; ok && i < 3; i++) {
		pattern(w, sizeof w, 100 + (unsigned)i);
		if (read_all(fd, r, sizeof r, offs[i]) != (ssize_t)sizeof r || memcmp(r, w, sizeof w))
			ok = why("data written at offset %lld does not read back", offs[i]);
	}
	/* The gap before each write is a hole and must read as zeros. */
	if (ok && (read_all(fd, r, 16, offs[1] - 4096) != 16 || memcmp(r, (char[16]){ 0 }, 16)))
		ok = why("hole before offset %lld does not read as zeros", offs[1]);
	struct stat st;
	if (ok && fstat(fd, &st) < 0)
		ok = why_errno("fstat");
	if (ok && st.st_size != offs[2] + 64)
		ok = why("size %lld, expected %lld", (long long)st.st_size, offs[2] + 64);
	if (ok && st.st_blocks * 512LL > 64LL * 1024 * 1024)
		ok = why("a 5 GiB sparse file occupies %lld bytes: holes are not kept sparse",
			 (long long)st.st_blocks * 512);
	if (fd >= 0)
		close(fd);
	unlink(p);
	return ok;
}

static bool check_unlink_open(void)
{
	char p[4096];
	path(p, sizeof p, "unlinked");
	if (!make_file(p, 10000, 7))
		return false;
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return why_errno("open");
	bool ok = true;
	unsigned char b[10000], w[5000];
	if (unlink(p) < 0)
		ok = why_errno("unlink");
	pattern(b, sizeof b, 7);
	unsigned char g[10000];
	if (ok && (read_all(fd, g, sizeof g, 0) != (ssize_t)sizeof g || memcmp(g, b, sizeof b)))
		ok = why("an unlinked but open file no longer reads its contents");
	pattern(w, sizeof w, 8);
	if (ok && !write_all(fd, w, sizeof w, 3000))
		ok = why_errno("pwrite to an unlinked open file");
	memcpy(b + 3000, w, sizeof w);
	if (ok && (read_all(fd, g, sizeof g, 0) != (ssize_t)sizeof g || memcmp(g, b, sizeof b)))
		ok = why("an unlinked open file does not read back what was written to it");
	struct stat st;
	if (ok && fstat(fd, &st) < 0)
		ok = why_errno("fstat");
	if (ok && st.st_nlink != 0)
		ok = why("st_nlink of an unlinked file is %lu", (unsigned long)st.st_nlink);
	if (ok && access(p, F_OK) == 0)
		ok = why("the unlinked name still exists");
	close(fd);
	return ok;
}

static bool check_rename_over_open(void)
{
	char a[4096], b[4096];
	path(a, sizeof a, "rename-new");
	path(b, sizeof b, "rename-old");
	if (!make_file(b, 5000, 11) || !make_file(a, 7000, 12))
		return false;
	int fd = open(b, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return why_errno("open");
	bool ok = true;
	if (rename(a, b) < 0)
		ok = why_errno("rename over an existing file");
	unsigned char want[5000], got[5001];
	pattern(want, sizeof want, 11);
	if (ok && (read_all(fd, got, sizeof got, 0) != 5000 || memcmp(got, want, 5000)))
		ok = why("a descriptor open on the replaced file no longer reads its old contents");
	close(fd);
	if (ok && !expect_file(b, 7000, 12))
		ok = false;
	if (ok && access(a, F_OK) == 0)
		ok = why("the old name still exists after rename");
	unlink(b);
	return ok;
}

static int renameat2_(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static bool check_rename_flags(void)
{
	char a[4096], b[4096], c[4096];
	path(a, sizeof a, "rflags-a");
	path(b, sizeof b, "rflags-b");
	path(c, sizeof c, "rflags-c");
	if (!make_file(a, 4097, 21) || !make_file(b, 123, 22))
		return false;
	bool ok = true;
	errno = 0;
	if (renameat2_(a, b, 1 /* RENAME_NOREPLACE */) == 0 || errno != EEXIST)
		ok = why("RENAME_NOREPLACE onto an existing file: %s, expected EEXIST",
			 errno ? strerror(errno) : "succeeded");
	if (ok && (!expect_file(a, 4097, 21) || !expect_file(b, 123, 22)))
		ok = false;
	if (ok && renameat2_(a, b, 2 /* RENAME_EXCHANGE */) < 0)
		ok = why_errno("RENAME_EXCHANGE");
	/* Each file keeps its own key and contents under the other name. */
	if (ok && (!expect_file(a, 123, 22) || !expect_file(b, 4097, 21)))
		ok = false;
	if (ok && renameat2_(a, c, 1) < 0)
		ok = why_errno("RENAME_NOREPLACE to a free name");
	if (ok && !expect_file(c, 123, 22))
		ok = false;
	if (ok && access(a, F_OK) == 0)
		ok = why("RENAME_NOREPLACE to a free name left the old name in place");
	unlink(a);
	unlink(b);
	unlink(c);
	return ok;
}

static bool check_hard_link(void)
{
	char a[4096], b[4096];
	path(a, sizeof a, "link-a");
	path(b, sizeof b, "link-b");
	if (!make_file(a, 9000, 31))
		return false;
	bool ok = true;
	if (link(a, b) < 0)
		ok = why_errno("link");
	struct stat sa, sb;
	if (ok && (stat(a, &sa) < 0 || stat(b, &sb) < 0))
		ok = why_errno("stat");
	if (ok && (sa.st_ino != sb.st_ino || sa.st_nlink != 2))
		ok = why("hard link: inodes %lu/%lu, nlink %lu", (unsigned long)sa.st_ino,
			 (unsigned long)sb.st_ino, (unsigned long)sa.st_nlink);
	unsigned char w[100];
	pattern(w, sizeof w, 32);
	int fd = ok ? open(b, O_WRONLY | O_CLOEXEC) : -1;
	if (ok && (fd < 0 || !write_all(fd, w, sizeof w, 4090)))
		ok = why_errno("write through the second name");
	if (fd >= 0)
		close(fd);
	if (ok && unlink(a) < 0)
		ok = why_errno("unlink first name");
	unsigned char want[9000], got[9001];
	pattern(want, sizeof want, 31);
	memcpy(want + 4090, w, sizeof w);
	fd = ok ? open(b, O_RDONLY | O_CLOEXEC) : -1;
	if (ok && (fd < 0 || read_all(fd, got, sizeof got, 0) != 9000 || memcmp(got, want, 9000)))
		ok = why("contents through the remaining link are wrong");
	if (fd >= 0)
		close(fd);
	unlink(a);
	unlink(b);
	return ok;
}

static bool check_symlink(void)
{
	char a[4096], l[4096], t[4096];
	path(a, sizeof a, "sym-target");
	path(l, sizeof l, "sym-link");
	if (!make_file(a, 333, 41))
		return false;
	bool ok = true;
	if (symlink("sym-target", l) < 0)
		ok = why_errno("symlink");
	ssize_t n = ok ? readlink(l, t, sizeof t - 1) : -1;
	if (ok && (n != 10 || memcmp(t, "sym-target", 10)))
		ok = why("readlink returned %zd bytes", n);
	if (ok && !expect_file(l, 333, 41))
		ok = false;
	struct stat st;
	if (ok && (lstat(l, &st) < 0 || !S_ISLNK(st.st_mode)))
		ok = why("lstat does not report a symlink");
	unlink(l);
	unlink(a);
	return ok;
}

static bool check_append(void)
{
	char p[4096];
	path(p, sizeof p, "append");
	if (!make_file(p, 4090, 51))
		return false;
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return why_errno("open O_APPEND");
	unsigned char w[20];
	bool ok = true;
	for (int i = 0; ok && i < 3; i++) {
		memset(w, 'a' + i, sizeof w);
		if (write(fd, w, sizeof w) != (ssize_t)sizeof w)
			ok = why_errno("append write");
	}
	close(fd);
	unsigned char want[4150], got[4151];
	pattern(want, 4090, 51);
	for (int i = 0; i < 3; i++)
		memset(want + 4090 + 20 * i, 'a' + i, 20);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (ok && (fd < 0 || read_all(fd, got, sizeof got, 0) != 4150 || memcmp(got, want, 4150)))
		ok = why("O_APPEND writes did not land at the end of the file");
	if (fd >= 0)
		close(fd);
	unlink(p);
	return ok;
}

static bool check_direct(void)
{
	char p[4096];
	path(p, sizeof p, "direct");
	void *buf;
	if (posix_memalign(&buf, BLK, 4 * BLK))
		return why("out of memory");
	bool ok = true;
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		ok = why_errno("open O_DIRECT");
	pattern(buf, 4 * BLK, 61);
	if (ok && !write_all(fd, buf, 4 * BLK, 8 * BLK))
		ok = why_errno("O_DIRECT pwrite");
	if (ok && fdatasync(fd) < 0)
		ok = why_errno("fdatasync");
	if (fd >= 0)
		close(fd);
	if (ok) {
		unsigned char *want = malloc(12 * BLK);
		if (!want)
			ok = why("out of memory");
		else {
			memset(want, 0, 8 * BLK);
			memcpy(want + 8 * BLK, buf, 4 * BLK);
			unsigned char got[12 * BLK + 1];
			fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || read_all(fd, got, sizeof got, 0) != 12 * BLK ||
			    memcmp(got, want, 12 * BLK))
				ok = why("O_DIRECT data does not read back through a buffered descriptor");
			if (fd >= 0)
				close(fd);
			free(want);
		}
	}
	free(buf);
	unlink(p);
	return ok;
}

/* A lock must conflict with another process's (POSIX) or another open file's (flock) lock. */
static bool check_locks(void)
{
	char p[4096];
	path(p, sizeof p, "locks");
	if (!make_file(p, 100, 71))
		return false;
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return why_errno("open");
	bool ok = true;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 50 };
	if (fcntl(fd, F_SETLK, &fl) < 0)
		ok = why_errno("F_SETLK");
	if (ok) {
		pid_t pid = fork();
		if (pid == 0) {
			int cfd = open(p, O_RDWR | O_CLOEXEC);
			struct flock c1 = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10,
					    .l_len = 1 };
			struct flock c2 = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 60,
					    .l_len = 1 };
			int r1 = fcntl(cfd, F_SETLK, &c1), e1 = errno;
			int r2 = fcntl(cfd, F_SETLK, &c2);
			_exit(r1 == -1 && (e1 == EAGAIN || e1 == EACCES) && r2 == 0 ? 0 : 1);
		}
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			ok = why_errno("fork/wait");
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = why("POSIX record locks do not conflict between processes as expected");
	}
	int f1 = open(p, O_RDWR | O_CLOEXEC), f2 = open(p, O_RDWR | O_CLOEXEC);
	if (ok && (f1 < 0 || f2 < 0))
		ok = why_errno("open");
	if (ok && flock(f1, LOCK_EX | LOCK_NB) < 0)
		ok = why_errno("flock LOCK_EX");
	errno = 0;
	if (ok && (flock(f2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK))
		ok = why("a second flock(LOCK_EX) did not conflict: %s",
			 errno ? strerror(errno) : "it succeeded");
	if (f1 >= 0)
		close(f1);
	if (f2 >= 0)
		close(f2);
	close(fd);
	unlink(p);
	return ok;
}

static bool check_xattr(void)
{
	char p[4096];
	path(p, sizeof p, "xattr");
	if (!make_file(p, 10, 81))
		return false;
	bool ok = true;
	const char val[] = "value\0with\x01" "binary";
	char got[64], list[256];
	if (setxattr(p, "user.tdefs.test", val, sizeof val, 0) < 0)
		ok = why_errno("setxattr");
	ssize_t n = ok ? getxattr(p, "user.tdefs.test", got, sizeof got) : -1;
	if (ok && (n != (ssize_t)sizeof val || memcmp(got, val, sizeof val)))
		ok = why("getxattr returned %zd bytes, not the value set", n);
	n = ok ? listxattr(p, list, sizeof list) : -1;
	if (ok && (n < 0 || !memmem(list, (size_t)n, "user.tdefs.test", 16)))
		ok = why("listxattr does not list the attribute");
	errno = 0;
	if (ok && (setxattr(p, "user.tdefs.test", "x", 1, XATTR_CREATE) == 0 || errno != EEXIST))
		ok = why("setxattr(XATTR_CREATE) on an existing attribute did not fail with EEXIST");
	if (ok && removexattr(p, "user.tdefs.test") < 0)
		ok = why_errno("removexattr");
	errno = 0;
	if (ok && (getxattr(p, "user.tdefs.test", got, sizeof got) >= 0 || errno != ENODATA))
		ok = why("a removed attribute is still there");
	if (ok && !expect_file(p, 10, 81))
		ok = false;
	unlink(p);
	return ok;
}

static bool check_metadata(void)
{
	char p[4096];
	path(p, sizeof p, "meta");
	if (!make_file(p, 5, 91))
		return false;
	bool ok = true;
	struct timespec ts[2] = { { .tv_sec = 1000000000, .tv_nsec = 123456789 },
				  { .tv_sec = 1234567890, .tv_nsec = 987654321 } };
	if (utimensat(AT_FDCWD, p, ts, 0) < 0)
		ok = why_errno("utimensat");
	if (ok && chmod(p, 0640) < 0)
		ok = why_errno("chmod");
	struct stat st;
	if (ok && stat(p, &st) < 0)
		ok = why_errno("stat");
	if (ok && (st.st_mtim.tv_sec != ts[1].tv_sec || st.st_atim.tv_sec != ts[0].tv_sec))
		ok = why("utimensat: mtime %lld atime %lld, expected %lld %lld",
			 (long long)st.st_mtim.tv_sec, (long long)st.st_atim.tv_sec,
			 (long long)ts[1].tv_sec, (long long)ts[0].tv_sec);
	if (ok && (st.st_mode & 07777) != 0640)
		ok = why("mode %o after chmod 0640", (unsigned)(st.st_mode & 07777));
	if (ok && (st.st_uid != geteuid()))
		ok = why("a new file is owned by uid %u, not the creator %u", (unsigned)st.st_uid,
			 (unsigned)geteuid());
	/* Writing must move mtime forward from the 2009 value set above. */
	int fd = ok ? open(p, O_WRONLY | O_CLOEXEC) : -1;
	if (ok && (fd < 0 || !write_all(fd, "x", 1, 0)))
		ok = why_errno("write");
	if (fd >= 0)
		close(fd);
	if (ok && (stat(p, &st) < 0 || st.st_mtim.tv_sec <= ts[1].tv_sec))
		ok = why("mtime did not advance after a write");
	unlink(p);
	return ok;
}

/* PostgreSQL fsyncs directories after creating files, hints writeback with sync_file_range and
 * drops cache with posix_fadvise; none of these may fail. */
static bool check_sync_calls(void)
{
	char p[4096];
	path(p, sizeof p, "syncs");
	if (!make_file(p, 3 * BLK, 101))
		return false;
	bool ok = true;
	int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		ok = why_errno("fsync of a directory");
	if (dfd >= 0)
		close(dfd);
	int fd = ok ? open(p, O_RDWR | O_CLOEXEC) : -1;
	if (ok && fd < 0)
		ok = why_errno("open");
	if (ok && sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0)
		ok = why_errno("sync_file_range(SYNC_FILE_RANGE_WRITE)");
	int e = ok ? posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) : 0;
	if (e)
		ok = why("posix_fadvise(DONTNEED): %s", strerror(e));
	if (ok && fdatasync(fd) < 0)
		ok = why_errno("fdatasync");
	if (fd >= 0)
		close(fd);
	if (ok && !expect_file(p, 3 * BLK, 101))
		ok = false;
	unlink(p);
	return ok;
}

static bool check_readdir(void)
{
	char d[4096], p[4200];
	path(d, sizeof d, "many");
	enum { N = 1500 };
	if (mkdir(d, 0755) < 0)
		return why_errno("mkdir");
	bool ok = true;
	for (int i = 0; ok && i < N; i++) {
		snprintf(p, sizeof p, "%s/%d.%d", d, 16384 + i, i % 7);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			ok = why_errno("create");
		else
			close(fd);
	}
	static bool seen[N];
	memset(seen, 0, sizeof seen);
	int count = 0;
	DIR *dir = ok ? opendir(d) : NULL;
	if (ok && !dir)
		ok = why_errno("opendir");
	struct dirent *de;
	while (ok && (de = readdir(dir))) {
		int a, b;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (sscanf(de->d_name, "%d.%d", &a, &b) != 2 || a < 16384 || a >= 16384 + N ||
		    seen[a - 16384])
			ok = why("readdir returned an unexpected or repeated entry '%s'", de->d_name);
		else
			seen[a - 16384] = true;
		count++;
	}
	if (dir)
		closedir(dir);
	if (ok && count != N)
		ok = why("readdir returned %d entries, expected %d", count, N);
	errno = 0;
	if (ok && (rmdir(d) == 0 || (errno != ENOTEMPTY && errno != EEXIST)))
		ok = why("rmdir of a non-empty directory: %s", errno ? strerror(errno) : "succeeded");
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof p, "%s/%d.%d", d, 16384 + i, i % 7);
		if (unlink(p) < 0 && ok)
			ok = why_errno("unlink");
	}
	if (rmdir(d) < 0 && ok)
		ok = why_errno("rmdir");
	return ok;
}

static bool check_statfs(void)
{
	struct statfs sf;
	if (statfs(base, &sf) < 0)
		return why_errno("statfs");
	if (sf.f_bsize <= 0 || sf.f_blocks == 0 || sf.f_bavail > sf.f_blocks)
		return why("statfs: bsize %ld blocks %llu bavail %llu", (long)sf.f_bsize,
			   (unsigned long long)sf.f_blocks, (unsigned long long)sf.f_bavail);
	return true;
}

static bool check_copy_file_range(void)
{
	char a[4096], b[4096];
	path(a, sizeof a, "cfr-src");
	path(b, sizeof b, "cfr-dst");
	size_t n = 3 * BLK + 123;
	if (!make_file(a, n, 111))
		return false;
	int in = open(a, O_RDONLY | O_CLOEXEC);
	int out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = true;
	if (in < 0 || out < 0)
		ok = why_errno("open");
	size_t done = 0;
	while (ok && done < n) {
		ssize_t c = copy_file_range(in, NULL, out, NULL, n - done, 0);
		if (c < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS)) {
			/* Not offered on this kernel: nothing to check. */
			break;
		}
		if (c <= 0) {
			ok = why("copy_file_range: %s", c < 0 ? strerror(errno) : "copied nothing");
			break;
		}
		done += (size_t)c;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ok && done == n && !expect_file(b, n, 111)) {
		char detail[sizeof msg];
		memcpy(detail, msg, sizeof msg);
		ok = why("copy_file_range within the mount produced different contents: %s", detail);
	}
	unlink(a);
	unlink(b);
	return ok;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		bool (*fn)(void);
	} checks[] = {
		{ "file sizes around block and XTS edges", check_sizes },
		{ "I/O past 2 GiB and 4 GiB, sparse", check_large_offsets },
		{ "unlinked file usable through its descriptor", check_unlink_open },
		{ "rename over a file that is open", check_rename_over_open },
		{ "renameat2 NOREPLACE and EXCHANGE", check_rename_flags },
		{ "hard links", check_hard_link },
		{ "symlinks", check_symlink },
		{ "O_APPEND", check_append },
		{ "O_DIRECT write, buffered read", check_direct },
		{ "POSIX and flock locks", check_locks },
		{ "user xattrs", check_xattr },
		{ "utimensat, chmod, owner, mtime", check_metadata },
		{ "directory fsync, sync_file_range, fadvise", check_sync_calls },
		{ "readdir of 1500 entries, rmdir", check_readdir },
		{ "statfs", check_statfs },
		{ "copy_file_range within the mount", check_copy_file_range },
	};
	if (argc != 2) {
		fprintf(stderr, "usage: tdefs-posix-check DIR_ON_MOUNT\n");
		return 2;
	}
	base = argv[1];
	struct stat st;
	if (stat(base, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tdefs-posix-check: %s is not a directory\n", base);
		return 2;
	}
	size_t n = sizeof checks / sizeof checks[0];
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		msg[0] = 0;
		if (checks[i].fn()) {
			printf("ok %zu - %s\n", i + 1, checks[i].name);
		} else {
			printf("not ok %zu - %s: %s\n", i + 1, checks[i].name, msg);
			failures++;
		}
		fflush(stdout);
	}
	return failures ? 1 : 0;
}
