/*
 * tdefs-bench: throughput of the AES-256-XTS block path the daemon uses (blocks_encrypt and
 * blocks_decrypt from fs/format.h, through the per-key context pool in crypto/), side by side
 * with the bare OpenSSL loop (crypto_reference_xts_loop in steady state: one context initialised
 * once, EVP_CipherUpdate unit after unit, which is what `openssl speed -evp aes-256-xts`
 * measures). That loop is the ceiling; the target for the block path is 0.95 of it per thread
 * at 4 KiB and above, scaling with threads (docs/PERFORMANCE.md).
 *
 * Method. Each worker thread owns a 1 MiB arena (larger if a request size is larger). A trial
 * runs every active worker for a fixed time over its arena: the block path walks the arena in
 * requests of the chosen size (as the daemon sees FUSE requests), the bare loop encrypts the
 * whole arena in one call, 4 KiB data unit after data unit. Both touch the same bytes, so both
 * see the same caches. Every configuration runs several rounds; a round is one bare trial and
 * one path trial back to back, in alternating order, so that a slow phase on this shared
 * machine hits both. The table shows medians over rounds of the MB/s, and as "ratio" the median
 * of the per-round path/bare ratios, which is steadier than a ratio of medians when the
 * machine's speed drifts between rounds.
 *
 * On a shared machine other processes take CPU time from the workers, which lowers wall-clock
 * MB/s without saying anything about tdefs. Each worker therefore also reads its own thread
 * CPU clock, and the table adds the same comparison in MB per CPU-second: "cpu ratio" (path
 * against bare per CPU-second) and "cpu scaling" (per-thread CPU throughput with N threads
 * against 1 thread). Those isolate the code's own cost and any contention between our threads
 * (cache-line sharing, locks that spin) from time stolen by other tenants; a lock that puts a
 * thread to sleep would show in wall-clock scaling only, which is why both are printed.
 */
#include "crypto/crypto.h"
#include "crypto/crypto_testing.h"
#include "fs/format.h"
#include "util/json_text.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define MIB (1024u * 1024u)
#define MAX_SIZES 16
#define MAX_THREAD_COUNTS 32
#define MAX_ROUNDS 101
#define DEFAULT_ROUNDS 9
#define DEFAULT_TRIAL_MS 40
#define DEFAULT_BUDGET_MS 24000 /* keeps the default run under 30 s with set-up and warm-up */
#define ARENA_MIN MIB

static const size_t default_sizes[] = { 4 * KIB, 8 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB };

enum method { METHOD_BARE, METHOD_PATH };
enum op { OP_ENCRYPT, OP_DECRYPT };

struct options {
	size_t sizes[MAX_SIZES];
	unsigned size_count;
	unsigned threads[MAX_THREAD_COUNTS];
	unsigned thread_count;
	unsigned rounds;
	unsigned trial_ms;  /* 0 = derived from the time budget */
	bool do_encrypt, do_decrypt;
	bool json;
	const char *plot;
	bool evp_only;
};

/* One measured configuration: a request size, a thread count and a direction. */
struct result {
	size_t size;
	unsigned threads;
	enum op op;
	double path_mbps, bare_mbps; /* medians over rounds, all threads together */
	double ratio;                /* median of per-round path/bare */
	double ratio_min, ratio_max;
	double scaling;              /* path MB/s / (threads * path MB/s at 1 thread); 0 = n/a */
	double path_cpu_mbps, bare_cpu_mbps; /* medians, MB per CPU-second (per thread) */
	double cpu_ratio;                    /* median of per-round path/bare, CPU time */
	double cpu_scaling; /* path MB per CPU-s with N threads / the same with 1 thread */
};

/* --- the worker pool --------------------------------------------------------------------- */

/*
 * Workers are created once and reused for every trial so that their arenas stay warm and
 * thread creation never lands inside a measurement. A trial is published in `job` and started
 * and finished with two barriers.
 */
struct job {
	enum method method;
	enum op op;
	size_t size;
	unsigned active;          /* workers 0..active-1 take part */
	struct timespec deadline; /* shared, absolute */
	bool quit;
};

struct worker {
	pthread_t thread;
	unsigned index;
	uint8_t *arena;
	size_t arena_size;
	uint64_t bytes;           /* result of the last trial */
	struct timespec finished; /* when this worker saw the deadline */
	double cpu_seconds;       /* this thread's CPU time during the last trial */
	int error;
};

static struct {
	struct job job;
	pthread_barrier_t start, done;
	struct worker *workers;
	unsigned worker_count;
	struct xts_key *key;
	uint8_t raw_key[XTS_KEY_SIZE];
} pool;

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

static bool reached(const struct timespec *now, const struct timespec *deadline)
{
	return now->tv_sec > deadline->tv_sec ||
	       (now->tv_sec == deadline->tv_sec && now->tv_nsec >= deadline->tv_nsec);
}

/*
 * One pass over the arena. The clock is read once per pass (once per MiB) by both methods, so
 * its cost cannot favour either; the block path's per-request overhead (context borrow, hole
 * check on decrypt) is part of what is measured, on purpose.
 */
static int one_pass(struct worker *w, const struct job *job)
{
	bool encrypt = job->op == OP_ENCRYPT;

	if (job->method == METHOD_BARE)
		return crypto_reference_xts_loop(pool.raw_key, TDEFS_BLOCK_SIZE, w->arena,
						  w->arena_size, encrypt, true);
	/* Each worker uses its own block numbers, as different files or regions would. */
	uint64_t base = (uint64_t)w->index << 32;
	for (size_t off = 0; off + job->size <= w->arena_size; off += job->size) {
		uint64_t block = base + off / TDEFS_BLOCK_SIZE;
		int ret = encrypt ? blocks_encrypt(pool.key, block, w->arena + off, w->arena + off,
						   job->size)
				  : blocks_decrypt(pool.key, block, w->arena + off, w->arena + off,
						   job->size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_barrier_wait(&pool.start);
		if (pool.job.quit)
			return NULL;
		w->bytes = 0;
		if (w->index < pool.job.active) {
			struct timespec now, cpu_start, cpu_end;
			/* The arena is walked whole, so a pass is always a multiple of the size. */
			size_t pass_bytes = w->arena_size - w->arena_size % pool.job.size;

			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start);
			do {
				int ret = one_pass(w, &pool.job);
				if (ret < 0) {
					w->error = ret;
					break;
				}
				w->bytes += pass_bytes;
				clock_gettime(CLOCK_MONOTONIC, &now);
			} while (!reached(&now, &pool.job.deadline));
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_end);
			w->finished = now;
			w->cpu_seconds = seconds_between(&cpu_start, &cpu_end);
		}
		pthread_barrier_wait(&pool.done);
	}
}

struct trial {
	double mbps;     /* MB/s (10^6 bytes per second of wall-clock time), all workers */
	double cpu_mbps; /* MB per CPU-second of the workers: per-thread speed while running */
};

static struct trial run_trial(enum method method, enum op op, size_t size, unsigned threads,
			      unsigned trial_ms)
{
	struct timespec start, last;
	uint64_t bytes = 0;
	double cpu = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	pool.job.method = method;
	pool.job.op = op;
	pool.job.size = size;
	pool.job.active = threads;
	pool.job.deadline = start;
	pool.job.deadline.tv_nsec += (long)trial_ms * 1000000L;
	pool.job.deadline.tv_sec += pool.job.deadline.tv_nsec / 1000000000L;
	pool.job.deadline.tv_nsec %= 1000000000L;
	pthread_barrier_wait(&pool.start);
	pthread_barrier_wait(&pool.done);
	last = start;
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &pool.workers[i];
		if (w->error) {
			fprintf(stderr, "tdefs-bench: cipher call failed: %s\n", strerror(-w->error));
			exit(1);
		}
		bytes += w->bytes;
		cpu += w->cpu_seconds;
		if (seconds_between(&last, &w->finished) > 0)
			last = w->finished;
	}
	return (struct trial){ (double)bytes / seconds_between(&start, &last) / 1e6,
			       cpu > 0 ? (double)bytes / cpu / 1e6 : 0 };
}

static int pool_start(unsigned workers, size_t arena_size)
{
	pool.workers = calloc(workers, sizeof(*pool.workers));
	if (!pool.workers)
		return -ENOMEM;
	pool.worker_count = workers;
	/* +1: the main thread takes part in both barriers. */
	pthread_barrier_init(&pool.start, NULL, workers + 1);
	pthread_barrier_init(&pool.done, NULL, workers + 1);
	for (unsigned i = 0; i < workers; i++) {
		struct worker *w = &pool.workers[i];

		w->index = i;
		w->arena_size = arena_size;
		w->arena = aligned_alloc(TDEFS_BLOCK_SIZE, arena_size);
		if (!w->arena)
			return -ENOMEM;
		/* Random-looking content: decrypt must never meet an all-zero (hole) block. */
		if (crypto_random_bytes(w->arena, arena_size) < 0)
			return -EIO;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -EAGAIN;
	}
	return 0;
}

static void pool_stop(void)
{
	pool.job.quit = true;
	pthread_barrier_wait(&pool.start);
	for (unsigned i = 0; i < pool.worker_count; i++) {
		pthread_join(pool.workers[i].thread, NULL);
		free(pool.workers[i].arena);
	}
	free(pool.workers);
	pthread_barrier_destroy(&pool.start);
	pthread_barrier_destroy(&pool.done);
}

/* --- statistics ---------------------------------------------------------------------------- */

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *values, unsigned n)
{
	qsort(values, n, sizeof(*values), compare_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static void measure(struct result *r, unsigned rounds, unsigned trial_ms)
{
	double path[MAX_ROUNDS], bare[MAX_ROUNDS], ratio[MAX_ROUNDS];
	double path_cpu[MAX_ROUNDS], bare_cpu[MAX_ROUNDS], cpu_ratio[MAX_ROUNDS];
	struct trial p, b;

	/* Warm-up (discarded): grows the context pool to one context per thread, warms caches. */
	run_trial(METHOD_PATH, r->op, r->size, r->threads, trial_ms / 4 + 1);
	run_trial(METHOD_BARE, r->op, r->size, r->threads, trial_ms / 4 + 1);
	for (unsigned i = 0; i < rounds; i++) {
		/* Alternate the order so a drift in machine speed does not favour one method. */
		if (i % 2 == 0) {
			b = run_trial(METHOD_BARE, r->op, r->size, r->threads, trial_ms);
			p = run_trial(METHOD_PATH, r->op, r->size, r->threads, trial_ms);
		} else {
			p = run_trial(METHOD_PATH, r->op, r->size, r->threads, trial_ms);
			b = run_trial(METHOD_BARE, r->op, r->size, r->threads, trial_ms);
		}
		path[i] = p.mbps;
		bare[i] = b.mbps;
		ratio[i] = p.mbps / b.mbps;
		path_cpu[i] = p.cpu_mbps;
		bare_cpu[i] = b.cpu_mbps;
		cpu_ratio[i] = p.cpu_mbps / b.cpu_mbps;
	}
	r->path_mbps = median(path, rounds);
	r->bare_mbps = median(bare, rounds);
	r->ratio = median(ratio, rounds); /* sorts ratio[] */
	r->ratio_min = ratio[0];
	r->ratio_max = ratio[rounds - 1];
	r->path_cpu_mbps = median(path_cpu, rounds);
	r->bare_cpu_mbps = median(bare_cpu, rounds);
	r->cpu_ratio = median(cpu_ratio, rounds);
}

/* --- output -------------------------------------------------------------------------------- */

static const char *op_name(enum op op)
{
	return op == OP_ENCRYPT ? "encrypt" : "decrypt";
}

static void format_size(size_t size, char *out, size_t out_len)
{
	if (size >= MIB && size % MIB == 0)
		snprintf(out, out_len, "%zu MiB", size / MIB);
	else
		snprintf(out, out_len, "%zu KiB", size / KIB);
}

static const char *dispatch_name(const struct options *opt)
{
	/* crypto/ decides once per process; the environment variable is its only override. */
	return opt->evp_only || getenv("TDEFS_XTS_EVP_ONLY")
		       ? "EVP_CipherInit_ex2 per unit (forced by TDEFS_XTS_EVP_ONLY)"
		       : "provider dispatch (EVP fallback if unavailable)";
}

static void print_table(const struct options *opt, const struct result *results, unsigned n,
			unsigned trial_ms)
{
	printf("tdefs-bench: AES-256-XTS block path vs bare OpenSSL loop (steady state)\n");
	printf("backend:  %s; per-unit tweak: %s\n", crypto_backend_version(), dispatch_name(opt));
	printf("method:   %u rounds x %u ms per trial, medians; ratio = median of per-round "
	       "path/bare\n\n",
	       opt->rounds, trial_ms);
	printf("%-8s %4s %-8s %10s %10s %6s %10s %9s %7s %6s %7s\n", "request", "thr", "op",
	       "path MB/s", "bare MB/s", "ratio", "range", "MB/s/thr", "scaling", "cpu", "cpu");
	printf("%-8s %4s %-8s %10s %10s %6s %10s %9s %7s %6s %7s\n", "", "", "", "", "", "", "", "",
	       "", "ratio", "scaling");
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &results[i];
		char size[32], range[32], scaling[16], cpu_scaling[16];

		format_size(r->size, size, sizeof(size));
		snprintf(range, sizeof(range), "%.2f-%.2f", r->ratio_min, r->ratio_max);
		if (r->scaling > 0)
			snprintf(scaling, sizeof(scaling), "%.2f", r->scaling);
		else
			snprintf(scaling, sizeof(scaling), "-");
		if (r->cpu_scaling > 0)
			snprintf(cpu_scaling, sizeof(cpu_scaling), "%.2f", r->cpu_scaling);
		else
			snprintf(cpu_scaling, sizeof(cpu_scaling), "-");
		printf("%-8s %4u %-8s %10.0f %10.0f %6.3f %10s %9.0f %7s %6.3f %7s\n", size,
		       r->threads, op_name(r->op), r->path_mbps, r->bare_mbps, r->ratio, range,
		       r->path_mbps / r->threads, scaling, r->cpu_ratio, cpu_scaling);
	}
}

static void print_json(const struct options *opt, const struct result *results, unsigned n,
		       unsigned trial_ms)
{
	/* The backend's version string comes from the library: escaped like every string. */
	printf("{\n  \"tool\": \"tdefs-bench\",\n  \"backend\": ");
	json_write_string(stdout, crypto_backend_version());
	printf(",\n  \"unit_dispatch\": \"%s\",\n", opt->evp_only || getenv("TDEFS_XTS_EVP_ONLY")
							      ? "evp"
							      : "provider");
	printf("  \"online_cpus\": %ld,\n  \"rounds\": %u,\n  \"trial_ms\": %u,\n",
	       sysconf(_SC_NPROCESSORS_ONLN), opt->rounds, trial_ms);
	printf("  \"results\": [\n");
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &results[i];

		printf("    {\"request_bytes\": %zu, \"threads\": %u, \"op\": \"%s\", "
		       "\"path_mbps\": %.1f, \"bare_mbps\": %.1f, \"ratio\": %.4f, "
		       "\"ratio_min\": %.4f, \"ratio_max\": %.4f, \"scaling\": %.4f, "
		       "\"path_mb_per_cpu_s\": %.1f, \"bare_mb_per_cpu_s\": %.1f, "
		       "\"cpu_ratio\": %.4f, \"cpu_scaling\": %.4f}%s\n",
		       r->size, r->threads, op_name(r->op), r->path_mbps, r->bare_mbps, r->ratio,
		       r->ratio_min, r->ratio_max, r->scaling, r->path_cpu_mbps, r->bare_cpu_mbps,
		       r->cpu_ratio, r->cpu_scaling, i + 1 < n ? "," : "");
	}
	printf("  ]\n}\n");
}

static bool gnuplot_available(void)
{
	return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/*
 * Two panels: MB/s against request size for both methods at each thread count, and the ratio
 * with the 0.95 target drawn in. Data goes through a temporary file because gnuplot's inline
 * data blocks cannot be reused across plot commands portably.
 */
static int write_plot(const char *path, const struct options *opt, const struct result *results,
		      unsigned n)
{
	char data_path[] = "/tmp/tdefs-bench-plot-XXXXXX";
	const char *ext = strrchr(path, '.');
	const char *terminal;
	int fd = mkstemp(data_path), status;
	FILE *data, *gp;
	unsigned series = 0;

	if (ext && strcmp(ext, ".svg") == 0)
		terminal = "svg size 1000,800 dynamic background rgb 'white'";
	else
		terminal = "pngcairo size 1000,800";
	if (fd < 0 || !(data = fdopen(fd, "w"))) {
		fprintf(stderr, "tdefs-bench: cannot create plot data file: %s\n", strerror(errno));
		return -1;
	}
	/* One gnuplot data set (separated by two blank lines) per (threads, op). */
	for (unsigned t = 0; t < opt->thread_count; t++) {
		for (int op = OP_ENCRYPT; op <= OP_DECRYPT; op++) {
			bool any = false;
			for (unsigned i = 0; i < n; i++) {
				const struct result *r = &results[i];
				if (r->threads != opt->threads[t] || r->op != (enum op)op)
					continue;
				if (!any)
					fprintf(data, "# threads=%u op=%s\n", r->threads,
						op_name(r->op));
				any = true;
				fprintf(data, "%zu %.1f %.1f %.4f\n", r->size / KIB, r->path_mbps,
					r->bare_mbps, r->ratio);
			}
			if (any) {
				fprintf(data, "\n\n");
				series++;
			}
		}
	}
	fclose(data);
	gp = popen("gnuplot", "w");
	if (!gp) {
		unlink(data_path);
		fprintf(stderr, "tdefs-bench: cannot run gnuplot\n");
		return -1;
	}
	fprintf(gp, "set terminal %s\nset output '%s'\n", terminal, path);
	fprintf(gp, "set multiplot layout 2,1 title 'tdefs-bench: AES-256-XTS block path vs bare "
		    "OpenSSL loop (%s)'\n",
		crypto_backend_version());
	fprintf(gp, "set logscale x 2\nset xlabel 'request size (KiB)'\nset grid\n"
		    "set key outside right\n");
	fprintf(gp, "set ylabel 'MB/s'\nplot ");
	series = 0;
	for (unsigned t = 0; t < opt->thread_count; t++) {
		for (int op = OP_ENCRYPT; op <= OP_DECRYPT; op++) {
			if ((op == OP_ENCRYPT && !opt->do_encrypt) ||
			    (op == OP_DECRYPT && !opt->do_decrypt))
				continue;
			fprintf(gp,
				"%s'%s' index %u using 1:2 with linespoints title 'path %s %ut', "
				"'' index %u using 1:3 with lines dashtype 2 title 'bare %s %ut'",
				series ? ", " : "", data_path, series, op_name(op), opt->threads[t],
				series, op_name(op), opt->threads[t]);
			series++;
		}
	}
	fprintf(gp, "\nset ylabel 'path / bare'\nset yrange [0.5:1.2]\nplot 0.95 with lines "
		    "dashtype 3 lc rgb 'red' title 'target 0.95'");
	for (unsigned s = 0, t = 0; t < opt->thread_count; t++) {
		for (int op = OP_ENCRYPT; op <= OP_DECRYPT; op++) {
			if ((op == OP_ENCRYPT && !opt->do_encrypt) ||
			    (op == OP_DECRYPT && !opt->do_decrypt))
				continue;
			fprintf(gp, ", '%s' index %u using 1:4 with linespoints title '%s %ut'",
				data_path, s++, op_name(op), opt->threads[t]);
		}
	}
	fprintf(gp, "\nunset multiplot\n");
	status = pclose(gp);
	unlink(data_path);
	if (status != 0) {
		fprintf(stderr, "tdefs-bench: gnuplot failed (status %d)\n", status);
		return -1;
	}
	return 0;
}

/* --- options ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tdefs-bench [OPTIONS]\n"
		"\n"
		"Measures AES-256-XTS throughput through the block path the tdefs daemon uses\n"
		"(blocks_encrypt/blocks_decrypt: per-key context pool, one XTS data unit per 4 KiB\n"
		"block with the block number as tweak) against the bare OpenSSL loop over the same\n"
		"buffers in the same run (one EVP context initialised once, EVP_CipherUpdate per\n"
		"4 KiB unit: the steady state `openssl speed -evp aes-256-xts` measures).\n"
		"\n"
		"Options:\n"
		"  -s, --sizes LIST      request sizes, multiples of 4 KiB, e.g. 4K,8K,64K,1M\n"
		"                        (default 4K,8K,16K,64K,256K,1M)\n"
		"  -t, --threads LIST    thread counts, e.g. 1,2 (default 1..nproc; above 8 CPUs:\n"
		"                        powers of two and nproc)\n"
		"  -r, --rounds N        rounds per configuration, each one bare and one path trial\n"
		"                        (default %d, max %d)\n"
		"  -T, --trial-ms MS     length of one trial (default: %d ms, shortened so that the\n"
		"                        whole run fits in about %d s)\n"
		"  -o, --op OP           encrypt, decrypt or both (default both)\n"
		"      --json            print JSON instead of the table\n"
		"      --plot FILE       also draw FILE.png or FILE.svg with gnuplot\n"
		"      --evp-only        force the EVP per-unit path in crypto/ (what the provider\n"
		"                        dispatch path is measured against); same as setting\n"
		"                        TDEFS_XTS_EVP_ONLY=1\n"
		"  -h, --help            this help\n"
		"\n"
		"Columns: path and bare MB/s are medians over rounds for all threads together;\n"
		"ratio is the median of per-round path/bare ratios (range: lowest-highest round);\n"
		"scaling is path MB/s / (threads x path MB/s with 1 thread). The cpu columns repeat\n"
		"ratio and scaling in MB per CPU-second of the worker threads, which leaves out time\n"
		"other processes took from them (useful on a shared machine).\n"
		"Targets (docs/PERFORMANCE.md): ratio >= 0.95 at 4 KiB and above; scaling close to 1.0.\n",
		DEFAULT_ROUNDS, MAX_ROUNDS, DEFAULT_TRIAL_MS, DEFAULT_BUDGET_MS / 1000);
}

static int parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		value *= KIB, end++;
	else if (*end == 'M' || *end == 'm')
		value *= MIB, end++;
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end || value == 0 || value % TDEFS_BLOCK_SIZE || value > 16ull * MIB)
		return -EINVAL;
	*out = (size_t)value;
	return 0;
}

static int parse_list(const char *text, bool sizes, struct options *opt)
{
	char *copy = strdup(text), *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	if (sizes)
		opt->size_count = 0;
	else
		opt->thread_count = 0;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (sizes) {
			if (opt->size_count == MAX_SIZES ||
			    parse_size(item, &opt->sizes[opt->size_count]) < 0) {
				ret = -EINVAL;
				break;
			}
			opt->size_count++;
		} else {
			char *end;
			long value = strtol(item, &end, 10);
			if (*end || value < 1 || value > 1024 ||
			    opt->thread_count == MAX_THREAD_COUNTS) {
				ret = -EINVAL;
				break;
			}
			opt->threads[opt->thread_count++] = (unsigned)value;
		}
	}
	free(copy);
	if ((sizes && opt->size_count == 0) || (!sizes && opt->thread_count == 0))
		ret = -EINVAL;
	return ret;
}

static void default_threads(struct options *opt)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		cpus = 1;
	opt->thread_count = 0;
	if (cpus <= 8) {
		for (long t = 1; t <= cpus; t++)
			opt->threads[opt->thread_count++] = (unsigned)t;
		return;
	}
	for (long t = 1; t < cpus && opt->thread_count < MAX_THREAD_COUNTS - 1; t *= 2)
		opt->threads[opt->thread_count++] = (unsigned)t;
	opt->threads[opt->thread_count++] = (unsigned)cpus;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	enum { OPT_JSON = 256, OPT_PLOT, OPT_EVP_ONLY };
	static const struct option long_options[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "trial-ms", required_argument, NULL, 'T' },
		{ "op", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "plot", required_argument, NULL, OPT_PLOT },
		{ "evp-only", no_argument, NULL, OPT_EVP_ONLY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memcpy(opt->sizes, default_sizes, sizeof(default_sizes));
	opt->size_count = sizeof(default_sizes) / sizeof(default_sizes[0]);
	default_threads(opt);
	opt->rounds = DEFAULT_ROUNDS;
	opt->do_encrypt = opt->do_decrypt = true;
	while ((c = getopt_long(argc, argv, "s:t:r:T:o:h", long_options, NULL)) != -1) {
		char *end;
		long value;

		switch (c) {
		case 's':
		case 't':
			if (parse_list(optarg, c == 's', opt) < 0) {
				fprintf(stderr, "tdefs-bench: bad %s list '%s'\n",
					c == 's' ? "size" : "thread", optarg);
				return -1;
			}
			break;
		case 'r':
		case 'T':
			value = strtol(optarg, &end, 10);
			if (*end || value < 1 || (c == 'r' && value > MAX_ROUNDS) || value > 60000) {
				fprintf(stderr, "tdefs-bench: bad value '%s' for -%c\n", optarg, c);
				return -1;
			}
			if (c == 'r')
				opt->rounds = (unsigned)value;
			else
				opt->trial_ms = (unsigned)value;
			break;
		case 'o':
			opt->do_encrypt = strcmp(optarg, "decrypt") != 0;
			opt->do_decrypt = strcmp(optarg, "encrypt") != 0;
			if (strcmp(optarg, "encrypt") && strcmp(optarg, "decrypt") &&
			    strcmp(optarg, "both")) {
				fprintf(stderr, "tdefs-bench: --op is encrypt, decrypt or both\n");
				return -1;
			}
			break;
		case OPT_JSON:
			opt->json = true;
			break;
		case OPT_PLOT:
			opt->plot = optarg;
			break;
		case OPT_EVP_ONLY:
			opt->evp_only = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tdefs-bench: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct result *results;
	unsigned n = 0, configs, max_threads = 0, trial_ms;
	size_t arena = ARENA_MIN;
	int ret;

	if (parse_options(argc, argv, &opt) < 0)
		return 2;
	if (opt.plot) {
		const char *ext = strrchr(opt.plot, '.');
		if (!ext || (strcmp(ext, ".png") && strcmp(ext, ".svg"))) {
			fprintf(stderr, "tdefs-bench: --plot needs a FILE.png or FILE.svg\n");
			return 2;
		}
		/* Fail before a long run, not after it. */
		if (!gnuplot_available()) {
			fprintf(stderr, "tdefs-bench: --plot needs gnuplot, which is not installed "
					"(Debian: apt-get install gnuplot-nox)\n");
			return 2;
		}
	}
	/* Must precede the first crypto call: crypto/ picks its unit path once per process. */
	if (opt.evp_only)
		setenv("TDEFS_XTS_EVP_ONLY", "1", 1);
	for (unsigned i = 0; i < opt.size_count; i++)
		if (opt.sizes[i] > arena)
			arena = opt.sizes[i];
	for (unsigned i = 0; i < opt.thread_count; i++)
		if (opt.threads[i] > max_threads)
			max_threads = opt.threads[i];
	configs = opt.size_count * opt.thread_count * ((unsigned)opt.do_encrypt + opt.do_decrypt);
	trial_ms = opt.trial_ms;
	if (!trial_ms) {
		/* Two trials per round plus a quarter-length warm-up pair per configuration. */
		double per_trial = (double)DEFAULT_BUDGET_MS / (configs * (2.0 * opt.rounds + 0.5));
		trial_ms = per_trial >= DEFAULT_TRIAL_MS ? DEFAULT_TRIAL_MS
			   : per_trial < 5		  ? 5
							  : (unsigned)per_trial;
	}
	results = calloc(configs, sizeof(*results));
	if (!results)
		return 1;
	if (crypto_random_bytes(pool.raw_key, sizeof(pool.raw_key)) < 0 ||
	    (ret = xts_key_new(pool.raw_key, &pool.key)) < 0) {
		fprintf(stderr, "tdefs-bench: cannot set up an XTS key\n");
		return 1;
	}
	if (pool_start(max_threads, arena) < 0) {
		fprintf(stderr, "tdefs-bench: cannot start %u worker threads\n", max_threads);
		return 1;
	}
	for (unsigned s = 0; s < opt.size_count; s++) {
		for (unsigned t = 0; t < opt.thread_count; t++) {
			for (int op = OP_ENCRYPT; op <= OP_DECRYPT; op++) {
				struct result *r = &results[n];
				if ((op == OP_ENCRYPT && !opt.do_encrypt) ||
				    (op == OP_DECRYPT && !opt.do_decrypt))
					continue;
				r->size = opt.sizes[s];
				r->threads = opt.threads[t];
				r->op = (enum op)op;
				measure(r, opt.rounds, trial_ms);
				n++;
				if (!opt.json && isatty(STDERR_FILENO))
					fprintf(stderr, "\r%u/%u configurations", n, configs);
			}
		}
	}
	if (!opt.json && isatty(STDERR_FILENO))
		fprintf(stderr, "\r%*s\r", 30, "");
	pool_stop();
	/* Scaling against the single-thread result of the same size and direction, if measured. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			if (results[j].threads == 1 && results[j].size == results[i].size &&
			    results[j].op == results[i].op && results[j].path_mbps > 0) {
				results[i].scaling = results[i].path_mbps /
						     (results[i].threads * results[j].path_mbps);
				results[i].cpu_scaling = results[i].path_cpu_mbps /
							 results[j].path_cpu_mbps;
			}
	if (opt.json)
		print_json(&opt, results, n, trial_ms);
	else
		print_table(&opt, results, n, trial_ms);
	ret = 0;
	if (opt.plot && write_plot(opt.plot, &opt, results, n) < 0)
		ret = 1;
	else if (opt.plot && !opt.json)
		printf("\nplot written to %s\n", opt.plot);
	xts_key_free(pool.key);
	secure_wipe(pool.raw_key, sizeof(pool.raw_key));
	free(results);
	return ret;
}
