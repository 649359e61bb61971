/*
 * The one path that rewrites an existing file's header: master-key rewrap, and the start,
 * progress and end of a data rekey. Updates to one file are serialised by a striped lock keyed
 * on the backing inode, so two jobs (a rewrap and a data rekey may run at once) never interleave
 * their writes, and each update starts from the header as it is on disk.
 *
 * Readers need no lock. A copy is written only over the older of the two copies, and synced
 * before anything else depends on it, so a reader, or a crash, always finds the newest whole
 * copy to be a complete state. Updates that must leave no trace of the previous state (a rewrap,
 * which must leave no DEK under the old master key) then write the other copy too, and so does
 * every update of a header in a data rekey (begin, each chunk's progress, recovery, finish): a
 * rekey step lives in both copies before the data it describes is written, so that losing
 * either copy at any instant (a latent sector error, a bit flip) leaves a copy that is the
 * current step or the one before it, and both are correct (docs/REKEY.md, "Damaged header
 * copies").
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define HEADER_UPDATE_STRIPES 64

static pthread_mutex_t update_locks[HEADER_UPDATE_STRIPES];
static pthread_once_t update_locks_once = PTHREAD_ONCE_INIT;

static void update_locks_init(void)
{
	for (unsigned i = 0; i < HEADER_UPDATE_STRIPES; i++)
		pthread_mutex_init(&update_locks[i], NULL);
}

static pthread_mutex_t *update_lock_for(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15)) ^ (uint64_t)dev;

	pthread_once(&update_locks_once, update_locks_init);
	return &update_locks[(h >> 40) % HEADER_UPDATE_STRIPES];
}

static int read_header(int fd, uint8_t image[TDEFS_HEADER_SIZE], size_t *done,
		       struct file_header *header, unsigned *slot)
{
	int ret;

	/* A create in flight may be writing this header right now: look again before failing. */
	for (int attempt = 0; attempt < 3; attempt++) {
		ret = pread_full(fd, image, TDEFS_HEADER_SIZE, 0, done);
		if (ret < 0)
			return ret;
		ret = header_select(image, *done, header, slot);
		if (ret != FORMAT_ERROR(FORMAT_ERR_DAMAGED))
			return ret;
		usleep(10000);
	}
	return ret;
}

int header_copies_verify(const struct keyring *ring, const uint8_t *image, size_t len,
			 unsigned slot, const struct file_header *newest, const uint8_t *newest_deks,
			 bool *other_valid, const char **reason)
{
	struct file_header other;
	uint8_t *other_deks;
	int ret;

	*reason = NULL;
	*other_valid = len >= TDEFS_HEADER_SIZE &&
		       header_copy_decode(image + (1 - slot) * HEADER_COPY_SIZE, &other) == 0;
	if (!*other_valid ||
	    !((newest->flags | other.flags) & HEADER_FLAG_REKEY_IN_PROGRESS))
		return 0;
	other_deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (!other_deks)
		return -ENOMEM;
	ret = ring ? header_unseal_keyring(&other, ring, other_deks) : -ENOKEY;
	if (ret == FORMAT_ERROR(FORMAT_ERR_AUTHENTICATION)) {
		/* A copy with a good checksum and a bad seal was altered: nothing it says counts. */
		*reason = "the other header copy fails authentication (altered or spliced)";
	} else if (ret == 0 || ret == -ENOKEY) {
		header_copies_check(newest, newest_deks, &other, ret == 0 ? other_deks : NULL,
				    reason);
		ret = 0;
	}
	secure_free(other_deks);
	if (*reason)
		return -EIO;
	return ret;
}

/* Seal next under the ring's key, give it the sequence, write it into slot and sync. */
static int write_copy(int fd, struct file_header *next, uint64_t sequence, unsigned slot,
		      const struct keyring *ring, const uint8_t *key_id, const uint8_t *deks,
		      unsigned dek_count)
{
	uint8_t copy[HEADER_COPY_SIZE];
	int ret;

	next->sequence = sequence;
	ret = header_seal_keyring(next, ring, key_id, deks, dek_count);
	if (ret == 0)
		ret = header_copy_encode(next, copy);
	if (ret == 0)
		ret = pwrite_all(fd, copy, sizeof(copy), (off_t)slot * HEADER_COPY_SIZE);
	if (ret == 0 && fdatasync(fd) < 0)
		ret = -errno;
	return ret;
}

int header_update(struct tdefs_daemon *daemon, int fd, header_edit_fn edit, void *context,
		  unsigned flags)
{
	uint8_t active_id[MASTER_KEY_ID_SIZE], image[TDEFS_HEADER_SIZE];
	struct file_header header, next;
	pthread_mutex_t *lock;
	unsigned slot, dek_count;
	const char *reason;
	bool other_valid;
	uint8_t *deks;
	struct stat st;
	size_t done;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (!deks)
		return -ENOMEM;
	lock = update_lock_for(st.st_dev, st.st_ino);
	pthread_mutex_lock(lock);
	ret = read_header(fd, image, &done, &header, &slot);
	if (ret < 0)
		goto out_unlock;
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	ret = keyring_active(daemon->keyring, active_id, NULL);
	if (ret < 0)
		goto out_unlock_keyring;
	ret = header_unseal_keyring(&header, daemon->keyring, deks);
	if (ret < 0)
		goto out_unlock_keyring;
	/* Both copies are about to be rewritten from the newest: never from a state not decided. */
	ret = header_copies_verify(daemon->keyring, image, done, slot, &header, deks,
				   &other_valid, &reason);
	if (ret < 0)
		goto out_unlock_keyring;
	next = header;
	dek_count = header.wrapped_length / DEK_SIZE;
	ret = edit(&next, deks, &dek_count, active_id, context);
	if (ret != 0) /* 1: nothing to change */
		goto out_unlock_keyring;
	if ((header.flags | next.flags) & HEADER_FLAG_REKEY_IN_PROGRESS)
		flags |= HEADER_UPDATE_BOTH_COPIES;
	/* Every update is sealed under the active master key: it rewraps as a side effect. */
	ret = write_copy(fd, &next, header.sequence + 1, 1 - slot, daemon->keyring,
			 active_id, deks, dek_count);
	fault_point("header-update:first-copy-synced");
	if (ret == 0 && (flags & HEADER_UPDATE_BOTH_COPIES))
		ret = write_copy(fd, &next, header.sequence + 2, slot, daemon->keyring,
				 active_id, deks, dek_count);
	fault_point("header-update:second-copy-synced");
out_unlock_keyring:
	pthread_rwlock_unlock(&daemon->keyring_lock);
out_unlock:
	pthread_mutex_unlock(lock);
	secure_free(deks);
	return ret;
}

struct rewrap_context {
	struct rewrap_outcome *outcome;
	bool force; /* the older copy is not under the active key: rewrite even if the newest is */
};

static int edit_rewrap(struct file_header *header, uint8_t *deks, unsigned *dek_count,
		       const uint8_t *active_id, void *context)
{
	struct rewrap_context *rewrap = context;

	(void)deks;
	(void)dek_count;
	memcpy(rewrap->outcome->old_key_id, header->key_id, MASTER_KEY_ID_SIZE);
	if (memcmp(header->key_id, active_id, MASTER_KEY_ID_SIZE) == 0 && !rewrap->force) {
		rewrap->outcome->skipped = true;
		return 1;
	}
	return 0;
}

/*
 * True when both valid header copies already name the active master key. The newest copy alone
 * is not enough: a rewrap cut short between its two copy writes leaves the older copy under the
 * old key, and only rewriting it lets that key be deleted one day.
 */
static bool both_copies_current(struct tdefs_daemon *daemon, int fd)
{
	uint8_t image[TDEFS_HEADER_SIZE], active_id[MASTER_KEY_ID_SIZE];
	size_t done;
	bool current = true;

	if (pread_full(fd, image, sizeof(image), 0, &done) < 0)
		return false;
	pthread_rwlock_rdlock(&daemon->keyring_lock);
	if (keyring_active(daemon->keyring, active_id, NULL) < 0)
		current = false;
	pthread_rwlock_unlock(&daemon->keyring_lock);
	for (unsigned i = 0; i < HEADER_COPY_COUNT && current; i++) {
		struct file_header copy;

		if (done < (i + 1) * HEADER_COPY_SIZE ||
		    header_copy_decode(image + i * HEADER_COPY_SIZE, &copy) < 0 ||
		    memcmp(copy.key_id, active_id, MASTER_KEY_ID_SIZE) != 0)
			current = false;
	}
	return current;
}

int header_rewrap_fd(struct tdefs_daemon *daemon, int fd, struct rewrap_outcome *outcome)
{
	struct rewrap_context context = { outcome, false };
	struct stat st;
	int ret;

	memset(outcome, 0, sizeof(*outcome));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL; /* the walk hands over regular files only: never write anything else */
	/* A plaintext file is data, whatever its first bytes look like: never a header to write. */
	if (st.st_size == 0 || plaintext_marker_read(fd, NULL) == 1) {
		outcome->skipped = true; /* no header yet: it will be made under the active key */
		return 0;
	}
	/*
	 * Both copies: the older slot first (until it is synced the newest copy is still the old
	 * header under the old key, which the wallet keeps), then the other, so that no copy under
	 * the old key remains and the old key can one day be deleted.
	 */
	context.force = !both_copies_current(daemon, fd);
	ret = header_update(daemon, fd, edit_rewrap, &context, HEADER_UPDATE_BOTH_COPIES);
	if (ret == 0 && !outcome->skipped)
		outcome->rewrapped = true;
	if (ret == 1)
		ret = 0;
	return ret;
}
