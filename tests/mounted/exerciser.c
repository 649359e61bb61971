/*
 * tdefs-exerciser: randomised, model-based data-path exerciser for a tdefs mount.
 *
 * It opens one file on the mounted filesystem and one reference file on an ordinary local
 * filesystem, applies the same random sequence of operations to both (pwrite, pread, ftruncate,
 * fallocate in the modes databases use, shared-mmap writes and reads, fsync, fdatasync,
 * SEEK_DATA/SEEK_HOLE, O_DIRECT reads and writes, close and reopen) and after every step compares
 * the affected range, widened to whole 4 KiB blocks, and the file size; every --full-every steps
 * and at the end it compares the whole file. The reference file is the model: the kernel's local
 * filesystem is trusted to be right. Offsets and lengths are biased towards the places where a
 * block-encrypting filesystem goes wrong: block boundaries +-1, the last 16 bytes of a block (XTS
 * ciphertext stealing needs 16 bytes), tiny writes at EOF, writes spanning blocks and sizes
 * crossing multiples of 4096. One seeded PRNG drives every choice and no choice depends on what
 * the filesystem returns, so a failure is reproduced by rerunning with the printed options.
 *
 * --threads N adds a concurrent phase: N threads write, punch and read disjoint byte stripes
 * whose boundaries fall inside blocks, so partial-block read-modify-write in the daemon must be
 * serialised per block or a neighbour's bytes get lost.
 *
 * Exit status: 0 everything matched, 1 a mismatch or an unexpected error on the mount,
 * 2 usage error or a failure of the reference filesystem.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* tdefs encrypts in 4096-byte blocks; O_DIRECT alignment uses the same unit. */
#define BLK 4096
/* Largest single read or write. Keeps one op cheap on FUSE while still spanning many blocks. */
#define MAX_IO (512 * 1024)
/* Number of recent operations printed with a failure, to help reading the reproduction. */
#define HIST 24
#define DESC_LEN 160

struct options {
	const char *dir;      /* directory on the mount */
	const char *refdir;   /* directory on a plain filesystem for the reference file */
	const char *file;     /* explicit mount-side file (overrides dir) */
	const char *ref;      /* explicit reference file (overrides refdir) */
	uint64_t seed;
	long ops;
	long long max_size;
	long reopen;          /* reopen files with probability 1/reopen per step; 0 = never */
	int direct_pct;       /* share of reads/writes done through an O_DIRECT descriptor */
	long full_every;      /* whole-file comparison period */
	int threads;          /* >1: run the concurrent stripe phase as well */
	bool no_mmap;
	bool no_falloc;
	bool keep;
	bool verbose;
};

static struct options opt = {
	.refdir = NULL, .ops = 100000, .max_size = 2 * 1024 * 1024, .reopen = 1000,
	.direct_pct = 0, .full_every = 1000, .threads = 0,
};

/* xoshiro256**: small, fast and of good quality; seeded through splitmix64. */
struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n); the modulo bias is irrelevant for test-case generation. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static void rng_fill(struct rng *r, unsigned char *b, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = rng_next(r);
		memcpy(b + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = rng_next(r);
		memcpy(b + i, &v, n - i);
	}
}

enum op {
	OP_WRITE, OP_TINY_EOF, OP_READ, OP_TRUNC, OP_FALLOC, OP_MMAP_WRITE, OP_MMAP_READ,
	OP_FSYNC, OP_FDATASYNC, OP_SEEK, OP_DIRECT_WRITE, OP_DIRECT_READ, OP_REOPEN, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"write", "tiny-eof", "read", "truncate", "fallocate", "mmap-write", "mmap-read",
	"fsync", "fdatasync", "seek", "direct-write", "direct-read", "reopen",
};

/* State of the sequential phase. Globals: there is exactly one such run per process. */
static struct {
	struct rng rng;
	char mpath[4096], rpath[4096];
	int mfd;          /* buffered descriptor on the mount: writes, reads, mmap */
	int dfd;          /* O_DIRECT descriptor on the mount, -1 unless --direct */
	int rfd;          /* reference file */
	long long size;   /* model size = reference size */
	long step;
	char desc[DESC_LEN];
	char hist[HIST][DESC_LEN];
	unsigned char *wbuf, *mbuf, *rbuf;
	long count[OP_COUNT];
	double seconds[OP_COUNT];  /* time per kind of op, checks included: where a slow mount hurts */
	long falloc_skipped, falloc_emulated, direct_fcntl;
	long holes_seen;  /* SEEK_HOLE results inside the file: shows the hole checks had work */
	long long bytes_written;
} S = { .mfd = -1, .dfd = -1, .rfd = -1 };

static long page_size;

static void print_history(void)
{
	long first = S.step >= HIST ? S.step - HIST + 1 : 0;
	fprintf(stderr, "last operations (step: op):\n");
	for (long i = first; i <= S.step; i++)
		fprintf(stderr, "  %7ld: %s\n", i, S.hist[i % HIST]);
}

static void print_repro(void)
{
	fprintf(stderr, "reproduce: tdefs-exerciser --dir DIR --seed %" PRIu64 " --ops %ld "
		"--max-size %lld --reopen %ld --direct %d --full-every %ld --threads %d%s%s "
		"(fails at step %ld)\n", opt.seed, opt.ops, opt.max_size, opt.reopen,
		opt.direct_pct, opt.full_every, opt.threads, opt.no_mmap ? " --no-mmap" : "",
		opt.no_falloc ? " --no-fallocate" : "", S.step);
	fprintf(stderr, "files kept: mount %s, reference %s\n", S.mpath, S.rpath);
}

/* A mismatch or a failing call on the mount: the filesystem under test is wrong. */
__attribute__((format(printf, 1, 2), noreturn))
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tdefs-exerciser: FAIL seed=%" PRIu64 " step=%ld op=[%s]: ", opt.seed,
		S.step, S.desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_history();
	print_repro();
	exit(1);
}

/* The reference filesystem or the environment failed: not a finding about tdefs. */
__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tdefs-exerciser: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

__attribute__((format(printf, 1, 2)))
static void describe(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(S.desc, sizeof S.desc, fmt, ap);
	va_end(ap);
	memcpy(S.hist[S.step % HIST], S.desc, DESC_LEN);
	if (opt.verbose)
		fprintf(stderr, "%7ld: %s\n", S.step, S.desc);
}

/* Reads until len bytes or EOF; short counts from pread are legal and must be retried. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* O_DIRECT variant: a read that ends unaligned has reached EOF; retrying at an unaligned
 * offset would fail with EINVAL rather than return 0. */
static ssize_t pread_direct(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
		if (n % BLK)
			break;
	}
	return (ssize_t)done;
}

static ssize_t pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void hexline(const char *label, const unsigned char *b, size_t n, long long base)
{
	fprintf(stderr, "  %-9s @%-10lld", label, base);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", b[i]);
	fputc('\n', stderr);
}

/* Compares one chunk read from the mount with the same chunk of the reference. */
static void compare_chunk(const char *how, long long off, const unsigned char *m, ssize_t mn,
			  const unsigned char *r, ssize_t rn)
{
	if (mn == rn && memcmp(m, r, (size_t)mn) == 0)
		return;
	ssize_t n = mn < rn ? mn : rn;
	ssize_t first = -1, last = -1, ndiff = 0;
	for (ssize_t i = 0; i < n; i++) {
		if (m[i] != r[i]) {
			if (first < 0)
				first = i;
			last = i;
			ndiff++;
		}
	}
	if (first >= 0) {
		long long at = off + first;
		fprintf(stderr, "tdefs-exerciser: %s of [%lld, +%zd): first difference at offset "
			"%lld (block %lld, byte %lld in block): mount 0x%02x, reference 0x%02x; %zd "
			"bytes differ between offsets %lld and %lld\n", how, off, n, at, at / BLK,
			at % BLK, m[first], r[first], ndiff, at, off + last);
		ssize_t ctx = first & ~(ssize_t)15;
		ssize_t clen = n - ctx < 32 ? n - ctx : 32;
		hexline("mount", m + ctx, (size_t)clen, off + ctx);
		hexline("reference", r + ctx, (size_t)clen, off + ctx);
		fail("%s: data differs at offset %lld (mount 0x%02x, expected 0x%02x); read lengths "
		     "mount %zd, reference %zd; model size %lld", how, at, m[first], r[first], mn, rn,
		     S.size);
	}
	fail("%s of [%lld, +%zd): mount returned %zd bytes, reference %zd (model size %lld)", how,
	     off, mn > rn ? mn : rn, mn, rn, S.size);
}

/* Compares [off, off+len) between the mount (through the buffered descriptor, or the O_DIRECT
 * one widened to blocks) and the reference, including how many bytes each returns near EOF. */
static void check_range(long long off, long long len, bool direct)
{
	if (off < 0) {
		len += off;
		off = 0;
	}
	if (direct && S.dfd >= 0) {
		long long end = off + len;
		off &= ~(long long)(BLK - 1);
		len = ((end + BLK - 1) & ~(long long)(BLK - 1)) - off;
	}
	while (len > 0) {
		size_t n = len > MAX_IO ? MAX_IO : (size_t)len;
		ssize_t mn = direct && S.dfd >= 0 ? pread_direct(S.dfd, S.mbuf, n, off)
						  : pread_full(S.mfd, S.mbuf, n, off);
		if (mn < 0)
			fail("pread%s of [%lld, +%zu) on the mount: %s", direct ? " (O_DIRECT)" : "",
			     off, n, strerror(errno));
		ssize_t rn = pread_full(S.rfd, S.rbuf, n, off);
		if (rn < 0)
			die("pread on the reference: %s", strerror(errno));
		compare_chunk(direct ? "O_DIRECT read-back" : "read-back", off, S.mbuf, mn, S.rbuf,
			      rn);
		if ((size_t)rn < n)
			break;
		off += (long long)n;
		len -= (long long)n;
	}
}

static void check_size(void)
{
	struct stat ms, rs;
	if (fstat(S.mfd, &ms) < 0)
		fail("fstat on the mount: %s", strerror(errno));
	if (fstat(S.rfd, &rs) < 0)
		die("fstat on the reference: %s", strerror(errno));
	S.size = rs.st_size;
	if (ms.st_size != rs.st_size)
		fail("file size on the mount is %lld, expected %lld", (long long)ms.st_size,
		     (long long)rs.st_size);
}

/* Checks the byte range an operation touched, widened to whole blocks so that a
 * read-modify-write that clobbers the rest of a partial block is caught, plus the size. */
static void check_after(long long off, long long len)
{
	long long start = off & ~(long long)(BLK - 1);
	long long end = (off + len + BLK - 1) & ~(long long)(BLK - 1);
	check_size();
	bool direct = S.dfd >= 0 && opt.direct_pct > 0 && rng_below(&S.rng, 100) < 10;
	check_range(start, end - start, direct);
}

static void check_whole(const char *why)
{
	check_size();
	long long save = S.size;
	char d[DESC_LEN];
	memcpy(d, S.desc, DESC_LEN);
	snprintf(S.desc, sizeof S.desc, "%s (whole-file comparison, size %lld)", why, save);
	/* One block past EOF also checks that the mount returns nothing beyond the size. */
	check_range(0, save + BLK, false);
	memcpy(S.desc, d, DESC_LEN);
}

static int open_mount(bool truncate)
{
	int fd = open(S.mpath, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
	if (fd < 0)
		fail("open %s: %s", S.mpath, strerror(errno));
	return fd;
}

/* InnoDB opens normally and then sets O_DIRECT with fcntl; PostgreSQL opens with O_DIRECT.
 * Both paths must work on the mount. */
static int open_direct(bool via_fcntl)
{
	int fd;
	if (via_fcntl) {
		fd = open(S.mpath, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fail("open %s: %s", S.mpath, strerror(errno));
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
			fail("fcntl(F_SETFL, O_DIRECT) on the mount: %s", strerror(errno));
		S.direct_fcntl++;
	} else {
		fd = open(S.mpath, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd < 0)
			fail("open(O_DIRECT) %s: %s", S.mpath, strerror(errno));
	}
	return fd;
}

static void open_all(bool truncate)
{
	S.mfd = open_mount(truncate);
	S.rfd = open(S.rpath, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
	if (S.rfd < 0)
		die("open %s: %s", S.rpath, strerror(errno));
	if (opt.direct_pct > 0)
		S.dfd = open_direct(rng_below(&S.rng, 4) == 0);
}

static void close_all(void)
{
	if (S.mfd >= 0 && close(S.mfd) < 0)
		fail("close on the mount: %s", strerror(errno));
	if (S.dfd >= 0 && close(S.dfd) < 0)
		fail("close of the O_DIRECT descriptor: %s", strerror(errno));
	if (S.rfd >= 0 && close(S.rfd) < 0)
		die("close on the reference: %s", strerror(errno));
	S.mfd = S.dfd = S.rfd = -1;
}

/* Offsets are biased to where block encryption has edge cases. */
static long long pick_off(long long limit)
{
	struct rng *r = &S.rng;
	long long span = S.size + 2 * BLK;
	if (span > limit)
		span = limit;
	if (span < 1)
		span = 1;
	long long o, k = (long long)rng_below(r, (uint64_t)(span / BLK + 2));
	uint64_t c = rng_below(r, 100);
	if (c < 28) {
		o = (long long)rng_below(r, (uint64_t)span);
	} else if (c < 52) {
		static const int deltas[] = { -1, 0, 1, 0, -1, 1, -16, 16, -15, 15, -17, 17, 2048 };
		o = k * BLK + deltas[rng_below(r, sizeof deltas / sizeof deltas[0])];
	} else if (c < 64) {
		o = k * BLK - 1 - (long long)rng_below(r, 16);  /* inside a block's last 16 bytes */
	} else if (c < 82) {
		o = S.size + (long long)rng_below(r, 41) - 20;  /* around EOF */
	} else if (c < 88) {
		o = (long long)rng_below(r, 64);
	} else {
		o = (long long)rng_below(r, (uint64_t)limit);
	}
	if (o < 0)
		o = 0;
	if (o >= limit)
		o = limit - 1;
	return o;
}

static long long pick_len(void)
{
	struct rng *r = &S.rng;
	static const int xts_edges[] = { 15, 16, 17, 31, 32, 33, 4079, 4080, 4081, 4095, 4097 };
	uint64_t c = rng_below(r, 100);
	if (c < 22)
		return 1 + (long long)rng_below(r, 16);
	if (c < 32)
		return xts_edges[rng_below(r, sizeof xts_edges / sizeof xts_edges[0])];
	if (c < 52)
		return 1 + (long long)rng_below(r, BLK);
	if (c < 68) {
		long long l = BLK * (1 + (long long)rng_below(r, 3)) + (long long)rng_below(r, 33) - 16;
		return l;
	}
	if (c < 92)
		return 1 + (long long)rng_below(r, 64 * 1024);
	return 1 + (long long)rng_below(r, MAX_IO);
}

static void clamp(long long *off, long long *len)
{
	if (*off >= opt.max_size)
		*off = opt.max_size - 1;
	if (*len < 1)
		*len = 1;
	if (*off + *len > opt.max_size)
		*len = opt.max_size - *off;
}

/* Zeros matter: an all-zero plaintext block must not be confused with a hole on the backing
 * side, and a constant byte makes some block-mixing bugs visible. */
static void fill_data(unsigned char *b, size_t n)
{
	uint64_t c = rng_below(&S.rng, 100);
	if (c < 10)
		memset(b, 0, n);
	else if (c < 15)
		memset(b, (int)(1 + rng_below(&S.rng, 255)), n);
	else
		rng_fill(&S.rng, b, n);
}

static void do_write(long long off, long long len)
{
	fill_data(S.wbuf, (size_t)len);
	if (pwrite_full(S.mfd, S.wbuf, (size_t)len, off) < 0)
		fail("pwrite of %lld bytes at %lld on the mount: %s", len, off, strerror(errno));
	if (pwrite_full(S.rfd, S.wbuf, (size_t)len, off) < 0)
		die("pwrite on the reference: %s", strerror(errno));
	S.bytes_written += len;
	check_after(off, len);
}

static void op_write(void)
{
	long long off = pick_off(opt.max_size), len = pick_len();
	clamp(&off, &len);
	describe("pwrite off=%lld len=%lld (size %lld)", off, len, S.size);
	do_write(off, len);
}

/* Tiny writes at or just before EOF produce final blocks shorter than one XTS data unit. */
static void op_tiny_eof(void)
{
	long long off = S.size - (long long)rng_below(&S.rng, 17);
	if (rng_below(&S.rng, 3) == 0)
		off = S.size + (long long)rng_below(&S.rng, 20);
	if (off < 0)
		off = 0;
	long long len = 1 + (long long)rng_below(&S.rng, 16);
	clamp(&off, &len);
	describe("tiny pwrite off=%lld len=%lld (size %lld)", off, len, S.size);
	do_write(off, len);
}

static void op_read(void)
{
	long long off = pick_off(opt.max_size + BLK), len = pick_len();
	describe("pread off=%lld len=%lld (size %lld)", off, len, S.size);
	check_range(off, len, false);
}

static long long pick_size(void)
{
	struct rng *r = &S.rng;
	uint64_t c = rng_below(r, 100);
	long long s;
	if (c < 3)
		s = 0;
	else if (c < 30)
		s = S.size + (long long)rng_below(r, 33) - 16;
	else if (c < 60)
		s = (long long)rng_below(r, (uint64_t)(opt.max_size / BLK + 1)) * BLK +
		    (long long)rng_below(r, 3) - 1;
	else if (c < 75)
		s = S.size - (long long)rng_below(r, (uint64_t)(S.size / 2 + 1));
	else
		s = (long long)rng_below(r, (uint64_t)opt.max_size + 1);
	if (s < 0)
		s = 0;
	if (s > opt.max_size)
		s = opt.max_size;
	return s;
}

static void op_trunc(void)
{
	long long old = S.size, ns = pick_size();
	describe("ftruncate %lld -> %lld", old, ns);
	if (ftruncate(S.mfd, ns) < 0)
		fail("ftruncate to %lld on the mount: %s", ns, strerror(errno));
	if (ftruncate(S.rfd, ns) < 0)
		die("ftruncate on the reference: %s", strerror(errno));
	/* Truncating down then up must expose zeros, not the old tail: check around both ends.
	 * A long span in between is sampled (one random block); the periodic whole-file
	 * comparison covers the rest without making every truncate cost megabytes of reads. */
	long long lo = (old < ns ? old : ns) - BLK, hi = (old > ns ? old : ns) + BLK;
	if (hi - lo <= 64 * 1024) {
		check_after(lo, hi - lo);
		return;
	}
	check_after(lo, 32 * 1024);
	check_range(hi - 32 * 1024, 32 * 1024, false);
	check_range(lo + (long long)rng_below(&S.rng, (uint64_t)(hi - lo)), 1, false);
}

/* What fallocate does to the visible contents, for a reference filesystem that lacks a mode. */
static void emulate_falloc(int mode, long long off, long long len)
{
	long long end = off + len, size = S.size;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size) {
		if (ftruncate(S.rfd, end) < 0)
			die("ftruncate on the reference: %s", strerror(errno));
		size = end;
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		if (end > size)
			end = size;
		memset(S.wbuf, 0, MAX_IO);
		for (long long o = off; o < end; o += MAX_IO) {
			long long n = end - o > MAX_IO ? MAX_IO : end - o;
			if (pwrite_full(S.rfd, S.wbuf, (size_t)n, o) < 0)
				die("pwrite on the reference: %s", strerror(errno));
		}
	}
	S.falloc_emulated++;
}

static const char *falloc_mode_name(int mode)
{
	switch (mode) {
	case 0: return "0";
	case FALLOC_FL_KEEP_SIZE: return "KEEP_SIZE";
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: return "PUNCH_HOLE|KEEP_SIZE";
	case FALLOC_FL_ZERO_RANGE: return "ZERO_RANGE";
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE: return "ZERO_RANGE|KEEP_SIZE";
	default: return "?";
	}
}

static void op_falloc(void)
{
	static const int modes[] = {
		0, 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE,
		FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	};
	int mode = modes[rng_below(&S.rng, sizeof modes / sizeof modes[0])];
	long long off = pick_off(opt.max_size), len = pick_len();
	clamp(&off, &len);
	describe("fallocate mode=%s off=%lld len=%lld (size %lld)", falloc_mode_name(mode), off,
		 len, S.size);
	int mr = fallocate(S.mfd, mode, off, len);
	int merr = errno;
	int rr = fallocate(S.rfd, mode, off, len);
	int rerr = errno;
	if (mr < 0 && rr < 0 && merr == EOPNOTSUPP && rerr == EOPNOTSUPP) {
		S.falloc_skipped++;  /* neither supports it: nothing changed on either side */
		check_after(off, len);
		return;
	}
	if (mr < 0)
		fail("fallocate(mode=%s, off=%lld, len=%lld) on the mount: %s (the reference %s)",
		     falloc_mode_name(mode), off, len, strerror(merr),
		     rr < 0 ? strerror(rerr) : "succeeded");
	if (rr < 0) {
		if (rerr != EOPNOTSUPP)
			die("fallocate on the reference: %s", strerror(rerr));
		emulate_falloc(mode, off, len);
	}
	check_after(off, len);
}

/* Shared mappings are how SQLite's WAL index and some engines write; msync must push the
 * pages through the daemon, and a later pread must see them. */
static void op_mmap(bool write)
{
	if (S.size == 0) {
		describe("mmap-%s skipped: empty file", write ? "write" : "read");
		return;
	}
	long long off = pick_off(S.size), len = pick_len();
	if (off >= S.size)
		off = S.size - 1;
	if (len > 64 * 1024)
		len = 1 + (long long)rng_below(&S.rng, 64 * 1024);
	if (off + len > S.size)
		len = S.size - off;
	long long moff = off & ~(long long)(page_size - 1);
	size_t mlen = (size_t)(off + len - moff);
	describe("mmap-%s off=%lld len=%lld (size %lld)", write ? "write" : "read", off, len,
		 S.size);
	void *p = mmap(NULL, mlen, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, S.mfd,
		       moff);
	if (p == MAP_FAILED)
		fail("mmap(MAP_SHARED, off=%lld, len=%zu) on the mount: %s", moff, mlen,
		     strerror(errno));
	unsigned char *at = (unsigned char *)p + (off - moff);
	if (write) {
		fill_data(S.wbuf, (size_t)len);
		memcpy(at, S.wbuf, (size_t)len);
		if (msync(p, mlen, MS_SYNC) < 0)
			fail("msync(MS_SYNC) on the mount: %s", strerror(errno));
		if (pwrite_full(S.rfd, S.wbuf, (size_t)len, off) < 0)
			die("pwrite on the reference: %s", strerror(errno));
	} else {
		ssize_t rn = pread_full(S.rfd, S.rbuf, (size_t)len, off);
		if (rn != len)
			die("pread on the reference returned %zd of %lld", rn, len);
		compare_chunk("mmap read", off, at, (ssize_t)len, S.rbuf, rn);
	}
	if (munmap(p, mlen) < 0)
		die("munmap: %s", strerror(errno));
	check_after(off, len);
}

static void op_sync(bool data_only)
{
	int fd = S.dfd >= 0 && rng_below(&S.rng, 2) ? S.dfd : S.mfd;
	describe("%s (size %lld)", data_only ? "fdatasync" : "fsync", S.size);
	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		fail("%s on the mount: %s", data_only ? "fdatasync" : "fsync", strerror(errno));
	check_size();
}

/* Checks that [from, to) reads as zeros in the model: a reported hole must hold no data. */
static void expect_zero(long long from, long long to, const char *why)
{
	if (to - from > 256 * 1024)
		to = from + 256 * 1024;  /* bound the cost; the start of a hole is where bugs are */
	while (from < to) {
		size_t n = to - from > MAX_IO ? MAX_IO : (size_t)(to - from);
		ssize_t rn = pread_full(S.rfd, S.rbuf, n, from);
		if (rn < 0)
			die("pread on the reference: %s", strerror(errno));
		for (ssize_t i = 0; i < rn; i++)
			if (S.rbuf[i])
				fail("%s, but offset %lld holds data (0x%02x in the model)", why,
				     from + i, S.rbuf[i]);
		if ((size_t)rn < n)
			break;
		from += (long long)n;
	}
}

/*
 * SEEK_DATA/SEEK_HOLE may legitimately report data where there are zeros (a filesystem may
 * not track holes at all), so only what every correct implementation satisfies is checked:
 * results lie in [off, size], ENXIO at or past EOF, and whatever is reported as a hole reads
 * as zeros in the model.
 */
static void op_seek(void)
{
	long long size = S.size;
	long long off = (long long)rng_below(&S.rng, (uint64_t)size + BLK + 1);
	if (rng_below(&S.rng, 4) == 0)
		off = (long long)rng_below(&S.rng, (uint64_t)size / BLK + 2) * BLK;
	describe("lseek SEEK_DATA/SEEK_HOLE from %lld (size %lld)", off, size);
	errno = 0;
	off_t d = lseek(S.mfd, off, SEEK_DATA);
	int derr = errno;
	errno = 0;
	off_t h = lseek(S.mfd, off, SEEK_HOLE);
	int herr = errno;
	if (off >= size) {
		if (d != -1 || derr != ENXIO)
			fail("SEEK_DATA from %lld at or past EOF %lld returned %lld (%s), expected "
			     "ENXIO", off, size, (long long)d, d < 0 ? strerror(derr) : "no error");
		if (h != -1 || herr != ENXIO)
			fail("SEEK_HOLE from %lld at or past EOF %lld returned %lld (%s), expected "
			     "ENXIO", off, size, (long long)h, h < 0 ? strerror(herr) : "no error");
		return;
	}
	if (d < 0) {
		if (derr != ENXIO)
			fail("SEEK_DATA from %lld (size %lld): %s", off, size, strerror(derr));
		expect_zero(off, size, "SEEK_DATA reported no data after the offset");
	} else {
		if (d < off || d > size)
			fail("SEEK_DATA from %lld returned %lld, outside [%lld, %lld]", off,
			     (long long)d, off, size);
		expect_zero(off, d, "SEEK_DATA skipped a range as a hole");
	}
	if (h < 0)
		fail("SEEK_HOLE from %lld (size %lld): %s", off, size, strerror(herr));
	if (h < off || h > size)
		fail("SEEK_HOLE from %lld returned %lld, outside [%lld, %lld]", off, (long long)h,
		     off, size);
	if (h < size) {
		S.holes_seen++;
		errno = 0;
		off_t nd = lseek(S.mfd, h, SEEK_DATA);
		if (nd < 0 && errno != ENXIO)
			fail("SEEK_DATA from hole at %lld: %s", (long long)h, strerror(errno));
		long long hole_end = nd < 0 ? size : (long long)nd;
		if (hole_end <= h && nd >= 0) {
			/* Data right at the reported hole start: contradictory only if a block of
			 * zeros would be needed; at least the hole byte itself must be zero. */
			hole_end = h + 1;
		}
		expect_zero(h, hole_end, "SEEK_HOLE reported a hole");
	}
}

static void op_direct(bool write)
{
	long long blocks = opt.max_size / BLK;
	long long n = 1 + (long long)rng_below(&S.rng, 16);
	long long k;
	if (rng_below(&S.rng, 2))
		k = (long long)rng_below(&S.rng, (uint64_t)(S.size / BLK + 2));
	else
		k = (long long)rng_below(&S.rng, (uint64_t)blocks);
	if (k + n > blocks)
		n = blocks - k;
	if (n < 1) {
		k = blocks - 1;
		n = 1;
	}
	long long off = k * BLK, len = n * BLK;
	describe("O_DIRECT %s off=%lld len=%lld (size %lld)", write ? "pwrite" : "pread", off,
		 len, S.size);
	if (write) {
		fill_data(S.wbuf, (size_t)len);
		if (pwrite_full(S.dfd, S.wbuf, (size_t)len, off) < 0)
			fail("O_DIRECT pwrite of %lld bytes at %lld: %s", len, off, strerror(errno));
		if (pwrite_full(S.rfd, S.wbuf, (size_t)len, off) < 0)
			die("pwrite on the reference: %s", strerror(errno));
		S.bytes_written += len;
		/* Read back through the buffered descriptor: the direct write must have
		 * invalidated any cached pages of the range. */
		check_after(off, len);
	} else {
		ssize_t mn = pread_direct(S.dfd, S.mbuf, (size_t)len, off);
		if (mn < 0)
			fail("O_DIRECT pread of %lld bytes at %lld: %s", len, off, strerror(errno));
		ssize_t rn = pread_full(S.rfd, S.rbuf, (size_t)len, off);
		if (rn < 0)
			die("pread on the reference: %s", strerror(errno));
		compare_chunk("O_DIRECT read", off, S.mbuf, mn, S.rbuf, rn);
	}
}

static void op_reopen(void)
{
	bool trunc = rng_below(&S.rng, 20) == 0;
	describe("close and reopen%s (size %lld)", trunc ? " with O_TRUNC" : "", S.size);
	close_all();
	open_all(trunc);
	check_after(0, 2 * BLK);
}

static enum op pick_op(void)
{
	/* Weights out of 100 (direct I/O and reopen are decided separately). */
	static const struct { enum op op; int w; } table[] = {
		{ OP_WRITE, 30 }, { OP_TINY_EOF, 8 }, { OP_READ, 12 }, { OP_TRUNC, 6 },
		{ OP_FALLOC, 14 }, { OP_MMAP_WRITE, 5 }, { OP_MMAP_READ, 4 }, { OP_FSYNC, 1 },
		{ OP_FDATASYNC, 1 }, { OP_SEEK, 19 },
	};
	for (;;) {
		uint64_t x = rng_below(&S.rng, 100);
		enum op o = OP_WRITE;
		for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
			if (x < (uint64_t)table[i].w) {
				o = table[i].op;
				break;
			}
			x -= (uint64_t)table[i].w;
		}
		if ((o == OP_MMAP_WRITE || o == OP_MMAP_READ) && opt.no_mmap)
			continue;
		if (o == OP_FALLOC && opt.no_falloc)
			continue;
		if (S.dfd >= 0 && (o == OP_WRITE || o == OP_READ) &&
		    rng_below(&S.rng, 100) < (uint64_t)opt.direct_pct)
			o = o == OP_WRITE ? OP_DIRECT_WRITE : OP_DIRECT_READ;
		return o;
	}
}

static void *xalloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, BLK, n))
		die("out of memory");
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_sequential(void)
{
	open_all(true);
	S.size = 0;
	for (S.step = 0; S.step < opt.ops; S.step++) {
		if (opt.reopen > 0 && S.step > 0 && rng_below(&S.rng, (uint64_t)opt.reopen) == 0) {
			double t = now();
			op_reopen();
			S.count[OP_REOPEN]++;
			S.seconds[OP_REOPEN] += now() - t;
			continue;
		}
		enum op o = pick_op();
		double t = now();
		switch (o) {
		case OP_WRITE: op_write(); break;
		case OP_TINY_EOF: op_tiny_eof(); break;
		case OP_READ: op_read(); break;
		case OP_TRUNC: op_trunc(); break;
		case OP_FALLOC: op_falloc(); break;
		case OP_MMAP_WRITE: op_mmap(true); break;
		case OP_MMAP_READ: op_mmap(false); break;
		case OP_FSYNC: op_sync(false); break;
		case OP_FDATASYNC: op_sync(true); break;
		case OP_SEEK: op_seek(); break;
		case OP_DIRECT_WRITE: op_direct(true); break;
		case OP_DIRECT_READ: op_direct(false); break;
		case OP_REOPEN: case OP_COUNT: break;
		}
		S.count[o]++;
		S.seconds[o] += now() - t;
		if (opt.full_every > 0 && (S.step + 1) % opt.full_every == 0)
			check_whole("periodic");
	}
	S.step = opt.ops;
	describe("final fsync, close, reopen and whole-file comparison");
	if (fsync(S.mfd) < 0)
		fail("final fsync on the mount: %s", strerror(errno));
	close_all();
	open_all(false);
	check_whole("final");
	close_all();
}

/* ---- concurrent phase ---------------------------------------------------------------- */

/* Stripe width that does not divide 4096, so most blocks are shared by two threads. */
#define STRIPE 1000

struct worker {
	pthread_t tid;
	int index;
	long ops;
	struct rng rng;
	unsigned char *buf, *rbuf;
	char err[512];
};

static unsigned char *model;  /* expected contents; each thread writes only its own stripes */
static long long cmax;        /* file size during the concurrent phase */
static char cpath[4096 + 16];      /* its own file, so --keep leaves the sequential pair intact */

static bool worker_io(struct worker *w)
{
	int fd = open(cpath, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(w->err, sizeof w->err, "open: %s", strerror(errno));
		return false;
	}
	long long nstripes = cmax / STRIPE;
	for (long i = 0; i < w->ops; i++) {
		/* Stripe s belongs to thread s % threads. */
		long long s = (long long)rng_below(&w->rng, (uint64_t)(nstripes / opt.threads)) *
			      opt.threads + w->index;
		if (s >= nstripes)
			continue;
		long long a = (long long)rng_below(&w->rng, STRIPE);
		long long b = (long long)rng_below(&w->rng, STRIPE);
		if (a > b) {
			long long t = a;
			a = b;
			b = t;
		}
		long long off = s * STRIPE + a, len = b - a + 1;
		uint64_t kind = rng_below(&w->rng, 100);
		const char *what;
		if (kind < 80) {
			what = "pwrite";
			rng_fill(&w->rng, w->buf, (size_t)len);
			if (pwrite_full(fd, w->buf, (size_t)len, off) < 0)
				goto io_error;
			memcpy(model + off, w->buf, (size_t)len);
		} else if (kind < 90) {
			what = "fallocate(PUNCH_HOLE|KEEP_SIZE)";
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
				goto io_error;
			memset(model + off, 0, (size_t)len);
		} else if (kind < 97) {
			what = "fallocate(ZERO_RANGE|KEEP_SIZE)";
			if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
				goto io_error;
			memset(model + off, 0, (size_t)len);
		} else {
			what = "fdatasync";
			if (fdatasync(fd) < 0)
				goto io_error;
		}
		/* Read back this thread's whole stripe: another thread's concurrent
		 * read-modify-write of the shared block must not have undone our bytes. */
		off = s * STRIPE;
		len = STRIPE;
		ssize_t n = pread_full(fd, w->rbuf, (size_t)len, off);
		if (n != len) {
			snprintf(w->err, sizeof w->err, "op %ld: pread of stripe %lld returned %zd: %s",
				 i, s, n, n < 0 ? strerror(errno) : "short read");
			close(fd);
			return false;
		}
		if (memcmp(w->rbuf, model + off, (size_t)len)) {
			long long j = 0;
			while (w->rbuf[j] == model[off + j])
				j++;
			snprintf(w->err, sizeof w->err, "op %ld (%s): stripe %lld [%lld, +%d) differs "
				 "at offset %lld (block %lld): mount 0x%02x, expected 0x%02x", i, what,
				 s, off, STRIPE, off + j, (off + j) / BLK, w->rbuf[j], model[off + j]);
			close(fd);
			return false;
		}
		continue;
io_error:
		snprintf(w->err, sizeof w->err, "op %ld: %s off=%lld len=%lld: %s", i, what, off, len,
			 strerror(errno));
		close(fd);
		return false;
	}
	if (close(fd) < 0) {
		snprintf(w->err, sizeof w->err, "close: %s", strerror(errno));
		return false;
	}
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (!worker_io(w))
		return w;
	return NULL;
}

static void run_concurrent(void)
{
	long per = opt.ops / 10 / opt.threads;  /* a tenth of --ops, spread over the threads */
	if (per < 100)
		per = 100;
	cmax = opt.max_size < 1024 * 1024 ? opt.max_size : 1024 * 1024;
	S.step = 0;
	snprintf(S.desc, sizeof S.desc, "concurrent phase: %d threads x %ld ops, file %lld bytes",
		 opt.threads, per, cmax);
	memcpy(S.hist[0], S.desc, DESC_LEN);
	model = calloc(1, (size_t)cmax);
	if (!model)
		die("out of memory");
	snprintf(cpath, sizeof cpath, "%s.threads", S.mpath);
	int fd = open(cpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail("open %s: %s", cpath, strerror(errno));
	if (ftruncate(fd, cmax) < 0)
		fail("ftruncate to %lld: %s", cmax, strerror(errno));
	struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
	if (!ws)
		die("out of memory");
	for (int i = 0; i < opt.threads; i++) {
		ws[i].index = i;
		ws[i].ops = per;
		rng_seed(&ws[i].rng, opt.seed * 1000003u + (uint64_t)i + 1);
		ws[i].buf = xalloc(STRIPE + BLK);
		ws[i].rbuf = xalloc(STRIPE + BLK);
		int e = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
		if (e)
			die("pthread_create: %s", strerror(e));
	}
	bool ok = true;
	for (int i = 0; i < opt.threads; i++) {
		void *res;
		pthread_join(ws[i].tid, &res);
		if (res) {
			fprintf(stderr, "tdefs-exerciser: thread %d: %s\n", i, ws[i].err);
			ok = false;
		}
	}
	if (!ok)
		fail("concurrent phase found a mismatch or an error (see above)");
	/* Whole-file comparison after everyone finished, from a fresh descriptor. */
	close(fd);
	fd = open(cpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("reopen %s: %s", cpath, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size != cmax)
		fail("size after the concurrent phase is %lld, expected %lld",
		     (long long)st.st_size, cmax);
	for (long long off = 0; off < cmax; off += MAX_IO) {
		size_t n = cmax - off > MAX_IO ? MAX_IO : (size_t)(cmax - off);
		ssize_t mn = pread_full(fd, S.mbuf, n, off);
		if (mn < 0)
			fail("pread at %lld: %s", off, strerror(errno));
		compare_chunk("concurrent-phase whole-file read", off, S.mbuf, mn, model + off,
			      (ssize_t)n);
	}
	close(fd);
	if (unlink(cpath) < 0)
		fail("unlink %s: %s", cpath, strerror(errno));
	for (int i = 0; i < opt.threads; i++) {
		free(ws[i].buf);
		free(ws[i].rbuf);
	}
	free(ws);
	free(model);
	printf("tdefs-exerciser: concurrent phase ok: %d threads x %ld ops on %lld bytes, stripes "
	       "of %d bytes\n", opt.threads, per, cmax, STRIPE);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tdefs-exerciser --dir DIR_ON_MOUNT [options]\n"
		"  --dir DIR          directory on the filesystem under test\n"
		"  --file PATH        file under test (instead of DIR/tdefs-exerciser.SEED.dat)\n"
		"  --ref-dir DIR      plain directory for the reference file (default $TMPDIR or "
		"/var/tmp)\n"
		"  --ref PATH         reference file (instead of REFDIR/tdefs-exerciser.PID.ref)\n"
		"  --seed N           PRNG seed (default: from the clock, printed)\n"
		"  --ops N            operations (default 100000)\n"
		"  --max-size BYTES   largest file size (default 2097152; K/M suffixes allowed)\n"
		"  --reopen N         close and reopen both files about every N ops (default 1000, "
		"0 = never)\n"
		"  --direct PCT       do PCT%% of reads and writes through an O_DIRECT descriptor, "
		"4 KiB aligned (default 0)\n"
		"  --full-every N     compare the whole file every N ops (default 1000)\n"
		"  --threads N        also run a concurrent phase with N threads on disjoint stripes\n"
		"  --no-mmap          no shared-mmap operations\n"
		"  --no-fallocate     no fallocate operations\n"
		"  --keep             keep both files after a successful run\n"
		"  --verbose          print every operation\n");
}

static long long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || end == s)
		die("bad number for %s: %s", what, s);
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	if (*end)
		die("bad number for %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	enum { O_SEED = 256, O_OPS, O_MAXSIZE, O_REOPEN, O_DIRECTPCT, O_FULL, O_THREADS, O_NOMMAP,
	       O_NOFALLOC, O_KEEP, O_VERBOSE, O_DIR, O_REFDIR, O_FILE, O_REF, O_HELP };
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "ref-dir", required_argument, NULL, O_REFDIR },
		{ "file", required_argument, NULL, O_FILE },
		{ "ref", required_argument, NULL, O_REF },
		{ "seed", required_argument, NULL, O_SEED },
		{ "ops", required_argument, NULL, O_OPS },
		{ "max-size", required_argument, NULL, O_MAXSIZE },
		{ "reopen", required_argument, NULL, O_REOPEN },
		{ "direct", required_argument, NULL, O_DIRECTPCT },
		{ "full-every", required_argument, NULL, O_FULL },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "no-mmap", no_argument, NULL, O_NOMMAP },
		{ "no-fallocate", no_argument, NULL, O_NOFALLOC },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_DIR: opt.dir = optarg; break;
		case O_REFDIR: opt.refdir = optarg; break;
		case O_FILE: opt.file = optarg; break;
		case O_REF: opt.ref = optarg; break;
		case O_SEED: opt.seed = (uint64_t)parse_num(optarg, "--seed"); seeded = true; break;
		case O_OPS: opt.ops = (long)parse_num(optarg, "--ops"); break;
		case O_MAXSIZE: opt.max_size = parse_num(optarg, "--max-size"); break;
		case O_REOPEN: opt.reopen = (long)parse_num(optarg, "--reopen"); break;
		case O_DIRECTPCT: opt.direct_pct = (int)parse_num(optarg, "--direct"); break;
		case O_FULL: opt.full_every = (long)parse_num(optarg, "--full-every"); break;
		case O_THREADS: opt.threads = (int)parse_num(optarg, "--threads"); break;
		case O_NOMMAP: opt.no_mmap = true; break;
		case O_NOFALLOC: opt.no_falloc = true; break;
		case O_KEEP: opt.keep = true; break;
		case O_VERBOSE: opt.verbose = true; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (!opt.dir && !opt.file)) {
		usage(stderr);
		return 2;
	}
	if (opt.ops < 0 || opt.max_size < 4 * BLK || opt.max_size > (1LL << 32) ||
	    opt.direct_pct < 0 || opt.direct_pct > 100 || opt.reopen < 0 || opt.threads < 0 ||
	    opt.threads > 64)
		die("option out of range (max-size must be 16K..4G, direct 0..100, threads 0..64)");
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
			     ((uint64_t)getpid() << 32);
		opt.seed = splitmix64(&x) % 1000000000000ULL;  /* short enough to retype */
	}
	page_size = sysconf(_SC_PAGESIZE);
	if (!opt.refdir)
		opt.refdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	if (opt.file)
		snprintf(S.mpath, sizeof S.mpath, "%s", opt.file);
	else
		snprintf(S.mpath, sizeof S.mpath, "%s/tdefs-exerciser.%" PRIu64 ".dat", opt.dir,
			 opt.seed);
	if (opt.ref)
		snprintf(S.rpath, sizeof S.rpath, "%s", opt.ref);
	else
		snprintf(S.rpath, sizeof S.rpath, "%s/tdefs-exerciser.%ld.ref", opt.refdir,
			 (long)getpid());
	rng_seed(&S.rng, opt.seed);
	S.wbuf = xalloc(MAX_IO + BLK);
	S.mbuf = xalloc(MAX_IO + BLK);
	S.rbuf = xalloc(MAX_IO + BLK);
	printf("tdefs-exerciser: seed=%" PRIu64 " ops=%ld max-size=%lld reopen=%ld direct=%d%% "
	       "threads=%d file=%s reference=%s\n", opt.seed, opt.ops, opt.max_size, opt.reopen,
	       opt.direct_pct, opt.threads, S.mpath, S.rpath);
	fflush(stdout);

	double t0 = now();
	run_sequential();
	double t1 = now();
	printf("tdefs-exerciser: ok seed=%" PRIu64 " ops=%ld in %.1fs (%.0f ops/s), final size "
	       "%lld, %.1f MiB written\n", opt.seed, opt.ops, t1 - t0,
	       (double)opt.ops / (t1 - t0 > 0 ? t1 - t0 : 1), S.size,
	       (double)S.bytes_written / 1048576.0);
	printf("  ops:");
	for (int i = 0; i < OP_COUNT; i++)
		printf(" %s=%ld", op_names[i], S.count[i]);
	printf("\n  seconds:");
	for (int i = 0; i < OP_COUNT; i++)
		if (S.count[i])
			printf(" %s=%.1f", op_names[i], S.seconds[i]);
	printf("\n  fallocate: %ld emulated on the reference, %ld unsupported on both; O_DIRECT "
	       "via fcntl: %ld opens; SEEK_HOLE found %ld holes inside the file\n",
	       S.falloc_emulated, S.falloc_skipped, S.direct_fcntl, S.holes_seen);
	fflush(stdout);
	if (opt.threads > 1)
		run_concurrent();
	if (!opt.keep) {
		if (unlink(S.mpath) < 0)
			fail("unlink %s: %s", S.mpath, strerror(errno));
		unlink(S.rpath);
	}
	return 0;
}
