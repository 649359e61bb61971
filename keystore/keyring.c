/*
 * The key ring: every MEK a wallet holds, historical ones included, in creation order. Records
 * (and so the MEKs) live in one secure_alloc() array that is wiped when it grows or is freed.
 * Keys are only ever appended: rotation retires the previous active key and never drops it,
 * because headers wrapped under it must keep opening.
 *
 * Each container has at most one ACTIVE key. The ring's own container (the wallet's, stored in
 * its payload header) is where a fresh ring works; keyring_select_container() points the ring
 * at another one (united mode: one wallet, a key set per container), and that selected
 * container is the one keyring_active() answers for and keyring_generate() adds keys to. The
 * selection is the process's view only: it is never written to the wallet file. A ring read from a file remembers the kind of that file, so that a
 * running daemon re-reads the kind it mounted with; keyring_merge() is how it takes in what it
 * re-read without ever losing a key it holds.
 */
#include "keystore/wallet_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/keystore_kind.h"

struct keyring {
	uint8_t wallet_id[KEY_ID_SIZE];
	enum wallet_kind source_kind; /* 0 for a ring not read from a file */
	char container[WALLET_CONTAINER_MAX + 1];
	char selected[WALLET_CONTAINER_MAX + 1]; /* keyring_select_container(); container at first */
	uint64_t generation;
	size_t count;
	size_t capacity;
	struct mek_record *records; /* secure memory */
	/*
	 * The tokens that hold the keys marked on_token (each record names its slot): an HSM
	 * wallet's own in slot 0, then those of the wallets it links. None for file wallets.
	 */
	struct keyring_token {
		const struct keystore_token_ops *ops;
		struct keystore_token *token;
	} tokens[KEYRING_MAX_TOKENS];
	size_t token_count;
};

int keyring_new(const uint8_t wallet_id[KEY_ID_SIZE], const char *container, struct keyring **out)
{
	struct keyring *ring;

	if (!wallet_container_valid(container))
		return -EINVAL;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	memcpy(ring->wallet_id, wallet_id, KEY_ID_SIZE);
	strcpy(ring->container, container);
	strcpy(ring->selected, container);
	*out = ring;
	return 0;
}

int keyring_new_closed(const struct keyring *ring, struct keyring **out)
{
	struct keyring *closed = calloc(1, sizeof(*closed));

	if (!closed)
		return -ENOMEM;
	memcpy(closed->wallet_id, ring->wallet_id, KEY_ID_SIZE);
	memcpy(closed->container, ring->container, sizeof(closed->container));
	memcpy(closed->selected, ring->selected, sizeof(closed->selected));
	closed->source_kind = ring->source_kind;
	closed->generation = ring->generation;
	*out = closed;
	return 0;
}

void keyring_free(struct keyring *ring)
{
	if (!ring)
		return;
	secure_free(ring->records);
	for (size_t i = 0; i < ring->token_count; i++)
		ring->tokens[i].ops->release(ring->tokens[i].token);
	free(ring);
}

void keyring_attach_token(struct keyring *ring, const struct keystore_token_ops *ops,
			  struct keystore_token *token)
{
	if (ring->token_count)
		ring->tokens[0].ops->release(ring->tokens[0].token);
	ring->tokens[0].ops = ops;
	ring->tokens[0].token = token;
	if (!ring->token_count)
		ring->token_count = 1;
}

struct keystore_token *keyring_token_of(const struct keyring *ring,
					const struct keystore_token_ops **ops)
{
	if (ops)
		*ops = ring->token_count ? ring->tokens[0].ops : NULL;
	return ring->token_count ? ring->tokens[0].token : NULL;
}

/* Take a reference on each of from's tokens into ring; *base gets the slot of from's first. */
static int adopt_tokens(struct keyring *ring, const struct keyring *from, size_t *base)
{
	if (ring->token_count + from->token_count > KEYRING_MAX_TOKENS)
		return -E2BIG;
	*base = ring->token_count;
	for (size_t i = 0; i < from->token_count; i++) {
		ring->tokens[ring->token_count].ops = from->tokens[i].ops;
		ring->tokens[ring->token_count].token =
			from->tokens[i].ops->retain(from->tokens[i].token);
		ring->token_count++;
	}
	return 0;
}


static int keyring_reserve(struct keyring *ring, size_t wanted)
{
	struct mek_record *grown;
	size_t capacity;

	if (wanted <= ring->capacity)
		return 0;
	if (wanted > WALLET_MAX_KEYS)
		return KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL);
	capacity = ring->capacity ? ring->capacity * 2 : 8;
	if (capacity < wanted)
		capacity = wanted;
	if (capacity > WALLET_MAX_KEYS)
		capacity = WALLET_MAX_KEYS;
	grown = secure_alloc(capacity * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	if (ring->count)
		memcpy(grown, ring->records, ring->count * sizeof(*grown));
	secure_free(ring->records); /* wipes the old copy of every MEK */
	ring->records = grown;
	ring->capacity = capacity;
	return 0;
}

static struct mek_record *find_record(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	for (size_t i = 0; i < ring->count; i++)
		if (memcmp(ring->records[i].id, id, KEY_ID_SIZE) == 0)
			return &ring->records[i];
	return NULL;
}

int keyring_append(struct keyring *ring, const struct mek_record *record)
{
	int ret;

	if (find_record(ring, record->id))
		return -EEXIST;
	ret = keyring_reserve(ring, ring->count + 1);
	if (ret < 0)
		return ret;
	ring->records[ring->count++] = *record;
	return 0;
}

const struct mek_record *keyring_record(const struct keyring *ring, size_t index)
{
	return index < ring->count ? &ring->records[index] : NULL;
}

size_t keyring_count(const struct keyring *ring)
{
	return ring->count;
}

uint64_t keyring_generation(const struct keyring *ring)
{
	return ring->generation;
}

void keyring_set_generation(struct keyring *ring, uint64_t generation)
{
	ring->generation = generation;
}

enum wallet_kind keyring_source_kind(const struct keyring *ring)
{
	return ring->source_kind;
}

void keyring_set_source_kind(struct keyring *ring, enum wallet_kind kind)
{
	ring->source_kind = kind;
}

const char *keyring_source_kind_name(const struct keyring *ring)
{
	return ring->source_kind ? wallet_kind_name(ring->source_kind) : "NONE";
}

void keyring_wallet_id(const struct keyring *ring, uint8_t id[KEY_ID_SIZE])
{
	memcpy(id, ring->wallet_id, KEY_ID_SIZE);
}

const char *keyring_container(const struct keyring *ring)
{
	return ring->container;
}

const uint8_t *keyring_find(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	const struct mek_record *record = find_record(ring, id);

	/* A key on a token has no bytes here: the token seals and opens under it. */
	return record && !record->on_token ? record->mek : NULL;
}

bool keyring_holds(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	return find_record(ring, id) != NULL;
}

bool keyring_key_on_token(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE])
{
	const struct mek_record *record = find_record(ring, id);

	return record && record->on_token;
}

/* The token that holds the key, or NULL. */
static const struct keyring_token *token_for(const struct keyring *ring,
					     const uint8_t id[KEY_ID_SIZE])
{
	const struct mek_record *record = find_record(ring, id);

	if (!record || !record->on_token || record->token_slot >= ring->token_count)
		return NULL;
	return &ring->tokens[record->token_slot];
}

int keyring_token_seal(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE],
		       const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		       const uint8_t *plain, size_t len, uint8_t *cipher, uint8_t tag[16])
{
	const struct keyring_token *holder = token_for(ring, id);

	if (!holder)
		return -ENOKEY;
	return holder->ops->seal(holder->token, id, nonce, aad, aad_len, plain, len, cipher, tag);
}

int keyring_token_open(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE],
		       const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		       const uint8_t *cipher, size_t len, const uint8_t tag[16], uint8_t *plain)
{
	const struct keyring_token *holder = token_for(ring, id);

	if (!holder)
		return -ENOKEY;
	return holder->ops->open(holder->token, id, nonce, aad, aad_len, cipher, len, tag, plain);
}

int keyring_after_fork(struct keyring *ring, char error[KEYSTORE_ERROR_SIZE])
{
	int ret = 0;

	for (size_t i = 0; i < ring->token_count && ret == 0; i++)
		ret = ring->tokens[i].ops->after_fork(ring->tokens[i].token, error);
	return ret;
}

int keyring_token_watch(const struct keyring *ring, unsigned wait_ms)
{
	for (size_t i = 0; i < ring->token_count; i++)
		ring->tokens[i].ops->watch(ring->tokens[i].token, wait_ms);
	return ring->token_count ? 0 : -ENODEV;
}

int keyring_token_check(const struct keyring *ring, char error[KEYSTORE_ERROR_SIZE])
{
	int ret = 0;

	for (size_t i = 0; i < ring->token_count && ret == 0; i++)
		ret = ring->tokens[i].ops->check(ring->tokens[i].token, error);
	return ret;
}

int keyring_token_reconnect(const struct keyring *ring, char error[KEYSTORE_ERROR_SIZE])
{
	int ret = 0;

	for (size_t i = 0; i < ring->token_count && ret == 0; i++)
		ret = ring->tokens[i].ops->reconnect(ring->tokens[i].token, error);
	return ret;
}

const char *keyring_selected_container(const struct keyring *ring)
{
	return ring->selected;
}

int keyring_select_container(struct keyring *ring, const char *container)
{
	if (!wallet_container_valid(container))
		return -EINVAL;
	memset(ring->selected, 0, sizeof(ring->selected));
	strcpy(ring->selected, container);
	return 0;
}

bool keyring_has_container(const struct keyring *ring, const char *container)
{
	if (strcmp(ring->container, container) == 0)
		return true;
	for (size_t i = 0; i < ring->count; i++)
		if (strcmp(ring->records[i].container, container) == 0)
			return true;
	return false;
}

size_t keyring_containers(const struct keyring *ring, const char **names, size_t max)
{
	size_t count = 0;

	for (size_t i = 0; i <= ring->count; i++) {
		const char *name = i == 0 ? ring->container : ring->records[i - 1].container;
		size_t j;

		for (j = 0; j < count && j < max; j++)
			if (strcmp(names[j], name) == 0)
				break;
		if (j < count)
			continue;
		if (count < max)
			names[count] = name;
		count++;
	}
	return count;
}

static struct mek_record *active_record(const struct keyring *ring, const char *container)
{
	for (size_t i = 0; i < ring->count; i++)
		if (ring->records[i].state == MEK_STATE_ACTIVE &&
		    strcmp(ring->records[i].container, container) == 0)
			return &ring->records[i];
	return NULL;
}

bool keyring_holds_active(const struct keyring *ring, const char *container)
{
	return active_record(ring, container) != NULL;
}

int keyring_active(const struct keyring *ring, uint8_t id[KEY_ID_SIZE], const uint8_t **mek)
{
	const struct mek_record *record = active_record(ring, ring->selected);

	if (!record)
		return -ENOKEY;
	if (id)
		memcpy(id, record->id, KEY_ID_SIZE);
	if (mek)
		*mek = record->mek;
	return 0;
}

int keyring_activate(struct keyring *ring, size_t index, int64_t now)
{
	struct mek_record *record, *previous;

	if (index >= ring->count)
		return -EINVAL;
	record = &ring->records[index];
	if (record->state == MEK_STATE_ACTIVE)
		return 0;
	previous = active_record(ring, record->container);
	if (previous)
		previous->state = MEK_STATE_RETIRED;
	record->state = MEK_STATE_ACTIVE;
	/* Oracle's ACTIVATION_TIME is the latest activation; a reactivated key gets a new one. */
	record->activation_time = now;
	return 0;
}

int keyring_generate(struct keyring *ring, const char *tag, bool activate, int64_t now,
		     size_t *index)
{
	return keyring_add_key(ring, NULL, NULL, tag, activate, now, index);
}

int keyring_add_key(struct keyring *ring, const uint8_t id[KEY_ID_SIZE],
		    const uint8_t mek[MEK_SIZE], const char *tag, bool activate, int64_t now,
		    size_t *index)
{
	struct mek_record *record;
	int ret;

	if (tag && !wallet_tag_valid(tag))
		return -EINVAL;
	if (id && find_record(ring, id))
		return -EEXIST;
	ret = keyring_reserve(ring, ring->count + 1);
	if (ret < 0)
		return ret;
	record = &ring->records[ring->count];
	memset(record, 0, sizeof(*record));
	if (id) {
		memcpy(record->id, id, KEY_ID_SIZE);
	} else {
		/* A random 128-bit ID never collides in practice; the check costs nothing. */
		do {
			ret = crypto_random_bytes(record->id, KEY_ID_SIZE);
			if (ret < 0)
				goto out_wipe;
		} while (find_record(ring, record->id));
	}
	if (ring->token_count) {
		/* An HSM wallet's keys are made on its own token and never leave it. */
		char why[KEYSTORE_ERROR_SIZE];

		if (mek) {
			ret = -EOPNOTSUPP;
			goto out_wipe;
		}
		ret = ring->tokens[0].ops->generate(ring->tokens[0].token, record->id, why);
		if (ret < 0)
			goto out_wipe;
		record->on_token = true;
		record->token_slot = 0;
	} else if (mek) {
		memcpy(record->mek, mek, MEK_SIZE);
	} else if ((ret = crypto_random_bytes(record->mek, MEK_SIZE)) < 0) {
		goto out_wipe;
	}
	record->creation_time = now;
	record->state = MEK_STATE_PREACTIVE;
	/* A key brought by the user is still made here, in this wallet: LOCAL, not IMPORTED. */
	record->origin = MEK_ORIGIN_LOCAL;
	strcpy(record->tag, tag ? tag : "");
	strcpy(record->container, ring->selected);
	wallet_creator_self(record->creator);
	ring->count++;
	if (activate)
		keyring_activate(ring, ring->count - 1, now);
	if (index)
		*index = ring->count - 1;
	return 0;

out_wipe:
	secure_wipe(record, sizeof(*record));
	return ret;
}

int keyring_remove(struct keyring *ring, size_t index)
{
	return keyring_remove_key(ring, index, false);
}

int keyring_remove_key(struct keyring *ring, size_t index, bool even_active)
{
	struct mek_record *record;

	if (index >= ring->count)
		return -EINVAL;
	record = &ring->records[index];
	if (record->state == MEK_STATE_ACTIVE && !even_active)
		return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE);
	memmove(record, record + 1, (ring->count - index - 1) * sizeof(*record));
	ring->count--;
	/* The slot past the end holds the removed record or a second copy of the last: wipe it. */
	secure_wipe(&ring->records[ring->count], sizeof(*record));
	return 0;
}

int keyring_set_tag(struct keyring *ring, size_t index, const char *tag)
{
	if (index >= ring->count || !wallet_tag_valid(tag))
		return -EINVAL;
	memset(ring->records[index].tag, 0, sizeof(ring->records[index].tag));
	strcpy(ring->records[index].tag, tag);
	return 0;
}

int keyring_find_prefix(const struct keyring *ring, const char *prefix, size_t *index,
			char error[KEYSTORE_ERROR_SIZE])
{
	char lower[KEY_ID_TEXT_SIZE], text[KEY_ID_TEXT_SIZE];
	char first[KEY_ID_TEXT_SIZE] = "", second[KEY_ID_TEXT_SIZE] = "";
	size_t len = strlen(prefix), matches = 0;

	if (len == 0 || len > 2 * KEY_ID_SIZE) {
		wallet_message(error, "key ID '%.40s' is not 1 to 32 hexadecimal digits", prefix);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)prefix[i])) {
			wallet_message(error, "key ID '%.40s' is not hexadecimal", prefix);
			return -EINVAL;
		}
		lower[i] = (char)tolower((unsigned char)prefix[i]);
	}
	lower[len] = '\0';
	for (size_t i = 0; i < ring->count; i++) {
		key_id_format(ring->records[i].id, text);
		if (strncmp(text, lower, len) != 0)
			continue;
		if (matches == 0) {
			strcpy(first, text);
			*index = i;
		} else if (matches == 1) {
			strcpy(second, text);
		}
		matches++;
	}
	if (matches == 0) {
		wallet_message(error, "no key in the wallet has an ID starting with %s", lower);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
	}
	if (matches > 1) {
		wallet_message(
			error,
			"key ID prefix %s is ambiguous: %zu keys match (%s, %s%s); give more digits",
			lower, matches, first, second, matches > 2 ? ", ..." : "");
		return KEYSTORE_ERROR(KEYSTORE_ERR_AMBIGUOUS_KEY_ID);
	}
	return 0;
}

bool keyring_fully_backed_up(const struct keyring *ring)
{
	for (size_t i = 0; i < ring->count; i++)
		if (!ring->records[i].backed_up)
			return false;
	return true;
}

void keyring_mark_backed_up(struct keyring *ring, size_t count)
{
	for (size_t i = 0; i < count && i < ring->count; i++)
		ring->records[i].backed_up = true;
}

/*
 * The ACTIVE key of each container after a merge: the re-read wallet's when it has one there
 * (the wallet is the authority on which key wraps new files: set-key and use-key move it, and
 * use-key may move it back to an older key), otherwise the one the loaded ring had, so that a
 * wallet without an active key never leaves the daemon without one.
 */
static void settle_active_keys(struct keyring *merged, const struct keyring *loaded,
			       const struct keyring *fresh)
{
	for (size_t i = 0; i < merged->count; i++) {
		struct mek_record *record = &merged->records[i];
		const struct mek_record *wallet_active = active_record(fresh, record->container);
		const struct mek_record *loaded_active;

		if (wallet_active) {
			if (record->state == MEK_STATE_ACTIVE &&
			    memcmp(record->id, wallet_active->id, KEY_ID_SIZE) != 0)
				record->state = MEK_STATE_RETIRED;
			continue;
		}
		loaded_active = active_record(loaded, record->container);
		/* Never a key the key server has revoked since: no active key then. */
		if (loaded_active && memcmp(record->id, loaded_active->id, KEY_ID_SIZE) == 0 &&
		    !record->revoked)
			record->state = MEK_STATE_ACTIVE;
	}
}

int keyring_merge(const struct keyring *loaded, const struct keyring *fresh, struct keyring **out,
		  struct keyring_merge_summary *summary, char error[KEYSTORE_ERROR_SIZE])
{
	char id_text[KEY_ID_TEXT_SIZE], other_text[KEY_ID_TEXT_SIZE];
	const struct mek_record *before, *after;
	struct mek_record copy;
	struct keyring *merged;
	size_t base = 0;
	int ret;

	memset(summary, 0, sizeof(*summary));
	if (memcmp(loaded->wallet_id, fresh->wallet_id, KEY_ID_SIZE) != 0) {
		key_id_format(fresh->wallet_id, id_text);
		key_id_format(loaded->wallet_id, other_text);
		wallet_message(error,
			       "the wallet now holds another wallet (wallet ID %s, the keys loaded "
			       "are of wallet %s)",
			       id_text, other_text);
		return -EINVAL;
	}
	if (strcmp(loaded->container, fresh->container) != 0) {
		wallet_message(error,
			       "the wallet's container is now %s, the keys loaded are of container "
			       "%s",
			       fresh->container, loaded->container);
		return -EINVAL;
	}
	ret = keyring_new(loaded->wallet_id, loaded->container, &merged);
	if (ret < 0) {
		wallet_message(error, "cannot merge the keys: %s", keystore_error_message(ret));
		return ret;
	}
	merged->source_kind = loaded->source_kind;
	strcpy(merged->selected, loaded->selected); /* a daemon keeps serving its container */
	merged->generation =
		fresh->generation > loaded->generation ? fresh->generation : loaded->generation;
	/* The tokens the loaded keys are open on keep their slots; the re-read's come after. */
	ret = adopt_tokens(merged, loaded, &base);
	if (ret == 0)
		ret = adopt_tokens(merged, fresh, &base);
	if (ret < 0) {
		wallet_message(error, "cannot merge the keys: too many HSM tokens");
		keyring_free(merged);
		return ret;
	}
	/* Every loaded key, in its order, with what the wallet says of it now when it has it. */
	for (size_t i = 0; i < loaded->count && ret == 0; i++) {
		const struct mek_record *record = &loaded->records[i];
		const struct mek_record *now = find_record(fresh, record->id);

		if (now && (now->on_token != record->on_token ||
			    !secure_equal(now->mek, record->mek, MEK_SIZE))) {
			key_id_format(record->id, id_text);
			wallet_message(error,
				       "the wallet holds key %s with another key value than the one "
				       "loaded (a forged or foreign wallet?)",
				       id_text);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_KEY_MISMATCH);
			break;
		}
		if (!now)
			summary->kept++;
		copy = now ? *now : *record;
		copy.token_slot = record->token_slot;
		ret = keyring_append(merged, &copy);
	}
	/* Then the keys that are new, in the wallet's order. */
	for (size_t i = 0; i < fresh->count && ret == 0; i++) {
		if (find_record(loaded, fresh->records[i].id))
			continue;
		summary->added++;
		copy = fresh->records[i];
		if (copy.on_token)
			copy.token_slot = (uint8_t)(copy.token_slot + base);
		ret = keyring_append(merged, &copy);
	}
	secure_wipe(&copy, sizeof(copy));
	if (ret < 0) {
		if (ret != KEYSTORE_ERROR(KEYSTORE_ERR_KEY_MISMATCH))
			wallet_message(error, "cannot merge the keys: %s", keystore_error_message(ret));
		keyring_free(merged);
		return ret;
	}
	settle_active_keys(merged, loaded, fresh);
	summary->wallet_has_active = active_record(fresh, loaded->selected) != NULL;
	before = active_record(loaded, loaded->selected);
	after = active_record(merged, merged->selected);
	summary->active_revoked = before && !after;
	summary->active_moved = after && (!before || memcmp(before->id, after->id, KEY_ID_SIZE));
	*out = merged;
	return 0;
}

int keyring_link(struct keyring *ring, const struct keyring *linked, bool keep_active)
{
	size_t base = 0;
	int ret;

	if (memcmp(ring->wallet_id, linked->wallet_id, KEY_ID_SIZE) != 0)
		return -EINVAL;
	ret = adopt_tokens(ring, linked, &base);
	for (size_t i = 0; i < linked->count && ret == 0; i++) {
		struct mek_record record = linked->records[i];

		if (find_record(ring, record.id))
			continue; /* the wallet's own record of it wins */
		if (record.on_token)
			record.token_slot = (uint8_t)(record.token_slot + base);
		if (record.state == MEK_STATE_ACTIVE &&
		    (!keep_active || active_record(ring, record.container)))
			record.state = MEK_STATE_RETIRED;
		record.linked = true;
		ret = keyring_append(ring, &record);
		secure_wipe(&record, sizeof(record));
	}
	return ret;
}

void keyring_retire_active(struct keyring *ring)
{
	struct mek_record *record = active_record(ring, ring->selected);

	if (record)
		record->state = MEK_STATE_RETIRED;
}
