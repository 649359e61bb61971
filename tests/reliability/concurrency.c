/*
 * tdefs-rel-conc: several processes write and read one file on the mount at the same time, at
 * overlapping and non-overlapping unaligned ranges, with truncates and fallocates, checked
 * against a model (tests/reliability/test_concurrency.sh runs it).
 *
 * The processes are forked children that each open FILE on their own and meet at a process-
 * shared barrier; the model lives in shared memory. Every round has two phases, each ended by
 * a barrier after which every process reads the whole file and compares it with the model:
 *
 *  A. Owned regions. Process 0 cuts [0, T) (T a little over 1 MiB, unaligned) into regions of
 *     1 to 12000 bytes, each owned by a random process; so most 4 KiB blocks are shared by
 *     regions of different owners and every write is a partial-block read-modify-write in the
 *     daemon, racing with its neighbours'. Each process writes random bytes to random unaligned
 *     pieces of its own regions, punches holes and zeroes ranges in them (fallocate PUNCH_HOLE,
 *     ZERO_RANGE), reads its own pieces back at once (exact: nobody else writes them), and reads
 *     random ranges anywhere, checking the bytes it owns. The model of a region is written only
 *     by its owner, so the expected state at the barrier is deterministic. Meanwhile process 0
 *     owns the tail [T, TMAX) and moves the file size there: truncate down and up, writes past
 *     EOF, fallocate mode 0 past EOF, KEEP_SIZE past EOF (size unchanged), punch and zero range.
 *     Nobody else touches bytes at or past T, so the size is process 0's alone.
 *  B. Whole records at overlapping places. A slot grid of unaligned records (1000..9000 bytes,
 *     so records straddle blocks and neighbours share blocks) over [0, T); every process writes
 *     records to random slots, so the same slot is written by several processes at once. A
 *     record carries its slot, writer, sequence number and a checksum over everything, so mixed
 *     or torn content is detected. Half the slots are used under OFD byte-range locks (writers
 *     F_WRLCK, readers F_RDLCK): every read there must be whole. In the other half there are no
 *     locks: a concurrent read may legitimately see a torn record (Linux does not make reads
 *     atomic against writes), which is only counted; but after the barrier every written slot
 *     must hold one whole record of its own slot, and the model becomes what was read.
 * At the end the model is written to MODEL_OUT (a plain file) so that the test can compare the
 * file with it again after a remount.
 *
 *   tdefs-rel-conc [-p PROCS] [-r ROUNDS] [-n OPS] [-s SEED] [-d] FILE MODEL_OUT
 *     -p processes (default 4)   -r rounds (default 3)   -n operations per process per phase
 *     (default 400)   -s seed (default: from the clock, printed)   -d open with O_DIRECT
 * Exit 0 when every check held, 1 with a precise report (round, phase, process, operation,
 * offset, length, first differing byte, expected and found bytes, the process's last
 * operations) otherwise, 2 for usage or setup errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>

#define MAX_PROCS 16
#define TAIL_SPAN (256 * 1024)
#define MAX_FILE (2 * 1024 * 1024)
#define MAX_REGION 12000
#define MAX_PIECE 20000
#define MAX_SLOTS 256
#define HISTORY 16
#define REC_HEADER 32

enum phase { PHASE_OWNED, PHASE_RECORDS };

struct shared {
	pthread_barrier_t barrier;
	atomic_int failed;
	uint64_t tail_start;      /* T */
	uint64_t size;            /* the model's file size, written by process 0 only */
	uint64_t rec_base, rec_size, rec_slots;
	atomic_uint written[MAX_SLOTS];
	atomic_ulong torn_unlocked, locked_reads, unlocked_reads, verified_bytes;
	atomic_ulong ops[8];
	uint8_t owner[MAX_FILE];
	uint8_t model[MAX_FILE];
};

enum op_kind { OP_WRITE, OP_PUNCH, OP_ZERO, OP_READ_OWN, OP_READ_ANY, OP_TAIL, OP_RECORD, OP_REC_READ };
static const char *const op_names[] = { "write", "punch", "zero-range", "read-own", "read-any",
					"tail-size-op", "record-write", "record-read" };

static struct shared *sh;
static int me, procs, fd, round_no;
static enum phase phase;
static uint64_t rng_state;
static uint8_t *buf, *buf2;
static char history[HISTORY][160];
static unsigned history_next;
static bool direct;

static uint64_t next_rand(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rand_below(uint64_t n)
{
	return n ? next_rand() % n : 0;
}

/* Mostly small lengths, sometimes large ones: 1..max. */
static uint64_t rand_len(uint64_t max)
{
	uint64_t cap = rand_below(4) == 0 ? max : (max < 700 ? max : 700);
	return 1 + rand_below(cap);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = next_rand();
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(history[history_next++ % HISTORY], sizeof(history[0]), fmt, ap);
	va_end(ap);
}

static const char *phase_name(void)
{
	return phase == PHASE_OWNED ? "A (owned regions)" : "B (records)";
}

static void hexdump(const char *label, const uint8_t *p, size_t n)
{
	fprintf(stderr, "    %s:", label);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2))) static _Noreturn void failure(const char *fmt, ...)
{
	va_list ap;

	atomic_store(&sh->failed, 1);
	fprintf(stderr, "tdefs-rel-conc: FAILURE in round %d, phase %s, process %d%s: ", round_no,
		phase_name(), me, direct ? " (O_DIRECT)" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "  last operations of process %d (oldest first):\n", me);
	for (unsigned i = 0; i < HISTORY; i++) {
		const char *h = history[(history_next + i) % HISTORY];
		if (*h)
			fprintf(stderr, "    %s\n", h);
	}
	exit(1);
}

/* Compares got with the model at offset, only where mask (owner) says so when owner >= 0. */
static void compare(const char *what, uint64_t offset, const uint8_t *got, size_t n, int owner)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t o = offset + i;
		if (owner >= 0 && sh->owner[o] != owner)
			continue;
		if (got[i] != sh->model[o]) {
			size_t from = i >= 8 ? i - 8 : 0, len = n - from < 32 ? n - from : 32;
			fprintf(stderr, "tdefs-rel-conc: %s of [%" PRIu64 ", +%zu): byte %" PRIu64
				" (block %" PRIu64 " + %" PRIu64 ") is %02x, expected %02x; owner of the "
				"byte: process %d; file size (model) %" PRIu64 "\n", what, offset, n, o,
				o / 4096, o % 4096, got[i], sh->model[o], sh->owner[o], sh->size);
			fprintf(stderr, "    bytes from %" PRIu64 ":\n", offset + from);
			hexdump("expected", sh->model + offset + from, len);
			hexdump("found   ", got + from, len);
			failure("%s returned wrong data", what);
		}
	}
	atomic_fetch_add(&sh->verified_bytes, n);
}

static void do_pwrite(const uint8_t *p, size_t n, uint64_t off, const char *what)
{
	ssize_t w = pwrite(fd, p, n, (off_t)off);
	if (w != (ssize_t)n)
		failure("%s: pwrite(%zu bytes at %" PRIu64 ") returned %zd: %s", what, n, off, w,
			w < 0 ? strerror(errno) : "short write");
}

static size_t do_pread(uint8_t *p, size_t n, uint64_t off, const char *what)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
		if (r < 0)
			failure("%s: pread(%zu bytes at %" PRIu64 "): %s", what, n - done, off + done,
				strerror(errno));
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return done;
}

static void do_fallocate(int mode, uint64_t off, uint64_t len, const char *what)
{
	if (fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
		failure("%s: fallocate(mode %#x, %" PRIu64 ", %" PRIu64 "): %s", what, mode, off, len,
			strerror(errno));
}

static void barrier(void)
{
	int ret = pthread_barrier_wait(&sh->barrier);
	if (ret != 0 && ret != PTHREAD_BARRIER_SERIAL_THREAD)
		failure("barrier: %s", strerror(ret));
}

static uint64_t file_size(void)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		failure("fstat: %s", strerror(errno));
	return (uint64_t)st.st_size;
}

/* Whole-file check after a barrier: size and every byte, read in random unaligned pieces. */
static void verify_all(const char *when)
{
	uint64_t size = file_size(), off = 0;

	note("verify whole file (%s)", when);
	if (size != sh->size)
		failure("%s: file size is %" PRIu64 ", the model says %" PRIu64, when, size, sh->size);
	while (off < size + 4096) {
		size_t n = (size_t)rand_len(MAX_PIECE);
		size_t got = do_pread(buf, n, off, "verify");
		size_t expect = off >= size ? 0 : (size - off < n ? (size_t)(size - off) : n);
		if (got != expect)
			failure("%s: pread(%zu at %" PRIu64 ") returned %zu bytes; file size %" PRIu64, when,
				n, off, got, size);
		compare(when, off, buf, got, -1);
		off += n;
	}
}

/* ---------------------------------------------------------------- phase A: owned regions -- */

struct region {
	uint64_t start, len;
};
static struct region *mine;
static size_t mine_count;

static void collect_own_regions(void)
{
	uint64_t t = sh->tail_start;

	mine_count = 0;
	for (uint64_t o = 0; o < t;) {
		uint64_t e = o;
		while (e < t && sh->owner[e] == sh->owner[o])
			e++;
		if (sh->owner[o] == me) {
			mine[mine_count].start = o;
			mine[mine_count++].len = e - o;
		}
		o = e;
	}
}

static void pick_own_piece(uint64_t *off, uint64_t *len)
{
	const struct region *r = &mine[rand_below(mine_count)];
	uint64_t a = r->start + rand_below(r->len);
	uint64_t max = r->start + r->len - a;

	*len = rand_len(max < MAX_PIECE ? max : MAX_PIECE);
	*off = a;
}

static void tail_op(void)
{
	uint64_t t = sh->tail_start, tmax = t + TAIL_SPAN, size = sh->size;
	uint64_t off = t + rand_below(TAIL_SPAN - 1);
	uint64_t len = rand_len(tmax - off < MAX_PIECE ? tmax - off : MAX_PIECE);
	unsigned kind = (unsigned)rand_below(7);

	atomic_fetch_add(&sh->ops[OP_TAIL], 1);
	switch (kind) {
	case 0: /* truncate down or up */
		note("truncate %" PRIu64 " -> %" PRIu64, size, off);
		if (ftruncate(fd, (off_t)off) < 0)
			failure("ftruncate(%" PRIu64 "): %s", off, strerror(errno));
		if (off < size)
			memset(sh->model + off, 0, size - off);
		sh->size = off;
		break;
	case 1: /* write, possibly past EOF */
		fill_random(buf, len);
		note("tail write [%" PRIu64 ", +%" PRIu64 ") size %" PRIu64, off, len, size);
		do_pwrite(buf, len, off, "tail write");
		memcpy(sh->model + off, buf, len);
		if (off + len > size)
			sh->size = off + len;
		break;
	case 2: /* fallocate mode 0: allocates, extends, keeps data */
		note("fallocate 0 [%" PRIu64 ", +%" PRIu64 ") size %" PRIu64, off, len, size);
		do_fallocate(0, off, len, "fallocate 0");
		if (off + len > size)
			sh->size = off + len;
		break;
	case 3: /* KEEP_SIZE past EOF: nothing visible changes */
		note("fallocate KEEP_SIZE [%" PRIu64 ", +%" PRIu64 ") size %" PRIu64, off, len, size);
		do_fallocate(FALLOC_FL_KEEP_SIZE, off, len, "fallocate KEEP_SIZE");
		break;
	case 4: /* punch a hole: zeros inside the size, nothing past it */
		note("punch [%" PRIu64 ", +%" PRIu64 ") size %" PRIu64, off, len, size);
		do_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len, "tail punch");
		memset(sh->model + off, 0, len);
		break;
	case 5: /* zero range, extending */
		note("zero-range [%" PRIu64 ", +%" PRIu64 ") size %" PRIu64, off, len, size);
		do_fallocate(FALLOC_FL_ZERO_RANGE, off, len, "tail zero-range");
		memset(sh->model + off, 0, len);
		if (off + len > size)
			sh->size = off + len;
		break;
	default: { /* read back the tail and the size */
		size_t n = size - t < MAX_PIECE ? (size_t)(size - t) : MAX_PIECE;
		uint64_t from = t + rand_below(size - t - n + 1);
		note("tail read [%" PRIu64 ", +%zu) size %" PRIu64, from, n, size);
		if (file_size() != size)
			failure("after tail operations the size is %" PRIu64 ", expected %" PRIu64,
				file_size(), size);
		if (do_pread(buf, n, from, "tail read") != n)
			failure("tail read [%" PRIu64 ", +%zu) is short; size %" PRIu64, from, n, size);
		compare("tail read", from, buf, n, -1);
		return;
	}
	}
	if (file_size() != sh->size)
		failure("after %s the file size is %" PRIu64 ", expected %" PRIu64, history[(history_next - 1) % HISTORY],
			file_size(), sh->size);
}

static void phase_owned(int ops)
{
	uint64_t t = sh->tail_start;

	collect_own_regions();
	for (int i = 0; i < ops && !atomic_load(&sh->failed); i++) {
		uint64_t off, len;
		unsigned dice = (unsigned)rand_below(100);

		if (me == 0 && dice < 15) {
			tail_op();
			continue;
		}
		if (mine_count == 0)
			dice = 90; /* owns nothing this round: only reads */
		if (dice < 50) {
			pick_own_piece(&off, &len);
			fill_random(buf, len);
			note("write [%" PRIu64 ", +%" PRIu64 ")", off, len);
			do_pwrite(buf, len, off, "write");
			memcpy(sh->model + off, buf, len);
			atomic_fetch_add(&sh->ops[OP_WRITE], 1);
		} else if (dice < 56) {
			pick_own_piece(&off, &len);
			note("punch [%" PRIu64 ", +%" PRIu64 ")", off, len);
			do_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len, "punch");
			memset(sh->model + off, 0, len);
			atomic_fetch_add(&sh->ops[OP_PUNCH], 1);
		} else if (dice < 62) {
			pick_own_piece(&off, &len);
			note("zero-range [%" PRIu64 ", +%" PRIu64 ")", off, len);
			do_fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len, "zero-range");
			memset(sh->model + off, 0, len);
			atomic_fetch_add(&sh->ops[OP_ZERO], 1);
		} else if (dice < 85) {
			pick_own_piece(&off, &len);
			note("read-own [%" PRIu64 ", +%" PRIu64 ")", off, len);
			if (do_pread(buf, len, off, "read-own") != len)
				failure("read-own [%" PRIu64 ", +%" PRIu64 ") is short", off, len);
			compare("read-own", off, buf, len, me);
			atomic_fetch_add(&sh->ops[OP_READ_OWN], 1);
		} else {
			len = rand_len(MAX_PIECE);
			off = rand_below(t - len);
			note("read-any [%" PRIu64 ", +%" PRIu64 ")", off, len);
			if (do_pread(buf, len, off, "read-any") != len)
				failure("read-any [%" PRIu64 ", +%" PRIu64 ") is short", off, len);
			compare("read-any (bytes this process owns)", off, buf, len, me);
			atomic_fetch_add(&sh->ops[OP_READ_ANY], 1);
		}
	}
}

/* ------------------------------------------------------------------- phase B: records -- */

static uint64_t checksum(const uint8_t *rec, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		if (i >= 24 && i < REC_HEADER)
			continue; /* the checksum field itself */
		h = (h ^ rec[i]) * 0x100000001b3ull;
	}
	return h;
}

static void make_record(uint8_t *rec, uint32_t slot, uint64_t seq)
{
	uint64_t saved = rng_state, sum;
	uint32_t writer = (uint32_t)me;

	memcpy(rec, "TDEFSREC", 8);
	memcpy(rec + 8, &writer, 4);
	memcpy(rec + 12, &seq, 8);
	memcpy(rec + 20, &slot, 4);
	rng_state = ((uint64_t)writer << 40) ^ seq ^ 0x5eedull;
	fill_random(rec + REC_HEADER, sh->rec_size - REC_HEADER);
	rng_state = saved;
	sum = checksum(rec, sh->rec_size);
	memcpy(rec + 24, &sum, 8);
}

/* 1: a whole record of this slot, 0: something else. */
static int record_valid(const uint8_t *rec, uint32_t slot)
{
	uint64_t sum;
	uint32_t s;

	memcpy(&sum, rec + 24, 8);
	memcpy(&s, rec + 20, 4);
	return memcmp(rec, "TDEFSREC", 8) == 0 && s == slot && sum == checksum(rec, sh->rec_size);
}

static void lock_range(int type, uint64_t off, uint64_t len)
{
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET, .l_start = (off_t)off,
			    .l_len = (off_t)len };

	if (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		failure("F_OFD_SETLKW type %d [%" PRIu64 ", +%" PRIu64 "): %s", type, off, len,
			strerror(errno));
}

static void phase_records(int ops)
{
	uint64_t seq = (uint64_t)round_no << 32;
	size_t rs = sh->rec_size;
	uint32_t locked_slots = (uint32_t)sh->rec_slots / 2;

	for (int i = 0; i < ops && !atomic_load(&sh->failed); i++) {
		uint32_t slot = (uint32_t)rand_below(sh->rec_slots);
		uint64_t off = sh->rec_base + slot * rs;
		bool locked = slot < locked_slots;

		if (me == 0 && rand_below(100) < 10) {
			tail_op();
			continue;
		}
		if (rand_below(100) < 55) {
			make_record(buf, slot, ++seq);
			note("record-write slot %u [%" PRIu64 ", +%zu) seq %" PRIu64 "%s", slot, off, rs,
			     seq, locked ? " locked" : "");
			atomic_store(&sh->written[slot], 1);
			if (locked)
				lock_range(F_WRLCK, off, rs);
			do_pwrite(buf, rs, off, "record write");
			if (locked)
				lock_range(F_UNLCK, off, rs);
			atomic_fetch_add(&sh->ops[OP_RECORD], 1);
		} else {
			note("record-read slot %u [%" PRIu64 ", +%zu)%s", slot, off, rs, locked ? " locked" : "");
			if (locked)
				lock_range(F_RDLCK, off, rs);
			if (do_pread(buf, rs, off, "record read") != rs)
				failure("record read of slot %u is short", slot);
			if (locked)
				lock_range(F_UNLCK, off, rs);
			atomic_fetch_add(&sh->ops[OP_REC_READ], 1);
			if (record_valid(buf, slot) || memcmp(buf, sh->model + off, rs) == 0) {
				/* whole record, or the slot's content from before the phase */
			} else if (locked) {
				uint32_t w;
				uint64_t s;
				memcpy(&w, buf + 8, 4);
				memcpy(&s, buf + 12, 8);
				fprintf(stderr, "tdefs-rel-conc: locked read of slot %u at %" PRIu64 " (%zu bytes): "
					"neither a whole record nor the old content (header says writer %u seq %"
					PRIu64 ")\n", slot, off, rs, w, s);
				hexdump("first bytes", buf, 32);
				failure("a read under a read lock saw a torn or mixed record");
			} else {
				atomic_fetch_add(&sh->torn_unlocked, 1);
			}
			atomic_fetch_add(locked ? &sh->locked_reads : &sh->unlocked_reads, 1);
		}
	}
}

/* After the records phase: every slot whole; then the file becomes the model (process 0). */
static void check_records(void)
{
	size_t rs = sh->rec_size;

	note("final record check: %" PRIu64 " slots of %zu bytes from %" PRIu64, sh->rec_slots, rs,
	     sh->rec_base);
	for (uint32_t slot = 0; slot < sh->rec_slots; slot++) {
		uint64_t off = sh->rec_base + slot * rs;
		if (do_pread(buf2, rs, off, "final record read") != rs)
			failure("final read of slot %u is short", slot);
		if (atomic_load(&sh->written[slot]) ? !record_valid(buf2, slot)
						    : memcmp(buf2, sh->model + off, rs) != 0) {
			uint32_t w, s;
			uint64_t q;
			memcpy(&w, buf2 + 8, 4);
			memcpy(&q, buf2 + 12, 8);
			memcpy(&s, buf2 + 20, 4);
			hexdump("first bytes", buf2, 32);
			failure("after the barrier slot %u (%s, [%" PRIu64 ", +%zu)) does not hold one whole "
				"record: header says writer %u seq %" PRIu64 " slot %u",
				slot, slot < sh->rec_slots / 2 ? "locked" : "unlocked", off, rs, w, q, s);
		}
	}
}

/* --------------------------------------------------------------------------- driver -- */

static void plan_round(uint64_t seed)
{
	uint64_t t = 1024 * 1024 + rand_below(8192), o = 0;

	(void)seed;
	sh->tail_start = t;
	while (o < t) {
		uint64_t len = 1 + rand_below(MAX_REGION);
		uint8_t owner = (uint8_t)rand_below((uint64_t)procs);
		if (len > t - o)
			len = t - o;
		memset(sh->owner + o, owner, len);
		o += len;
	}
	memset(sh->owner + t, 0, MAX_FILE - t); /* the tail is process 0's */
	sh->rec_size = 1000 + rand_below(8000);
	sh->rec_slots = (t - 8192) / sh->rec_size;
	if (sh->rec_slots > MAX_SLOTS)
		sh->rec_slots = MAX_SLOTS;
	sh->rec_base = rand_below(t - sh->rec_slots * sh->rec_size);
	for (unsigned s = 0; s < MAX_SLOTS; s++)
		atomic_store(&sh->written[s], 0);
}

static int child(const char *path, uint64_t seed, int rounds, int ops)
{
	rng_state = seed ^ ((uint64_t)(me + 1) << 56);
	fd = open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (fd < 0)
		failure("open %s: %s", path, strerror(errno));
	for (round_no = 1; round_no <= rounds; round_no++) {
		phase = PHASE_OWNED;
		if (me == 0) {
			uint64_t plan_state = rng_state;
			plan_round(seed);
			rng_state = plan_state ^ next_rand();
			/* The whole of [0, T) must exist before anybody writes there. */
			if (sh->size < sh->tail_start) {
				note("truncate %" PRIu64 " -> %" PRIu64 " (round start)", sh->size,
				     sh->tail_start);
				if (ftruncate(fd, (off_t)sh->tail_start) < 0)
					failure("ftruncate: %s", strerror(errno));
				sh->size = sh->tail_start;
			}
		}
		barrier();
		phase_owned(ops);
		barrier();
		verify_all("whole-file check after phase A");
		barrier();
		phase = PHASE_RECORDS;
		phase_records(ops);
		barrier();
		check_records();
		barrier();
		if (me == 0) {
			uint64_t size = sh->size;
			if (do_pread(sh->model, size, 0, "model refresh") != size)
				failure("model refresh read is short");
		}
		barrier();
		verify_all("whole-file check after phase B");
		barrier();
	}
	close(fd);
	return 0;
}

/* The parent's SIGTERM (the test's timeout): take the children along, they may be blocked. */
static pid_t child_pids[MAX_PROCS];
static volatile sig_atomic_t child_count;

static void terminate_children(int sig)
{
	for (int i = 0; i < child_count; i++)
		kill(child_pids[i], SIGKILL);
	_exit(128 + sig);
}

static int usage(void)
{
	fprintf(stderr, "usage: tdefs-rel-conc [-p PROCS] [-r ROUNDS] [-n OPS] [-s SEED] [-d] FILE MODEL_OUT\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rounds = 3, ops = 400, opt, status, result = 0;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	pid_t *pids = child_pids;
	pthread_barrierattr_t attr;
	struct timespec t0, t1;

	procs = 4;
	while ((opt = getopt(argc, argv, "p:r:n:s:d")) != -1) {
		switch (opt) {
		case 'p': procs = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'n': ops = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'd': direct = true; break;
		default: return usage();
		}
	}
	if (argc - optind != 2 || procs < 2 || procs > MAX_PROCS || rounds < 1 || ops < 1)
		return usage();
	const char *path = argv[optind], *model_out = argv[optind + 1];

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || posix_memalign((void **)&buf, 4096, MAX_PIECE + 4096) != 0 ||
	    posix_memalign((void **)&buf2, 4096, MAX_PIECE + 4096) != 0 ||
	    !(mine = calloc(MAX_FILE, sizeof(*mine)))) {
		perror("tdefs-rel-conc: memory");
		return 2;
	}
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (pthread_barrier_init(&sh->barrier, &attr, (unsigned)procs) != 0) {
		fprintf(stderr, "tdefs-rel-conc: barrier init failed\n");
		return 2;
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "tdefs-rel-conc: %s: %s\n", path, strerror(errno));
		return 2;
	}
	close(fd);
	sh->size = 0;
	printf("tdefs-rel-conc: %d processes, %d rounds, %d operations per process and phase, seed %"
	       PRIu64 "%s\n", procs, rounds, ops, seed, direct ? ", O_DIRECT" : "");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	signal(SIGTERM, terminate_children);
	signal(SIGINT, terminate_children);
	for (int i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("tdefs-rel-conc: fork");
			return 2;
		}
		if (pids[i] == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			me = i;
			_exit(child(path, seed, rounds, ops));
		}
		child_count = i + 1;
	}
	/* The first process to fail takes the others down (they would wait at a barrier). */
	for (int left = procs; left > 0; left--) {
		pid_t pid = wait(&status);
		if (pid < 0)
			break;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (WIFSIGNALED(status))
				fprintf(stderr, "tdefs-rel-conc: process %d died by signal %d\n", (int)pid,
					WTERMSIG(status));
			result = 1;
			for (int i = 0; i < procs; i++)
				if (pids[i] != pid)
					kill(pids[i], SIGKILL);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (result) {
		fprintf(stderr, "tdefs-rel-conc: FAILED (seed %" PRIu64 ", %d processes, %d ops%s)\n", seed,
			procs, ops, direct ? ", -d" : "");
		return 1;
	}
	FILE *out = fopen(model_out, "wb");
	if (!out || fwrite(sh->model, 1, sh->size, out) != sh->size || fclose(out) != 0) {
		fprintf(stderr, "tdefs-rel-conc: cannot write %s\n", model_out);
		return 2;
	}
	printf("tdefs-rel-conc: ok in %.1f s: final size %" PRIu64 "; ", (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, sh->size);
	for (unsigned i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		printf("%s %lu, ", op_names[i], (unsigned long)atomic_load(&sh->ops[i]));
	printf("%lu bytes verified; record reads: %lu locked (all whole), %lu unlocked of which %lu "
	       "torn (allowed while a write is in flight)\n", (unsigned long)atomic_load(&sh->verified_bytes),
	       (unsigned long)atomic_load(&sh->locked_reads), (unsigned long)atomic_load(&sh->unlocked_reads),
	       (unsigned long)atomic_load(&sh->torn_unlocked));
	return 0;
}
