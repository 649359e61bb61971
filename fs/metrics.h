/*
 * The daemon's counters and their Prometheus text form (README.md, "Metrics"). The counters are
 * relaxed atomics bumped at the few places every request passes (the data-path wrappers in
 * fs/daemon.h, file_crypt_acquire/release, keys_reload, the control channel); nothing here
 * takes a lock of the data path. metrics_render() adds the jobs' progress and the keystore's
 * state and is what both the control request "metrics" and the -o metrics=FILE writer serve.
 */
#ifndef TDEFS_METRICS_H
#define TDEFS_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct tdefs_daemon;

/* The kinds of data-path error, as file_io_error_note sorts them. */
enum metrics_error_kind { METRICS_ERR_NOSPC, METRICS_ERR_DQUOT, METRICS_ERR_IO, METRICS_ERR_ROFS,
			  METRICS_ERR_FORMAT, METRICS_ERR_OTHER, METRICS_ERR_KIND_COUNT };
enum metrics_operation { METRICS_OP_READ, METRICS_OP_WRITE, METRICS_OP_TRUNCATE,
			 METRICS_OP_FALLOCATE, METRICS_OP_FSYNC, METRICS_OP_COUNT };
/* Why a file's encryption state could not be loaded (its header). */
enum metrics_load_error { METRICS_LOAD_MISSING_KEY, METRICS_LOAD_DAMAGED, METRICS_LOAD_OTHER,
			  METRICS_LOAD_COUNT };

struct metrics_counters {
	uint64_t read_bytes, written_bytes;
	uint64_t io_errors[METRICS_OP_COUNT][METRICS_ERR_KIND_COUNT];
	uint64_t load_errors[METRICS_LOAD_COUNT];
	int64_t file_users; /* acquired references to file states: opens, truncates, rekey steps */
	int64_t deks_loaded; /* struct file_crypt instances in memory */
	uint64_t reloads_ok, reloads_failed;
	uint64_t control_refused;
};
extern struct metrics_counters metrics;

static inline void metrics_add(uint64_t *counter, uint64_t amount)
{
	__atomic_fetch_add(counter, amount, __ATOMIC_RELAXED);
}

static inline void metrics_gauge_add(int64_t *gauge, int64_t amount)
{
	__atomic_fetch_add(gauge, amount, __ATOMIC_RELAXED);
}

enum metrics_operation metrics_operation_of(const char *operation);

/*
 * The text exposition of daemon's mount into buf (NUL-terminated); its length, or -ENOSPC when
 * it did not fit.
 */
int metrics_render(struct tdefs_daemon *daemon, char *buf, size_t size);

/*
 * -o metrics=FILE (absolute) and -o metrics_interval=SECS; -EINVAL with a one-line error in
 * error. metrics_file_open() runs before mounting: it opens FILE's directory (the last component
 * not a symlink) and refuses one that a user other than root and the daemon's own could change.
 * metrics_file_start() (after daemonising) writes FILE at once and then every interval;
 * metrics_file_stop() (at unmount) removes it.
 */
int metrics_file_option(const char *path, char *error, size_t error_size);
int metrics_interval_option(const char *value, char *error, size_t error_size);
int metrics_file_open(char *error, size_t error_size);
int metrics_file_start(struct tdefs_daemon *daemon);
void metrics_file_stop(void);

#endif
