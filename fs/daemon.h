/*
 * Private to the daemon (the fs/ sources other than the format files): the inode table, the per-file
 * encryption state and the request-level I/O functions that the FUSE operations call.
 * Everything returns 0 or a negative errno; fs/operations.c converts once, at the reply.
 */
#ifndef TDEFS_DAEMON_H
#define TDEFS_DAEMON_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/format.h"
#include "keystore/keystore.h"

#include "fs/file_io.h"
#include "fs/key_cache.h"
#include "fs/metrics.h"

/*
 * Lock order. A thread holding one of these locks takes only locks further down the list, each
 * in the mode shown; a leaf takes nothing after it. Every lock of the daemon is here.
 *
 *   1. inode_table.lock (fs/inode_table.c): the inode hash table. Only inode_table_clear() and
 *      inode_table_visit_loaded() take anything under it: crypt_lock, through
 *      file_crypt_release() at unmount, and to take a reference for a forced keystore close.
 *   2. tdefs_inode.crypt_lock: loading and releasing a file's struct file_crypt. Under it, the
 *      header's loading takes 5 and 6: keyring_lock while the DEK is unsealed, the loaded
 *      state published or a new header sealed, and the header update lock when
 *      data_rekey_recover() rewrites the header.
 *      Never held across I/O requests: requests hold a reference (crypt_users), not the lock.
 *   3. file_crypt.size_lock: shared for I/O inside the size, exclusive to move it (fs/file_io.c);
 *      the data rekey takes it shared per chunk and exclusive to finish (fs/data_rekey.c).
 *      Not taken under crypt_lock, nor crypt_lock under it.
 *   4. file_crypt.block_locks: only under size_lock, stripes in ascending index
 *      (fs/block_locks.c); readers shared, writers and the rekey's chunk exclusive. Under an
 *      exclusive size_lock they are not needed and not taken.
 *   5. the header update lock (fs/header_update.c, one mutex per backing inode, hashed):
 *      header_update() holds it from reading the header to writing both copies. Taken under
 *      2 (recovery), under 3 + 4 (a rekey chunk), under exclusive 3 (rekey finish), or alone
 *      (rewrap jobs). Only one is ever held, so two inodes sharing a hashed mutex cannot
 *      deadlock.
 *   6. tdefs_daemon.keyring_lock: shared to use a MEK, exclusive only in keys_reload() to swap
 *      the ring. A leaf.
 *   7. inode_table.fd_cache_lock (fs/inode_table.c): the inodes' cached O_PATH descriptors,
 *      taken by inode_fd_get/put under any of the above (crypt_lock, inode_table.lock at
 *      unmount) and only for bookkeeping: the reopen by handle happens outside it. A leaf.
 * Apart from the list: keyring_replace_lock (fs/key_rotation.c) is taken first, by the control
 * thread or the wallet watcher with no other lock held, and then keyring_lock (exclusive); the
 * ring a holder put in place is freed by the next holder, so it is read only under the lock; and
 * at a forced keystore close (fs/keystore_close.c) also the job locks, inode_table.lock,
 * crypt_lock and an exclusive size_lock, each on its own; each a leaf: job->lock (one per slot
 * of tdefs_daemon.jobs, fs/jobs.c) is held for bookkeeping and condition waits only, never
 * around file work. inode_table.handles_probe_lock is taken once per daemon, by its first new inode, with
 * at most the namespace lock held, around the file-handle probe: a leaf.
 */

struct inode_table;
struct job;

struct tdefs_inode {
	/*
	 * The O_PATH descriptor of the backing object: reach it only through inode_fd_get() and
	 * inode_fd_put(). With a handle it is open only while in use or cached (guarded by the
	 * descriptor cache lock, fs/inode_table.c), else -1; without one it is open for the
	 * inode's life (the root, filesystems without handles).
	 */
	int path_fd;
	unsigned fd_users;
	struct tdefs_inode *lru_prev, *lru_next;
	bool in_lru;

	/* Immutable after creation. */
	/*
	 * The table the inode is in (for the root: its daemon's, though the root is never in
	 * the hash). inode_fd_get/put and inode_describe are called with the inode alone from
	 * every request handler, the data path's error notes and the jobs' workers: the
	 * back-pointer finds the descriptor cache without the daemon threaded through each.
	 */
	struct inode_table *table;
	struct file_handle *handle; /* NULL: path_fd is kept open */
	dev_t backing_dev;
	ino_t backing_ino;
	mode_t file_type; /* S_IFMT bits */

	/*
	 * The kernel asks for security.capability before every buffered write (xattrs on). Bit 0
	 * set: the backing object is known to have none, so the answer comes from here without a
	 * getxattr(2). Only a setxattr of that name through the mount can add one (the backing
	 * directory is the daemon's alone; chown and writes only ever remove it), and it adds 2
	 * and clears bit 0, so a lookup that raced with it cannot set the bit (compare-and-swap
	 * on the generation it started with). Atomic accesses only.
	 */
	uint64_t file_capability_state;

	/* Guarded by the inode table's lock (inode_table.lock). */
	uint64_t lookup_count;
	struct tdefs_inode *hash_next;

	/* Guarded by crypt_lock: load and release of the encryption state. */
	pthread_mutex_t crypt_lock;
	unsigned crypt_users;
	struct file_crypt *crypt;
	bool load_error_logged;
	unsigned io_errors_logged; /* file_io_error_note: kinds already logged (atomic) */
	/*
	 * In an adopted directory: whether the backing file is plaintext (INODE_PLAINTEXT_*,
	 * atomic), for the sizes the mount shows. Known encrypted stays so (no file gains the
	 * marker after --init --adopt); plaintext turns encrypted when the conversion swaps the
	 * file, which also gives the inode its new backing object (inode_retarget).
	 */
	int plaintext_state;
	/* A descriptor a conversion's swap replaced while in use: closed with the inode. */
	int retired_fd;
};
enum { INODE_PLAINTEXT_UNKNOWN, INODE_PLAINTEXT_YES, INODE_PLAINTEXT_NO };

/* One open of a regular file (fuse_file_info.fh). */
struct open_file {
	struct tdefs_inode *inode;
	int direct_fd; /* O_DIRECT backing descriptor for an O_DIRECT open, else -1 */
};

/*
 * -o cache= (docs/PERFORMANCE.md, "Error semantics"): CACHE_AUTO keeps pages and lets the kernel
 * write them back later (the writeback cache), CACHE_WRITETHROUGH keeps pages for reads but
 * sends every write to the daemon at once, CACHE_NONE keeps nothing.
 */
enum cache_mode { CACHE_AUTO, CACHE_WRITETHROUGH, CACHE_NONE };

static inline const char *cache_mode_name(enum cache_mode mode)
{
	return mode == CACHE_AUTO ? "auto" : mode == CACHE_WRITETHROUGH ? "writethrough" : "none";
}

/*
 * One daemon's inode table (fs/inode_table.c), inside its struct tdefs_daemon: set up by
 * inode_table_init() before the first lookup, emptied and ended by inode_table_clear().
 */
#define INODE_HASH_BUCKETS 4096
struct inode_table {
	pthread_mutex_t lock; /* lock order 1 */
	struct tdefs_inode *buckets[INODE_HASH_BUCKETS]; /* guarded by lock */
	/*
	 * The descriptor cache, guarded by fd_cache_lock (lock order 7): the idle cached
	 * descriptors, most recently used first, and how many inodes with a handle have their
	 * path_fd open (with the inodes' path_fd, fd_users and lru_* fields).
	 */
	pthread_mutex_t fd_cache_lock;
	struct tdefs_inode *lru_head, *lru_tail;
	size_t fd_cached;
	/*
	 * The file-handle probe, run once, on the first inode: handles_probed is atomic and set
	 * under handles_probe_lock after the three below are written; they are read-only after.
	 * handle_mount_fd: the backing root opened for reading (open_by_handle_at refuses an
	 * O_PATH mount descriptor), -1 before the probe; closed by inode_table_clear().
	 */
	pthread_mutex_t handles_probe_lock;
	bool handles_probed;
	bool handles_usable;
	dev_t backing_dev;
	int handle_mount_fd;
};

struct tdefs_daemon {
	char *backing_path;
	char *wallet_path;
	int backing_fd;
	/*
	 * The directory the mount covers (O_PATH, opened before mounting): the mount root shows
	 * its owner and mode, and chmod/chown on the mount root change it, so that the backing
	 * root itself stays the daemon's alone (0700) while the mount is open to its users.
	 */
	int mount_point_fd;
	struct tdefs_inode root;
	struct inode_table inodes;
	/*
	 * The background jobs' slots, JOB_KIND_COUNT of them (struct job is private to
	 * fs/jobs.c): each guarded by its own lock, set up by jobs_init().
	 */
	struct job *jobs;
	struct keyring *keyring;
	pthread_rwlock_t keyring_lock; /* the keyring may later be replaced on a key rotation */
	enum cache_mode cache;
	double timeout;
	/*
	 * The largest plaintext size a file may reach: the backing filesystem's own limit (found
	 * at INIT, fs/operations.c) less the header, at most TDEFS_MAX_FILE_SIZE.
	 */
	uint64_t max_file_size;
	bool read_only;
	/*
	 * -o xattr=off: every xattr request is answered ENOSYS, which the kernel remembers for the
	 * mount. Without it the kernel asks for security.capability before every buffered write
	 * (FUSE never sets SB_NOSEC), one extra round trip per write(2): docs/PERFORMANCE.md.
	 */
	bool xattr_off;
	/*
	 * -o xattr_security: the security.* names served, without the prefix, ':'-separated;
	 * "all", or "" for none. NULL: security.capability only (fs/operations.c).
	 */
	char *xattr_security;
	/*
	 * POSIX ACLs are served only while the kernel enforces them (FUSE_CAP_POSIX_ACL, set in
	 * the init request when the kernel and the backing filesystem can); else refused.
	 */
	bool acl_enforced;
	bool debug;
	/*
	 * The config record has CONFIG_FLAG_ADOPTED: files that carry this directory's plaintext
	 * marker are served as they are (docs/FORMAT.md, "Adopted directories"), unless
	 * -o require_encrypted refuses them.
	 */
	bool adopted;
	bool require_encrypted;
	uint8_t directory_id[16];
	struct fuse_session *session;
};

/*
 * The daemon's state: main() in fs/main.c owns the one instance, fills it before mounting and
 * gives it to libfuse as the session's userdata, so the FUSE handlers (fs/operations.c) get it
 * from each request (fuse_req_userdata) or as init's userdata argument, as libfuse's examples
 * do. Every function below that needs the wallet, the backing root or the mount options takes
 * it as its daemon argument, and the background threads (jobs, control channel, wallet watcher,
 * key server polls, HSM heartbeat, metrics file) get it as their start argument: there is no
 * global of it. The data path (file_io.c) never sees it: it works on a struct file_crypt alone,
 * which is what lets tests/unit drive it.
 *
 * What stays in its own file's statics is a service of the process, not of a mount: the
 * control socket and its thread (control.c), the wallet watcher (key_rotation.c), the key
 * cache (key_cache.c), the HSM heartbeat and key server status word (hsm_heartbeat.c,
 * key_server.c), the /dev/fuse channel hooks (fuse_channel.c) and the metrics counters
 * (metrics.c). One tdefs process serves one mount (main() makes one daemon), so each of them
 * exists once per mount either way; those that read the mount's state are started with the
 * daemon as their argument (control_start, wallet_watch_start, metrics_file_start).
 */
extern const struct fuse_lowlevel_ops tdefs_operations;

/*
 * main.c: the exit code (tools/cli/cli.h) of a wallet that did not open: a keystore error or
 * -errno, as at mount; the control channel's keystore-open answers with it too.
 */
int wallet_exit_code(int error);

/* operations.c: -o xattr_security=VALUE; -EINVAL for a malformed list. */
int xattr_security_option(struct tdefs_daemon *state, const char *value);

/* inode_table.c */
struct tdefs_inode *inode_from_fuse(struct tdefs_daemon *daemon, fuse_ino_t ino);
int inode_lookup(struct tdefs_daemon *daemon, struct tdefs_inode *parent, const char *name,
		 struct fuse_entry_param *entry);
void inode_forget(struct tdefs_daemon *daemon, struct tdefs_inode *inode, uint64_t count);
/*
 * The inode of a backing path, with one reference the caller drops with inode_forget(inode, 1):
 * jobs use it so that their work on a file shares the state of the kernel's opens of it.
 */
int inode_get_by_fd(struct tdefs_daemon *daemon, int path_fd, struct tdefs_inode **inode);
/*
 * inode_table_init: before the daemon's first lookup, with daemon->root in place or still to
 * be filled (it points the root at the table). inode_table_clear: at unmount, frees every
 * inode (releasing any state still loaded), closes the handle probe's descriptor and
 * destroys the table's locks; nothing may use the table after it.
 */
void inode_table_init(struct tdefs_daemon *daemon);
void inode_table_clear(struct tdefs_daemon *daemon);
/*
 * visit(inode, context) for every inode whose encryption state is loaded, each called with no
 * lock held and with a reference to the inode and to its state, dropped after the call. 0, or
 * -ENOMEM (nothing visited).
 */
int inode_table_visit_loaded(struct tdefs_daemon *daemon,
			     void (*visit)(struct tdefs_inode *inode, void *context),
			     void *context);
int inode_stat(struct tdefs_daemon *daemon, struct tdefs_inode *inode, struct stat *st);
/* Convert a backing stat into what the mount shows (plaintext size of regular files). */
void stat_to_plaintext(struct stat *st);
/*
 * The inode of a plaintext file now has the backing object open in new_fd (O_PATH) instead:
 * the conversion renamed that object over the old one (fs/encrypt.c), and the kernel's inode,
 * its opens and the lookups from now on all go to it. Called with the namespace lock held
 * exclusively, so no lookup races with the rename. new_fd is consumed.
 */
int inode_retarget(struct tdefs_daemon *daemon, struct tdefs_inode *inode, int new_fd);
/*
 * encrypt.c: the namespace lock. Renames, unlinks, links and lookups hold it shared; the
 * conversion's swap holds it exclusively around its rename, so that the name it replaces is
 * still the file it copied and no lookup sees the object between the rename and the inode's
 * retarget. Not taken under any other lock; under it, the swap takes 3, then 1 (which
 * nothing holds while it waits for 3) and 7.
 */
void namespace_lock_shared(void);
void namespace_unlock(void);
/*
 * encrypt.c: renames that may hide plaintext from a conversion's walk. The rename calls
 * encrypt_note_rename on its source, holding the namespace lock shared, before it renames; the
 * conversion turns the watch on while it walks and goes round again while
 * encrypt_renames_seen (which takes the namespace lock exclusively) changes over a pass.
 */
void encrypt_watch_renames(bool on);
uint64_t encrypt_renames_seen(void);
void encrypt_note_rename(int parent_fd, const char *name);
/*
 * The inode's O_PATH descriptor (>= 0) or -errno (reopened by its file handle if it was not
 * cached: -ESTALE once the backing object is gone). It stays open until the matching
 * inode_fd_put(inode); every use of a descriptor of an inode is between the two.
 */
int inode_fd_get(struct tdefs_inode *inode);
void inode_fd_put(struct tdefs_inode *inode);
/* "/proc/self/fd/N" of a descriptor, for syscalls that take none (N from inode_fd_get). */
void fd_proc_path(int fd, char *buf, size_t len);
/*
 * After an open failed with error (-errno): on -EMFILE close every idle cached descriptor and
 * return true if any was, so that the caller retries once; else false.
 */
bool inode_fd_cache_shrink(struct inode_table *table, int error);
/* Log, once per daemon, an EMFILE/ENFILE (error as -errno; others ignored) with the limit. */
void fd_limit_note(int error);
/* Best-effort backing path for log lines. */
void inode_describe(struct tdefs_inode *inode, char *buf, size_t len);

/* file_keys.c: the shared encryption state of a regular file's inode (inode->crypt). */
int file_crypt_acquire(struct tdefs_daemon *daemon, struct tdefs_inode *inode);
void file_crypt_release(struct tdefs_inode *inode);
/*
 * A plaintext file's shared O_DIRECT descriptor (struct file_crypt, plain_direct_fd), opened
 * once; the caller holds the file_crypt. -EAGAIN when the file is no longer plaintext.
 */
int file_plaintext_direct_open(struct tdefs_inode *inode);
/* Write a fresh header into a just-created, empty backing file. */
int file_write_new_header(struct tdefs_daemon *daemon, int fd);
/*
 * tderekey close --force: wipe the DEKs of the inode's loaded state (the caller holds a
 * reference to it); its requests fail with EIO from then on (struct file_crypt, keys_wiped)
 * until its last user releases it.
 */
void file_crypt_wipe_keys(struct tdefs_inode *inode);

/*
 * An I/O error of the data path, logged with the backing file's path and the errno, once per
 * file and kind of error (ENOSPC, EDQUOT, EIO, EROFS, a format error, any other) so a full
 * disk under a busy database gives one line per file, not one per write. Errors that are the
 * caller's own (EINVAL, EFBIG, EOPNOTSUPP, EINTR, EAGAIN) are not logged. Every other one is
 * counted (tdefs_io_errors_total, fs/metrics.h). Returns ret.
 */
int file_io_error_note(struct tdefs_inode *inode, const char *operation, int ret);

/* The data path (fs/file_io.h) on an inode whose state is acquired. */
static inline int file_read(struct tdefs_inode *inode, int direct_fd, uint64_t offset,
			    size_t size, uint8_t **data, size_t *length)
{
	int ret = file_io_read(inode->crypt, direct_fd, offset, size, data, length);

	if (ret < 0)
		return file_io_error_note(inode, "read", ret);
	metrics_add(&metrics.read_bytes, *length);
	return ret;
}

static inline int file_write(struct tdefs_inode *inode, int direct_fd, const uint8_t *data,
			     size_t size, uint64_t offset)
{
	int ret = file_io_write(inode->crypt, direct_fd, data, size, offset);

	if (ret < 0)
		return file_io_error_note(inode, "write", ret);
	metrics_add(&metrics.written_bytes, size);
	return ret;
}

static inline int file_truncate(struct tdefs_inode *inode, uint64_t new_size)
{
	int ret = file_io_truncate(inode->crypt, new_size);

	return ret < 0 ? file_io_error_note(inode, "truncate", ret) : ret;
}

/* Grow to new_size if the file is shorter (a hole up to it); never shrinks. */
static inline int file_extend(struct tdefs_inode *inode, uint64_t new_size)
{
	int ret = file_io_extend(inode->crypt, new_size);

	return ret < 0 ? file_io_error_note(inode, "extend", ret) : ret;
}

static inline int file_fallocate(struct tdefs_inode *inode, int mode, uint64_t offset,
				 uint64_t length)
{
	int ret = file_io_fallocate(inode->crypt, mode, offset, length);

	return ret < 0 ? file_io_error_note(inode, "fallocate", ret) : ret;
}

static inline int file_lseek(struct tdefs_inode *inode, uint64_t offset, int whence,
			     uint64_t *result)
{
	return file_io_lseek(inode->crypt, offset, whence, result);
}

static inline int file_fsync(struct tdefs_inode *inode, bool data_only)
{
	int ret = file_io_fsync(inode->crypt, data_only);

	return ret < 0 ? file_io_error_note(inode, "fsync", ret) : ret;
}

static inline int file_size(struct tdefs_inode *inode, uint64_t *size)
{
	return file_io_size(inode->crypt, size);
}

/* header_update.c */
struct rewrap_outcome {
	bool rewrapped; /* the header now names the active master key */
	bool skipped;   /* already under it, or no header yet */
	uint8_t old_key_id[MASTER_KEY_ID_SIZE];
};
/*
 * Rewrap one backing file's DEK under the active master key (two synced copy writes). fd is
 * the file open read-write, from a walk (fs/backing_walk.h); it stays open.
 */
int header_rewrap_fd(struct tdefs_daemon *daemon, int fd, struct rewrap_outcome *outcome);

/*
 * Change a header: edit gets the current header and its unsealed DEKs (room for
 * HEADER_MAX_DEKS) under the file's update lock, changes them in place and returns 0 to
 * write, 1 to leave the header as it is, or a negative errno. The result is sealed under the
 * active master key and written over the older copy (and then the other one too with
 * HEADER_UPDATE_BOTH_COPIES, which a header in a data rekey, before or after the edit, always
 * gets), each synced. Returns edit's 1 when nothing was written; -EIO when the two copies
 * disagree in a way no crash leaves them (header_copies_verify), so that no update ever
 * papers over such a file.
 */
typedef int (*header_edit_fn)(struct file_header *header, uint8_t *deks, unsigned *dek_count,
			      const uint8_t *active_key_id, void *context);
#define HEADER_UPDATE_BOTH_COPIES 0x1u
int header_update(struct tdefs_daemon *daemon, int fd, header_edit_fn edit, void *context,
		  unsigned flags);

/*
 * Before a header in a data rekey is trusted: the copy beside the newest one (image holds both,
 * len bytes; slot is the newest's) must be valid and agree with it (header_copies_check), or be
 * damaged. The other copy is unsealed with ring when ring holds its master key, so that its DEKs
 * are compared too; newest_deks may be NULL when the newest was not unsealed. *other_valid says
 * whether the other copy is valid. -EIO with *reason set when the copies disagree (or the other
 * fails its seal), -ENOMEM. Nothing is checked when neither copy is in a data rekey. The caller
 * keeps ring from being replaced meanwhile (tdefs_daemon.keyring_lock).
 */
int header_copies_verify(const struct keyring *ring, const uint8_t *image, size_t len,
			 unsigned slot, const struct file_header *newest, const uint8_t *newest_deks,
			 bool *other_valid, const char **reason);

/* data_rekey.c */
struct rekey_progress_edit {
	uint64_t watermark;
	uint32_t hot_count;                /* 0: no chunk in flight */
	const uint64_t *hot_old_checksums; /* hot_count entries */
};
/* header_edit_fn that records rekey progress (the file must be in a rekey). */
int rekey_edit_progress(struct file_header *header, uint8_t *deks, unsigned *dek_count,
			const uint8_t *active_key_id, void *context);
/*
 * Finish a data rekey step that a crash cut short inside its hot zone: crypt has been loaded
 * (both keys, watermark, header, size) and is not shared yet; the caller holds crypt_lock.
 */
int data_rekey_recover(struct tdefs_daemon *daemon, struct tdefs_inode *inode,
		       struct file_crypt *crypt);

struct file_job_result {
	bool changed;    /* the file was rewrapped / rekeyed */
	bool skipped;    /* nothing to do */
	uint64_t bytes;  /* data bytes rewritten */
};
struct job;
/*
 * Re-encrypt one backing file under a fresh DEK, online. path_fd: an O_PATH descriptor of a
 * regular file from a walk (fs/backing_walk.h), consumed. job_id (NULL for a resume-only pass):
 * a file that carries REKEY_DONE_XATTR with this ID was finished by this job before a stop or
 * a restart and is skipped; a file the call finishes gets it.
 */
int data_rekey_file(struct tdefs_daemon *daemon, struct job *job, int path_fd, bool resume_only,
		    const uint8_t *job_id, struct file_job_result *result);
/* Whether the job with this ID finished the file (its REKEY_DONE_XATTR holds the ID). */
bool data_rekey_done_by(int path_fd, const uint8_t *job_id);
/*
 * The data rekey's record in the backing root (REKEY_JOB_RECORD): written when a job starts
 * (stopped false), marked stopped when it is stopped on request or fails, removed when it has
 * rekeyed everything under its path. read: 0, -ENOENT when there is none, -EPERM when it is not
 * the daemon's own (owner, mode), FORMAT_ERROR(FORMAT_ERR_DAMAGED) when it does not decode.
 */
int data_rekey_record_write(struct tdefs_daemon *daemon, const uint8_t id[REKEY_JOB_ID_SIZE],
			    bool stopped, const char *relative_path, double rate_limit);
int data_rekey_record_remove(struct tdefs_daemon *daemon);
int data_rekey_record_read(struct tdefs_daemon *daemon, uint8_t id[REKEY_JOB_ID_SIZE],
			   bool *stopped, char *path, size_t path_size, double *rate_limit);
/*
 * At mount: go on with the data rekey the record says was running (a crash, an unmount);
 * otherwise only finish the files whose rekey was interrupted.
 */
void data_rekey_resume_recorded(struct tdefs_daemon *daemon);

/*
 * encrypt.c: convert one plaintext file of an adopted directory into an encrypted one, online
 * (docs/REKEY.md, "Encrypting an adopted directory"). path_fd: an O_PATH descriptor of a
 * regular file from a walk, consumed; parent_fd/name: where the walk found it (kept open).
 * Files that are not plaintext are skipped.
 */
int encrypt_file(struct tdefs_daemon *daemon, struct job *job, int parent_fd, const char *name,
		 int path_fd, struct file_job_result *result);
/*
 * jobs.c: a job's record in the backing root, replaced crash-safely (temp, fsync, rename,
 * directory fsync), and read back only when it is the daemon's own regular file (owner, no
 * access for others): -EPERM otherwise, -ENOENT when there is none.
 */
int job_record_replace(struct tdefs_daemon *daemon, const char *name, const char *text,
		       size_t length);
int job_record_read(struct tdefs_daemon *daemon, const char *name, char *text, size_t size,
		    size_t *length);
/* Remember (1) or forget (0) a running conversion in the backing root's job record. */
int encrypt_record_job(struct tdefs_daemon *daemon, bool running, const char *relative_path,
		       double rate_limit);
/* At mount: start the conversion again that the job record says was running. */
void encrypt_resume_recorded(struct tdefs_daemon *daemon);

/* stop.c: SIGTERM, SIGINT and SIGHUP ask for a normal unmount, never a lazy one. */
int stop_handler_start(const char *mount_point, unsigned timeout_seconds);
void stop_handler_end(void);

/* key_rotation.c */
/*
 * Re-read the wallet the daemon was started with; keeps the loaded keys when it cannot.
 * Refused (-EKEYREVOKED) while the keystore is closed: only tderekey open loads keys then.
 */
int keys_reload(struct tdefs_daemon *daemon, char *error, size_t error_len);
/* Held by whoever replaces tdefs_daemon.keyring: keys_reload, keystore_close, keystore_open. */
extern pthread_mutex_t keyring_replace_lock;

/*
 * keystore_close.c: the keystore closed and opened again on a running mount (tderekey close
 * and open). keystore_close wipes the master keys: -EBUSY with a one-line error while files
 * are open or a job runs, unless force, which stops the jobs, wipes the DEKs of open files
 * (fs/file_keys.c: their I/O gets EIO) and the key cache. keystore_open reads the mount's
 * wallet again (password_fd: a descriptor the password is read from, or -1 for an auto-login
 * wallet or the external store, as at mount) and must find the wallet the mount has; a keystore
 * error (KEYSTORE_ERROR) or -errno with a one-line error, and the keystore stays closed. Both
 * return 1 when it already was in the state asked for.
 */
bool keystore_is_closed(void);
/* Moves at every close; read under keyring_lock by a file's load (fs/file_keys.c). */
uint64_t keystore_epoch(void);
int keystore_close(struct tdefs_daemon *daemon, bool force, char *error, size_t error_len);
int keystore_open(struct tdefs_daemon *daemon, int password_fd, char *error, size_t error_len);
int wallet_watch_start(struct tdefs_daemon *daemon);
void wallet_watch_stop(void);

/* key_server.c: a KMIP wallet's servers, unreachable or not (keys_reload reports each try). */
bool key_server_wallet(const struct tdefs_daemon *daemon);
const char *key_server_status(void); /* OPEN or OPEN_UNKNOWN_MASTER_KEY_STATUS */
void key_server_note(struct tdefs_daemon *daemon, int ret, const char *error);
extern unsigned key_server_poll_seconds; /* -o kmip_poll=SECS */
void key_server_start(struct tdefs_daemon *daemon); /* the polling thread, when asked for */
void key_server_stop(void);

/*
 * hsm_heartbeat.c: -o hsm_heartbeat=SECS, an HSM wallet's token asked every SECS and connected
 * again after an outage. While it is out, opens that need the token wait up to
 * HSM_OUTAGE_WAIT_SECONDS and then fail with EIO; key_server_status() says
 * OPEN_UNKNOWN_MASTER_KEY_STATUS.
 */
#define HSM_OUTAGE_WAIT_SECONDS 5
extern unsigned hsm_heartbeat_seconds;
int hsm_heartbeat_option(const char *value, unsigned *seconds, char *error, size_t error_size);
bool hsm_heartbeat_outage(void);   /* the token is known unreachable */
bool hsm_heartbeat_watching(void); /* a heartbeat runs on the mount's token */
void hsm_heartbeat_start(struct tdefs_daemon *daemon);
void hsm_heartbeat_stop(void);

/* jobs.c: the background jobs, one of each kind at a time, both may run at once. */
enum job_kind { JOB_REWRAP, JOB_DATA_REKEY, JOB_ENCRYPT, JOB_KIND_COUNT };
enum job_state { JOB_IDLE, JOB_RUNNING, JOB_PAUSED, JOB_STOPPING, JOB_STOPPED, JOB_DONE,
		 JOB_FAILED };

struct job_status {
	enum job_state state;
	bool resume_only;         /* data rekey: only files whose rekey was interrupted */
	uint64_t files_total;     /* regular files visited so far */
	uint64_t files_changed;   /* rewrapped, or rekeyed */
	uint64_t files_skipped;
	uint64_t files_failed;
	uint64_t bytes_done;      /* data rekey: bytes re-encrypted */
	double rate_limit;        /* rewrap: headers/s; data rekey, encrypt: bytes/s; 0 = none */
	int64_t started, finished; /* Unix seconds */
	char current[512];        /* the file in progress, relative to the backing directory */
	uint64_t current_done, current_total; /* its bytes */
	char last_error[512];
};

/*
 * The daemon's job slots (tdefs_daemon.jobs), one per kind: jobs_init before the mount (0 or
 * -ENOMEM), jobs_end once no thread can reach them any more (after jobs_join_all and the
 * metrics file's thread).
 */
int jobs_init(struct tdefs_daemon *daemon);
void jobs_end(struct tdefs_daemon *daemon);
/* relative_path: a file or directory below the backing directory ("" = all of it). */
int job_start(struct tdefs_daemon *daemon, enum job_kind kind, const char *relative_path,
	      double rate_limit, bool resume_only, char *error, size_t error_len);
void job_stop(struct tdefs_daemon *daemon, enum job_kind kind);
/* A stop asked for by tderekey (not by the unmount): a data rekey is not taken up at mount. */
void job_stop_on_request(struct tdefs_daemon *daemon, enum job_kind kind);
int job_pause(struct tdefs_daemon *daemon, enum job_kind kind, bool pause);
void job_get_status(struct tdefs_daemon *daemon, enum job_kind kind, struct job_status *status);
void jobs_join_all(struct tdefs_daemon *daemon);
const char *job_state_name(enum job_state state);

/* For the per-file workers: */
bool job_should_stop(struct job *job); /* waits while the job is paused */
void job_throttle(struct job *job, uint64_t amount);
void job_set_current(struct job *job, uint64_t done, uint64_t total);

/*
 * check.c: tdefs --check; returns the exit code (0 clean, 1 problems found, CLI_EXIT_BACKING
 * when the tree cannot be walked). With json
 * the findings are one JSON object on stdout (README.md, "Status views"):
 *   {"backing": str, "wallet_checked": bool, "repair": bool,
 *    "problems": [{"path": str, "kind": "DAMAGED"|"REPAIRABLE"|"REPAIRED", "reason": str}],
 *    "keys": [{"key_id": str, "files": int, "in_wallet": bool|null}],
 *    "totals": {"files": int, "empty": int, "plaintext": int, "rekey_in_progress": int,
 *               "problems": int,
 *               "repaired": int},
 *    "complete": bool, "clean": bool}
 * An error that ends the walk (exit 14) prints one line on stderr and no document.
 */
int check_backing(const char *backing, struct keyring *ring, bool repair, bool json);

/*
 * info.c: tdefs --info; the config record and a census of the headers of BACKING, read-only,
 * mounted or not. Returns the exit code (0, or 2 with one line on stderr). Schema in info.c.
 */
int info_backing(const char *backing, bool json);

/*
 * control.c: control_open makes the socket of the mount on mountpoint (after it is mounted,
 * before daemonising: its failure must reach the caller); returns 0 or -errno with a one-line
 * error. control_start starts serving it; control_stop ends that and removes the socket.
 */
int control_open(const char *mountpoint, char *error, size_t error_size);
int control_start(struct tdefs_daemon *daemon);
void control_stop(void);

#endif
