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

/* Stripes of block locks per file: a request locks the stripes of the blocks it touches. */
#define BLOCK_LOCK_STRIPES 64

/*
 * Encryption state of a regular file, present while at least one open (or an internal user
 * such as a truncate without an open file) holds it. Loaded from the header once per file and
 * shared by all opens and hard links, since it belongs to the backing inode.
 */
struct file_crypt {
	int data_fd;            /* backing file, O_RDWR (O_RDONLY on a read-only backing) */
	bool writable;
	struct xts_key *key;    /* the DEK, expanded; wiped by xts_key_free */
	struct file_header header;
	/*
	 * size_lock: shared for I/O inside the current size, exclusive for anything that moves
	 * the size (extending writes, truncate, fallocate); the plaintext size lives under it.
	 */
	pthread_rwlock_t size_lock;
	uint64_t size; /* guarded by size_lock */
	/* Serialise read-modify-write of a block against other I/O on the same block. */
	pthread_rwlock_t block_locks[BLOCK_LOCK_STRIPES];
};

struct tdefs_inode {
	/* Immutable after creation. */
	int path_fd; /* O_PATH descriptor of the backing object */
	dev_t backing_dev;
	ino_t backing_ino;
	mode_t file_type; /* S_IFMT bits */

	/* Guarded by the inode table lock. */
	uint64_t lookup_count;
	struct tdefs_inode *hash_next;

	/* Guarded by crypt_lock: load and release of the encryption state. */
	pthread_mutex_t crypt_lock;
	unsigned crypt_users;
	struct file_crypt *crypt;
	bool load_error_logged;
};

/* One open of a regular file (fuse_file_info.fh). */
struct open_file {
	struct tdefs_inode *inode;
	int direct_fd; /* O_DIRECT backing descriptor for an O_DIRECT open, else -1 */
};

enum cache_mode { CACHE_AUTO, CACHE_NONE };

struct tdefs_daemon {
	char *backing_path;
	char *wallet_path;
	int backing_fd;
	struct tdefs_inode root;
	struct keyring *keyring;
	pthread_rwlock_t keyring_lock; /* the keyring may later be replaced on a key rotation */
	enum cache_mode cache;
	double timeout;
	bool read_only;
	bool debug;
	struct fuse_session *session;
};

extern struct tdefs_daemon daemon_state;
extern const struct fuse_lowlevel_ops tdefs_operations;

/* inode_table.c */
struct tdefs_inode *inode_from_fuse(fuse_ino_t ino);
int inode_lookup(struct tdefs_inode *parent, const char *name, struct fuse_entry_param *entry);
void inode_forget(struct tdefs_inode *inode, uint64_t count);
void inode_table_clear(void);
int inode_stat(struct tdefs_inode *inode, struct stat *st);
/* Convert a backing stat into what the mount shows (plaintext size of regular files). */
void stat_to_plaintext(struct stat *st);
/* "/proc/self/fd/N" of the inode, for syscalls that take no descriptor. */
void inode_proc_path(const struct tdefs_inode *inode, char *buf, size_t len);
/* Best-effort backing path for log lines. */
void inode_describe(const struct tdefs_inode *inode, char *buf, size_t len);

/* file_data.c */
int file_crypt_acquire(struct tdefs_inode *inode);
void file_crypt_release(struct tdefs_inode *inode);
/* Write a fresh header into a just-created, empty backing file. */
int file_write_new_header(int fd);
int file_read(struct tdefs_inode *inode, int direct_fd, uint64_t offset, size_t size,
	      uint8_t **data, size_t *length);
int file_write(struct tdefs_inode *inode, int direct_fd, const uint8_t *data, size_t size,
	       uint64_t offset);
int file_truncate(struct tdefs_inode *inode, uint64_t new_size);
int file_fallocate(struct tdefs_inode *inode, int mode, uint64_t offset, uint64_t length);
int file_lseek(struct tdefs_inode *inode, uint64_t offset, int whence, uint64_t *result);
int file_fsync(struct tdefs_inode *inode, bool data_only);
int file_size(struct tdefs_inode *inode, uint64_t *size);

/* header_update.c */
struct rewrap_outcome {
	bool rewrapped; /* the header now names the active master key */
	bool skipped;   /* already under it, or no header yet */
	uint8_t old_key_id[MASTER_KEY_ID_SIZE];
};
/* Rewrap one backing file's DEK under the active master key (two synced copy writes). */
int header_rewrap_file(int dir_fd, const char *name, struct rewrap_outcome *outcome);

/* key_rotation.c */
/* Re-read the wallet the daemon was started with; keeps the loaded keys when it cannot. */
int keys_reload(char *error, size_t error_len);
int wallet_watch_start(void);
void wallet_watch_stop(void);

enum job_state { JOB_IDLE, JOB_RUNNING, JOB_STOPPING, JOB_STOPPED, JOB_DONE, JOB_FAILED };

struct job_status {
	enum job_state state;
	uint64_t files_total;     /* regular files found so far */
	uint64_t files_rewrapped;
	uint64_t files_skipped;
	uint64_t files_failed;
	double rate_limit;        /* headers per second, 0 = unlimited */
	int64_t started, finished; /* Unix seconds */
	char last_error[256];
};
int rewrap_start(double rate_limit, char *error, size_t error_len);
void rewrap_stop(void);
void rewrap_status(struct job_status *status);
void rewrap_join(void);
const char *job_state_name(enum job_state state);

/* control.c */
int control_start(const char *mountpoint);
void control_stop(void);

#endif
