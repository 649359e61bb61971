/*
 * tdefs --rebind: a backing directory records the wallet it was made for (.tdefs.conf), so a
 * copy taken to another host is refused by that host's wallet even after the keys it needs were
 * imported there. Rebinding rewrites that record, and only after proof: every valid header copy
 * of every file (the current one and the older fallback, which a rewrap cut short may have left
 * under another key) must unseal, with all its DEK slots (two during a data rekey), under a key
 * of the new wallet. Anything less changes nothing and names each file and each key ID the
 * wallet lacks, because a directory bound to a wallet that cannot open some of its files would
 * only fail later, file by file, inside a database.
 *
 * The tree is walked by descriptor (fs/backing_walk.h) as root, and the record is replaced with
 * write_file_atomic() (temporary file, fsync, rename, directory fsync): after a crash the
 * directory is bound to the old wallet or the new one, never to half of each.
 */
#include "fs/rebind.h"
#include "fs/backing_walk.h"
#include "fs/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/wallet.h"
#include "util/util.h"

/* Files named one by one; past this only counted (the key list below is always whole). */
#define REBIND_FILES_NAMED 20

struct missing_key {
	uint8_t id[MASTER_KEY_ID_SIZE];
	uint64_t files;
};

struct rebind_proof {
	const struct keyring *ring;
	const char *backing;
	uint8_t *deks; /* secure memory: HEADER_WRAPPED_KEYS_SIZE */
	uint64_t files, headers, problems;
	struct missing_key *missing;
	size_t missing_count;
};

static void problem(struct rebind_proof *proof, const char *relative, const char *what)
{
	if (proof->problems++ < REBIND_FILES_NAMED)
		fprintf(stderr, "tdefs: --rebind %s: %s: %s\n", proof->backing, relative, what);
}

static int note_missing(struct rebind_proof *proof, const uint8_t id[MASTER_KEY_ID_SIZE])
{
	struct missing_key *grown;

	for (size_t i = 0; i < proof->missing_count; i++) {
		if (memcmp(proof->missing[i].id, id, MASTER_KEY_ID_SIZE) == 0) {
			proof->missing[i].files++;
			return 0;
		}
	}
	grown = realloc(proof->missing, (proof->missing_count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	proof->missing = grown;
	memcpy(grown[proof->missing_count].id, id, MASTER_KEY_ID_SIZE);
	grown[proof->missing_count].files = 1;
	proof->missing_count++;
	return 0;
}

/* One header copy: its key must be in the wallet and must open it (every DEK slot). */
static int prove_copy(struct rebind_proof *proof, const char *relative,
		      const struct file_header *header, const char *which)
{
	char id[KEY_ID_TEXT_SIZE], what[160];
	int ret;

	key_id_format(header->key_id, id);
	proof->headers++;
	if (!keyring_holds(proof->ring, header->key_id)) {
		snprintf(what, sizeof(what), "%s header copy is sealed under key %s, not in the wallet",
			 which, id);
		problem(proof, relative, what);
		return note_missing(proof, header->key_id);
	}
	ret = header_unseal_keyring(header, proof->ring, proof->deks);
	secure_wipe(proof->deks, HEADER_WRAPPED_KEYS_SIZE);
	if (ret < 0) {
		/* Same ID, other bytes: the wallet holds another key under this ID. */
		snprintf(what, sizeof(what),
			 "%s header copy does not unseal under the wallet's key %s (another key "
			 "with the same ID?)",
			 which, id);
		problem(proof, relative, what);
		return note_missing(proof, header->key_id);
	}
	return 0;
}

static int visit(const struct backing_walk_entry *entry, bool *fd_taken, void *context)
{
	struct rebind_proof *proof = context;
	uint8_t image[TDEFS_HEADER_SIZE];
	struct file_header copies[HEADER_COPY_COUNT];
	bool valid[HEADER_COPY_COUNT];
	char what[96];
	size_t done;
	int ret;

	(void)fd_taken;
	if (entry->kind == BACKING_WALK_ERROR) {
		snprintf(what, sizeof(what), "cannot be read: %s", strerror(entry->error));
		problem(proof, entry->relative[0] ? entry->relative : ".", what);
		return 0;
	}
	/* A plaintext file of an adopted directory has no header to rewrap, whatever it holds. */
	if (config_reserved_name(entry->relative) || plaintext_marker_read(entry->fd, NULL) == 1)
		return 0;
	proof->files++;
	if (entry->st.st_size == 0)
		return 0; /* no header yet: nothing to open */
	memset(image, 0, sizeof(image));
	ret = pread_full(entry->fd, image, sizeof(image), 0, &done);
	if (ret < 0) {
		snprintf(what, sizeof(what), "cannot be read: %s", strerror(-ret));
		problem(proof, entry->relative, what);
		return 0;
	}
	for (unsigned slot = 0; slot < HEADER_COPY_COUNT; slot++)
		valid[slot] = header_copy_decode(image + slot * HEADER_COPY_SIZE, &copies[slot]) == 0;
	if (!valid[0] && !valid[1]) {
		problem(proof, entry->relative,
			"no valid header copy (damaged, or from a newer format): nothing can be "
			"proved; see tdefs --check");
		return 0;
	}
	for (unsigned slot = 0; slot < HEADER_COPY_COUNT; slot++) {
		if (!valid[slot])
			continue;
		ret = prove_copy(proof, entry->relative, &copies[slot],
				 slot == 0 ? "first" : "second");
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int read_config_at(int root_fd, const char *backing, struct backing_config *config)
{
	uint8_t data[CONFIG_FILE_SIZE + 1];
	size_t done = 0;
	int fd, ret;

	fd = openat(root_fd, CONFIG_FILE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "tdefs: --rebind %s: cannot open %s: %s%s\n", backing,
			CONFIG_FILE_NAME, strerror(-ret),
			ret == -ENOENT ? " (not a tdefs backing directory)" : "");
		return ret;
	}
	ret = pread_full(fd, data, sizeof(data), 0, &done);
	close(fd);
	if (ret == 0)
		ret = config_decode(data, done, config);
	if (ret < 0)
		fprintf(stderr, "tdefs: --rebind %s: %s is damaged or from a newer tdefs\n", backing,
			CONFIG_FILE_NAME);
	return ret;
}

int rebind_backing(int root_fd, const char *backing, const char *resolved, struct keyring *ring,
		   const char *wallet, const char *container)
{
	struct rebind_proof proof = { .ring = ring, .backing = backing };
	char old_id[KEY_ID_TEXT_SIZE], new_id[KEY_ID_TEXT_SIZE], id[KEY_ID_TEXT_SIZE];
	struct backing_config config;
	uint8_t encoded[CONFIG_FILE_SIZE];
	char path[PATH_MAX];
	int ret = 1, walked;

	if (read_config_at(root_fd, backing, &config) < 0)
		return 1;
	proof.deks = secure_alloc(HEADER_WRAPPED_KEYS_SIZE);
	if (!proof.deks) {
		fprintf(stderr, "tdefs: --rebind %s: out of locked memory\n", backing);
		return 1;
	}
	walked = backing_walk(root_fd, "", O_RDONLY, visit, &proof);
	if (walked < 0) {
		fprintf(stderr, "tdefs: --rebind %s: cannot walk it: %s; nothing changed\n", backing,
			strerror(-walked));
		goto out;
	}
	if (proof.problems) {
		if (proof.problems > REBIND_FILES_NAMED)
			fprintf(stderr, "tdefs: --rebind %s: ... and %llu more\n", backing,
				(unsigned long long)(proof.problems - REBIND_FILES_NAMED));
		for (size_t i = 0; i < proof.missing_count; i++) {
			key_id_format(proof.missing[i].id, id);
			fprintf(stderr,
				"tdefs: --rebind %s: wallet %s lacks key %s (%llu header cop%s)\n",
				backing, wallet, id, (unsigned long long)proof.missing[i].files,
				proof.missing[i].files == 1 ? "y" : "ies");
		}
		fprintf(stderr,
			"tdefs: --rebind %s: refused, %llu problem%s: nothing changed (import the "
			"keys with 'tdekey export --used-by' and 'tdekey import', then rebind)\n",
			backing, (unsigned long long)proof.problems, proof.problems == 1 ? "" : "s");
		goto out;
	}
	key_id_format(config.wallet_id, old_id);
	keyring_wallet_id(ring, config.wallet_id);
	key_id_format(config.wallet_id, new_id);
	if (container)
		snprintf(config.container, sizeof(config.container), "%s", container);
	snprintf(path, sizeof(path), "%s/%s", resolved, CONFIG_FILE_NAME);
	ret = config_encode(&config, encoded);
	if (ret == 0)
		ret = write_file_atomic(path, encoded, sizeof(encoded), 0600);
	if (ret < 0) {
		fprintf(stderr, "tdefs: --rebind %s: cannot write %s: %s; still bound to wallet ID %s\n",
			backing, path, strerror(-ret), old_id);
		ret = 1;
		goto out;
	}
	printf("tdefs: %s is bound to wallet %s (wallet ID %s, was %s), container %s: %llu "
	       "file%s, %llu header cop%s proved\n",
	       backing, wallet, new_id, old_id, config.container, (unsigned long long)proof.files,
	       proof.files == 1 ? "" : "s", (unsigned long long)proof.headers,
	       proof.headers == 1 ? "y" : "ies");
	if (!keyring_has_container(ring, config.container))
		printf("tdefs: note: wallet %s holds no key of container %s yet; before mounting "
		       "read-write: tdekey set-key --wallet %s --container %s\n",
		       wallet, config.container, wallet, config.container);
	ret = 0;
out:
	secure_free(proof.deks);
	free(proof.missing);
	return ret;
}
