/*
 * The keys of a file's encryption state: the DEK (and, during a data rekey, the new DEK and the
 * watermark) loaded from the backing file's header, a fresh header for a new file, and the
 * struct file_crypt that all opens and hard links of one backing inode share, counted by
 * file_crypt_acquire/file_crypt_release under the inode's crypt_lock. A header that stopped in
 * the middle of a data rekey's chunk is recovered here before the file is used
 * (data_rekey_recover, fs/data_rekey.c). The data path itself is fs/file_io.c.
 *
 * With the keystore closed (fs/keystore_close.c) the ring holds no master key: a header's DEK
 * then comes only from the key cache of -o key_cache (fs/key_cache.h), which this file fills
 * when it unseals one and starts counting down at the last release; tderekey close --force
 * wipes the DEKs of loaded states here (file_crypt_wipe_keys).
 *
 * Locks (fs/daemon.h, "Lock order"): crypt_lock, then the header update lock (recovery), then
 * keyring_lock, read-only and held only while the MEK is used.
 */
#include "fs/daemon.h"
#include "fs/backing_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static void log_file_error_once(struct tdefs_inode *inode, const char *detail)
{
	char path[512];

	if (inode->load_error_logged)
		return;
	inode->load_error_logged = true;
	inode_describe(inode, path, sizeof(path));
	log_error("%s: %s", path, detail);
}

int file_io_error_note(struct tdefs_inode *inode, const char *operation, int ret)
{
	enum { KIND_NOSPC = 1, KIND_DQUOT = 2, KIND_IO = 4, KIND_ROFS = 8, KIND_FORMAT = 16,
	       KIND_OTHER = 32 };
	unsigned kind;
	char path[512];

	switch (-ret) {
	case EINVAL: case EFBIG: case EOPNOTSUPP: case EINTR: case EAGAIN: case ENXIO:
		return ret;
	case ENOSPC: kind = KIND_NOSPC; break;
	case EDQUOT: kind = KIND_DQUOT; break;
	case EIO: kind = KIND_IO; break;
	case EROFS: kind = KIND_ROFS; break;
	default: kind = ret < -4095 ? KIND_FORMAT : KIND_OTHER; break;
	}
	/* The kind bits in the order of enum metrics_error_kind. */
	metrics_add(&metrics.io_errors[metrics_operation_of(operation)][__builtin_ctz(kind)], 1);
	if (__atomic_fetch_or(&inode->io_errors_logged, kind, __ATOMIC_RELAXED) & kind)
		return ret;
	inode_describe(inode, path, sizeof(path));
	if (ret < -4095)
		log_error("%s %s: %s (reported as EIO; further errors of this kind on this file are "
			  "not logged)", operation, path, format_error_message(ret));
	else
		log_error("%s %s: %s (%s; further %s errors on this file are not logged)", operation,
			  path, strerror(-ret), strerrorname_np(-ret), strerrorname_np(-ret));
	return ret;
}

int file_write_new_header(struct tdefs_daemon *daemon, int fd)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	uint8_t key_id[MASTER_KEY_ID_SIZE];
	struct file_header header;
	uint8_t *dek;
	int ret;

	dek = secure_alloc(DEK_SIZE);
	if (!dek)
		return -ENOMEM;
	ret = crypto_random_bytes(dek, DEK_SIZE);
	if (ret < 0)
		goto out_free_dek;
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	ret = keyring_active(daemon->keyring, key_id, NULL);
	if (ret == 0)
		ret = header_create_keyring(&header, daemon->keyring, key_id, dek);
	if (ret == 0)
		ret = header_build_image_keyring(&header, daemon->keyring, dek, image);
	pthread_rwlock_unlock(&daemon->keyring_lock);
	if (ret == -EHOSTDOWN)
		ret = -EIO; /* the HSM token is out (-o hsm_heartbeat): waited for, not back */
	if (ret < 0)
		goto out_free_dek;
	ret = pwrite_all(fd, image, sizeof(image), 0);
	/* A new file's header is durable before any data can depend on it. */
	if (ret == 0 && fdatasync(fd) < 0)
		ret = -errno;
	if (ret < 0) {
		/* Never leave a half-written header behind (ENOSPC): an empty file is valid. */
		if (ftruncate(fd, 0) < 0)
			log_warning("cannot truncate a backing file after a failed header write: %s",
				    strerror(errno));
	}
out_free_dek:
	secure_free(dek);
	return ret;
}

static int open_backing_data(struct tdefs_daemon *daemon, int path_fd, bool *writable)
{
	int fd;

	/*
	 * backing_reopen() checks that what opens is the inode's regular file: an inode that is
	 * anything else (a device node, a FIFO) is never opened for data, let alone written.
	 */
	*writable = !daemon->read_only;
	fd = backing_reopen(path_fd, *writable ? O_RDWR : O_RDONLY);
	if (inode_fd_cache_shrink(&daemon->inodes, fd))
		fd = backing_reopen(path_fd, *writable ? O_RDWR : O_RDONLY);
	if ((fd == -EACCES || fd == -EROFS) && *writable) {
		*writable = false;
		fd = backing_reopen(path_fd, O_RDONLY);
	}
	fd_limit_note(fd);
	return fd;
}

/*
 * In an adopted directory: a file with this directory's plaintext marker is served as it is
 * (0), one without is encrypted (1: its header is loaded next), whatever either holds; a marker
 * of another directory, or a damaged one, is refused.
 */
static int load_plaintext(const struct tdefs_daemon *daemon, struct tdefs_inode *inode,
			  struct file_crypt *crypt, const struct stat *st)
{
	uint8_t marked_id[16];
	char detail[160];
	int ret = plaintext_marker_read(crypt->data_fd, marked_id);

	if (ret == 0) {
		__atomic_store_n(&inode->plaintext_state, INODE_PLAINTEXT_NO, __ATOMIC_RELEASE);
		return 1;
	}
	if (ret == FORMAT_ERROR(FORMAT_ERR_DAMAGED) ||
	    (ret == 1 && memcmp(marked_id, daemon->directory_id, 16) != 0)) {
		log_file_error_once(inode, ret == 1 ? "plaintext marker of another backing "
						      "directory: file refused"
						    : "damaged plaintext marker: file refused");
		return -EIO;
	}
	if (ret < 0) {
		snprintf(detail, sizeof(detail), "cannot read its plaintext marker: %s",
			 strerror(-ret));
		log_file_error_once(inode, detail);
		return ret;
	}
	if (daemon->require_encrypted) {
		log_file_error_once(inode, "plaintext file refused (-o require_encrypted): convert "
					   "it with 'tderekey encrypt'");
		return -EACCES;
	}
	crypt->plaintext = true;
	crypt->copy_fd = -1;
	crypt->size = (uint64_t)st->st_size;
	__atomic_store_n(&inode->plaintext_state, INODE_PLAINTEXT_YES, __ATOMIC_RELEASE);
	return 0;
}

static int load_file_key(struct tdefs_daemon *daemon, struct tdefs_inode *inode,
			 struct file_crypt *crypt)
{
	uint8_t raw[TDEFS_HEADER_SIZE];
	char key_text[KEY_ID_TEXT_SIZE];
	const char *reason;
	bool other_valid = true, rekeying, from_cache = false;
	unsigned slot;
	struct stat st;
	uint8_t *deks;
	size_t done;
	int ret;

	if (fstat(crypt->data_fd, &st) < 0)
		return -errno;
	if (daemon->adopted) {
		ret = load_plaintext(daemon, inode, crypt, &st);
		if (ret <= 0)
			return ret;
	}
	/* An empty backing file (created by hand, or a create cut short) gets a header now. */
	if (st.st_size == 0 && crypt->writable) {
		ret = file_write_new_header(daemon, crypt->data_fd);
		if (ret < 0)
			return ret;
		st.st_size = TDEFS_HEADER_SIZE;
	}
	if (st.st_size < (off_t)TDEFS_HEADER_SIZE) {
		log_file_error_once(inode, "backing file is shorter than its 4096-byte header");
		return -EIO;
	}
	ret = pread_full(crypt->data_fd, raw, sizeof(raw), 0, &done);
	if (ret < 0)
		return ret;
	ret = header_select(raw, done, &crypt->header, &slot);
	if (ret == FORMAT_ERROR(FORMAT_ERR_NEWER_FORMAT)) {
		log_file_error_once(inode, "header written by a newer tdefs format");
		return -EIO;
	}
	if (ret < 0) {
		log_file_error_once(inode, "damaged header: no usable copy (torn or corrupted, "
					   "or the two copies come from different files)");
		return -EIO;
	}
	deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (!deks)
		return -ENOMEM;
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	/*
	 * -o key_cache: a DEK unwrapped from these very header bytes before (the master key is
	 * not loaded now: tderekey close, or its HSM token is out). A file in a data rekey needs
	 * its header written as it goes and is never served from the cache. Under keyring_lock,
	 * as the epoch: a forced close empties the cache under it (fs/keystore_close.c). While
	 * the token is known out (-o hsm_heartbeat) the cache is asked first, so that a cached
	 * file does not wait for the token at all.
	 */
	rekeying = crypt->header.flags & HEADER_FLAG_REKEY_IN_PROGRESS;
	if (hsm_heartbeat_outage() && !rekeying &&
	    key_cache_get(st.st_dev, st.st_ino, raw, done, key_cache_now(), deks) == 0) {
		ret = 0;
		from_cache = true;
	} else {
		ret = header_unseal_keyring(&crypt->header, daemon->keyring, deks);
		if (ret == 0)
			ret = header_copies_verify(daemon->keyring, raw, done, slot,
						   &crypt->header, deks, &other_valid, &reason);
	}
	if ((ret == -ENOKEY || ret == -EHOSTDOWN) && !rekeying &&
	    key_cache_get(st.st_dev, st.st_ino, raw, done, key_cache_now(), deks) == 0) {
		ret = 0;
		from_cache = true;
	}
	crypt->keystore_epoch = keystore_epoch();
	pthread_rwlock_unlock(&daemon->keyring_lock);
	if (ret == 0 && !from_cache && !rekeying && key_cache_seconds() > 0 &&
	    key_cache_put(st.st_dev, st.st_ino, raw, done, deks) == 0) {
		crypt->cache_pinned = true;
		crypt->cache_dev = st.st_dev;
		crypt->cache_ino = st.st_ino;
	}
	if (ret == -ENOMEM)
		goto out_free_deks;
	if (ret == -EIO) {
		char detail[320];

		snprintf(detail, sizeof(detail),
			 "data rekey state cannot be decided, file refused rather than read under "
			 "a guessed key: %s (tdefs --check lists it)", reason);
		log_file_error_once(inode, detail);
		goto out_free_deks;
	}
	if (ret == 0 && !other_valid && (crypt->header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)) {
		char path[512];

		/* Decidable: every rekey step is in both copies, so this one is at most a step behind. */
		inode_describe(inode, path, sizeof(path));
		log_warning("%s: header copy %u is damaged; the data rekey goes on from copy %u, "
			    "which is the current step or the one before it", path, 1 - slot, slot);
	}
	if (ret == -EHOSTDOWN) {
		/* Not logged per file: the heartbeat said it once for the whole outage. */
		log_debug("tdefs: an open waited %d s for the HSM token, which is unreachable: "
			  "refused with EIO", HSM_OUTAGE_WAIT_SECONDS);
		ret = -EIO;
		goto out_free_deks;
	}
	if (ret == -ENOKEY) {
		char detail[160];

		key_id_format(crypt->header.key_id, key_text);
		if (keystore_is_closed())
			snprintf(detail, sizeof(detail),
				 "the keystore is closed (tderekey open loads master key %s again): "
				 "file refused with ENOKEY", key_text);
		else
			snprintf(detail, sizeof(detail),
				 "header names master key %s, which the wallet does not hold",
				 key_text);
		log_file_error_once(inode, detail);
		goto out_free_deks;
	}
	if (ret < 0) {
		log_file_error_once(inode,
				    "header fails authentication (altered or spliced)");
		ret = -EIO;
		goto out_free_deks;
	}
	ret = xts_key_new(deks, &crypt->key);
	crypt->size = (uint64_t)st.st_size - TDEFS_HEADER_SIZE;
	if (ret == 0 && (crypt->header.flags & HEADER_FLAG_REKEY_IN_PROGRESS)) {
		ret = xts_key_new(deks + DEK_SIZE, &crypt->new_key);
		crypt->watermark = crypt->header.watermark;
		if (ret == 0 && crypt->header.hot_count > 0) {
			if (!crypt->writable) {
				log_file_error_once(inode, "an interrupted data rekey needs recovery; "
							   "mount read-write once to finish it");
				ret = -EIO;
			} else {
				ret = data_rekey_recover(daemon, inode, crypt);
			}
		}
		if (ret < 0) {
			xts_key_free(crypt->key);
			xts_key_free(crypt->new_key);
			crypt->key = crypt->new_key = NULL;
		}
	}
	if (ret < 0 && crypt->cache_pinned) {
		key_cache_unpin(crypt->cache_dev, crypt->cache_ino, key_cache_now());
		crypt->cache_pinned = false;
	}
out_free_deks:
	secure_free(deks);
	return ret;
}

int file_crypt_acquire(struct tdefs_daemon *daemon, struct tdefs_inode *inode)
{
	struct file_crypt *crypt;
	int ret = 0;

	pthread_mutex_lock(&inode->crypt_lock);
	/*
	 * tderekey close --force wiped this state's DEK (the flag only ever turns true): no new
	 * user of it, until the last one has released it and the file loads afresh.
	 */
	if (inode->crypt && __atomic_load_n(&inode->crypt->keys_wiped, __ATOMIC_ACQUIRE)) {
		log_file_error_once(inode, "its DEK was wiped by tderekey close --force: refused "
					   "with ENOKEY until every open of it is closed");
		ret = -ENOKEY;
		goto out_unlock;
	}
	if (inode->crypt) {
		inode->crypt_users++;
		metrics_gauge_add(&metrics.file_users, 1);
		goto out_unlock;
	}
	crypt = calloc(1, sizeof(*crypt));
	if (!crypt) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	crypt->copy_fd = -1;
	crypt->plain_direct_fd = -1;
	ret = inode_fd_get(inode);
	if (ret < 0)
		goto out_free_crypt;
	crypt->data_fd = open_backing_data(daemon, ret, &crypt->writable);
	inode_fd_put(inode);
	if (crypt->data_fd < 0) {
		ret = crypt->data_fd;
		goto out_free_crypt;
	}
	ret = load_file_key(daemon, inode, crypt);
	if (ret < 0 && ret != -EACCES) {
		metrics_add(&metrics.load_errors[ret == -ENOKEY ? METRICS_LOAD_MISSING_KEY
					       : ret == -EIO  ? METRICS_LOAD_DAMAGED
							      : METRICS_LOAD_OTHER], 1);
		goto out_close_data;
	}
	if (ret < 0)
		goto out_close_data;
	file_crypt_locks_init(crypt);
	/*
	 * Published under keyring_lock: tderekey close checks the open files and moves the epoch
	 * under it exclusively, so it either sees this user (and refuses, or with --force wipes
	 * the DEK) or this load sees the new epoch, and a DEK unsealed under a master key wiped
	 * since is not kept.
	 */
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	if (!crypt->plaintext && crypt->keystore_epoch != keystore_epoch()) {
		pthread_rwlock_unlock(&daemon->keyring_lock);
		if (crypt->cache_pinned)
			key_cache_unpin(crypt->cache_dev, crypt->cache_ino, key_cache_now());
		xts_key_free(crypt->key);
		xts_key_free(crypt->new_key);
		secure_wipe(&crypt->header, sizeof(crypt->header));
		file_crypt_locks_destroy(crypt);
		ret = -ENOKEY;
		goto out_close_data;
	}
	inode->crypt = crypt;
	inode->crypt_users = 1;
	metrics_gauge_add(&metrics.file_users, 1);
	metrics_gauge_add(&metrics.deks_loaded, 1);
	pthread_rwlock_unlock(&daemon->keyring_lock);
	inode->load_error_logged = false;
	goto out_unlock;

out_close_data:
	close(crypt->data_fd);
out_free_crypt:
	free(crypt);
out_unlock:
	pthread_mutex_unlock(&inode->crypt_lock);
	return ret;
}

void file_crypt_release(struct tdefs_inode *inode)
{
	struct file_crypt *crypt;

	pthread_mutex_lock(&inode->crypt_lock);
	if (inode->crypt_users == 0) {
		pthread_mutex_unlock(&inode->crypt_lock);
		return;
	}
	metrics_gauge_add(&metrics.file_users, -1);
	if (--inode->crypt_users > 0) {
		pthread_mutex_unlock(&inode->crypt_lock);
		return;
	}
	metrics_gauge_add(&metrics.deks_loaded, -1);
	crypt = inode->crypt;
	inode->crypt = NULL;
	pthread_mutex_unlock(&inode->crypt_lock);

	/*
	 * The last user is gone: the DEK leaves memory (xts_key_free cleanses it); with -o
	 * key_cache its copy in the cache starts its SECS now.
	 */
	if (crypt->cache_pinned)
		key_cache_unpin(crypt->cache_dev, crypt->cache_ino, key_cache_now());
	xts_key_free(crypt->key);
	xts_key_free(crypt->new_key);
	xts_key_free(crypt->copy_key);
	if (crypt->plain_direct_fd >= 0)
		close(crypt->plain_direct_fd);
	close(crypt->data_fd);
	file_crypt_locks_destroy(crypt);
	secure_wipe(&crypt->header, sizeof(crypt->header));
	free(crypt);
}

void file_crypt_wipe_keys(struct tdefs_inode *inode)
{
	struct file_crypt *crypt = inode->crypt;

	/* Exclusive: every request in flight on the file has finished, none starts meanwhile. */
	pthread_rwlock_wrlock(&crypt->size_lock);
	if (!crypt->plaintext && !crypt->keys_wiped) {
		xts_key_free(crypt->key);
		xts_key_free(crypt->new_key);
		crypt->key = crypt->new_key = NULL;
		__atomic_store_n(&crypt->keys_wiped, true, __ATOMIC_RELEASE);
	}
	pthread_rwlock_unlock(&crypt->size_lock);
}

/*
 * The shared O_DIRECT descriptor of a plaintext file (struct file_crypt, plain_direct_fd),
 * opened on the object data_fd holds, never by name. -EAGAIN: the file is encrypted now, and
 * the caller opens its own descriptor as for any encrypted file.
 */
int file_plaintext_direct_open(struct tdefs_inode *inode)
{
	struct file_crypt *crypt = inode->crypt;
	int expected = -1, fd, ret = 0;

	pthread_rwlock_rdlock(&crypt->size_lock);
	if (!crypt->plaintext) {
		ret = -EAGAIN;
	} else if (__atomic_load_n(&crypt->plain_direct_fd, __ATOMIC_ACQUIRE) < 0) {
		fd = backing_reopen(crypt->data_fd, (crypt->writable ? O_RDWR : O_RDONLY) | O_DIRECT);
		if (fd < 0)
			ret = fd;
		else if (!__atomic_compare_exchange_n(&crypt->plain_direct_fd, &expected, fd, false,
						      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			close(fd);
	}
	pthread_rwlock_unlock(&crypt->size_lock);
	return ret;
}
