/*
 * The sealed payloads: a key wallet's list of MEK records and an external store's passwords.
 * Both are only ever decoded after the GCM tag has authenticated them, but the decoder still
 * checks every length, code and padding byte: the fuzzers call it directly, and a file from a
 * buggy or newer writer must be refused with a reason, never misread.
 */
#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static bool all_zero(const uint8_t *data, size_t len)
{
	uint8_t bits = 0;

	for (size_t i = 0; i < len; i++)
		bits |= data[i];
	return bits == 0;
}

/* A zero-padded text field: len bytes of text (checked by valid) then zeros to the end. */
static bool decode_text(const uint8_t *field, size_t size, size_t len, char *out,
			bool (*valid)(const char *))
{
	if (len > size || !all_zero(field + len, size - len))
		return false;
	memcpy(out, field, len);
	out[len] = '\0';
	/* An embedded NUL would make the string shorter than its recorded length. */
	return strlen(out) == len && valid(out);
}

int wallet_payload_encode_keys(const struct keyring *ring, uint8_t **out, size_t *len)
{
	size_t count = keyring_count(ring);
	const char *container = keyring_container(ring);
	size_t total = KEYS_PAYLOAD_HEADER_SIZE + count * KEY_RECORD_SIZE;
	uint8_t *payload;

	if (count > WALLET_MAX_KEYS)
		return -EFBIG;
	/* A key on an HSM token has no bytes to put in a file: never write it as zeros. */
	for (size_t i = 0; i < count; i++)
		if (keyring_record(ring, i)->on_token)
			return -EOPNOTSUPP;
	payload = secure_alloc(total);
	if (!payload)
		return -ENOMEM;
	store_le32(payload + KEYS_OFFSET_COUNT, (uint32_t)count);
	payload[KEYS_OFFSET_CONTAINER_LENGTH] = (uint8_t)strlen(container);
	memcpy(payload + KEYS_OFFSET_CONTAINER, container, strlen(container));
	for (size_t i = 0; i < count; i++) {
		const struct mek_record *record = keyring_record(ring, i);
		uint8_t *p = payload + KEYS_PAYLOAD_HEADER_SIZE + i * KEY_RECORD_SIZE;

		memcpy(p + RECORD_OFFSET_KEY_ID, record->id, KEY_ID_SIZE);
		memcpy(p + RECORD_OFFSET_MEK, record->mek, MEK_SIZE);
		store_le64(p + RECORD_OFFSET_CREATION_TIME, (uint64_t)record->creation_time);
		store_le64(p + RECORD_OFFSET_ACTIVATION_TIME, (uint64_t)record->activation_time);
		p[RECORD_OFFSET_STATE] = record->state;
		p[RECORD_OFFSET_ORIGIN] = record->origin;
		p[RECORD_OFFSET_FLAGS] = record->backed_up ? RECORD_FLAG_BACKED_UP : 0;
		p[RECORD_OFFSET_TAG_LENGTH] = (uint8_t)strlen(record->tag);
		p[RECORD_OFFSET_CONTAINER_LENGTH] = (uint8_t)strlen(record->container);
		memcpy(p + RECORD_OFFSET_TAG, record->tag, strlen(record->tag));
		memcpy(p + RECORD_OFFSET_CONTAINER, record->container, strlen(record->container));
		/* Unknown (a key read from a version 1 file) stays unknown: length 0. */
		p[RECORD_OFFSET_CREATOR_LENGTH] = (uint8_t)strlen(record->creator);
		memcpy(p + RECORD_OFFSET_CREATOR, record->creator, strlen(record->creator));
	}
	*out = payload;
	*len = total;
	return 0;
}

static int decode_record(const uint8_t *p, unsigned version, size_t index,
			 struct mek_record *record, char why[WALLET_WHY_SIZE])
{
	const char *problem = NULL;

	memset(record, 0, sizeof(*record));
	memcpy(record->id, p + RECORD_OFFSET_KEY_ID, KEY_ID_SIZE);
	memcpy(record->mek, p + RECORD_OFFSET_MEK, MEK_SIZE);
	record->creation_time = (int64_t)load_le64(p + RECORD_OFFSET_CREATION_TIME);
	record->activation_time = (int64_t)load_le64(p + RECORD_OFFSET_ACTIVATION_TIME);
	record->state = p[RECORD_OFFSET_STATE];
	record->origin = p[RECORD_OFFSET_ORIGIN];
	record->backed_up = (p[RECORD_OFFSET_FLAGS] & RECORD_FLAG_BACKED_UP) != 0;

	if (record->state != MEK_STATE_ACTIVE && record->state != MEK_STATE_RETIRED &&
	    record->state != MEK_STATE_PREACTIVE)
		problem = "unknown state";
	else if ((record->state == MEK_STATE_PREACTIVE) != (record->activation_time == 0))
		problem = "activation time contradicts the state";
	else if (record->origin != MEK_ORIGIN_LOCAL && record->origin != MEK_ORIGIN_IMPORTED)
		problem = "unknown origin";
	else if (p[RECORD_OFFSET_FLAGS] & ~RECORD_KNOWN_FLAGS)
		problem = "unknown flags";
	else if (!all_zero(p + RECORD_OFFSET_RESERVED,
			   RECORD_OFFSET_TAG - RECORD_OFFSET_RESERVED) ||
		 (version == 1 && p[RECORD_OFFSET_CREATOR_LENGTH] != 0))
		problem = "reserved bytes are not zero";
	else if (!decode_text(p + RECORD_OFFSET_TAG, WALLET_TAG_MAX, p[RECORD_OFFSET_TAG_LENGTH],
			      record->tag, wallet_tag_valid))
		problem = "bad tag";
	else if (!decode_text(p + RECORD_OFFSET_CONTAINER, WALLET_CONTAINER_MAX,
			      p[RECORD_OFFSET_CONTAINER_LENGTH], record->container,
			      wallet_container_valid))
		problem = "bad container name";
	else if (version >= 2 && p[RECORD_OFFSET_CREATOR_LENGTH] != 0 &&
		 !decode_text(p + RECORD_OFFSET_CREATOR, WALLET_CREATOR_MAX,
			      p[RECORD_OFFSET_CREATOR_LENGTH], record->creator,
			      wallet_creator_valid))
		problem = "bad creator";
	else if (version >= 2 && p[RECORD_OFFSET_CREATOR_LENGTH] == 0 &&
		 !all_zero(p + RECORD_OFFSET_CREATOR, WALLET_CREATOR_MAX))
		problem = "bad creator";
	if (!problem)
		return 0;
	snprintf(why, WALLET_WHY_SIZE, "key record %zu: %s", index + 1, problem);
	secure_wipe(record, sizeof(*record));
	return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
}

static bool second_active(const struct keyring *ring, const struct mek_record *record)
{
	if (record->state != MEK_STATE_ACTIVE)
		return false;
	for (size_t i = 0; i < keyring_count(ring); i++) {
		const struct mek_record *other = keyring_record(ring, i);

		if (other->state == MEK_STATE_ACTIVE &&
		    strcmp(other->container, record->container) == 0)
			return true;
	}
	return false;
}

int wallet_payload_decode_keys(const uint8_t *data, size_t len, unsigned version,
			       const uint8_t wallet_id[KEY_ID_SIZE], uint64_t generation,
			       struct keyring **out, char why[WALLET_WHY_SIZE])
{
	size_t record_size = key_record_size(version);
	char container[WALLET_CONTAINER_MAX + 1];
	struct mek_record *record = NULL;
	struct keyring *ring = NULL;
	uint32_t count;
	int ret;

	if (len < KEYS_PAYLOAD_HEADER_SIZE) {
		snprintf(why, WALLET_WHY_SIZE, "key list shorter than its header");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (record_size == 0) {
		snprintf(why, WALLET_WHY_SIZE, "no key record layout for format version %u",
			 version);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	count = load_le32(data + KEYS_OFFSET_COUNT);
	if (count > WALLET_MAX_KEYS) {
		snprintf(why, WALLET_WHY_SIZE, "key count %u exceeds the limit of %d", count,
			 WALLET_MAX_KEYS);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (len != KEYS_PAYLOAD_HEADER_SIZE + (size_t)count * record_size) {
		snprintf(why, WALLET_WHY_SIZE, "key list of %zu bytes does not hold %u records",
			 len, count);
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (!all_zero(data + KEYS_OFFSET_RESERVED, KEYS_OFFSET_CONTAINER - KEYS_OFFSET_RESERVED) ||
	    !decode_text(data + KEYS_OFFSET_CONTAINER, WALLET_CONTAINER_MAX,
			 data[KEYS_OFFSET_CONTAINER_LENGTH], container, wallet_container_valid)) {
		snprintf(why, WALLET_WHY_SIZE, "bad container name in the key list header");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	ret = keyring_new(wallet_id, container, &ring);
	if (ret < 0)
		return ret;
	keyring_set_generation(ring, generation);
	/* One record on the side, in locked memory, because it holds a MEK. */
	record = secure_alloc(sizeof(*record));
	if (!record) {
		ret = -ENOMEM;
		goto out_free_ring;
	}
	for (size_t i = 0; i < count; i++) {
		ret = decode_record(data + KEYS_PAYLOAD_HEADER_SIZE + i * record_size, version, i,
				    record, why);
		if (ret < 0)
			goto out_free_record;
		if (second_active(ring, record)) {
			snprintf(why, WALLET_WHY_SIZE,
				 "key record %zu: a second active key in container %s", i + 1,
				 record->container);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
			goto out_free_record;
		}
		ret = keyring_append(ring, record);
		if (ret == -EEXIST) {
			snprintf(why, WALLET_WHY_SIZE, "key record %zu: duplicate key ID", i + 1);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
		}
		if (ret < 0)
			goto out_free_record;
	}
	secure_free(record);
	*out = ring;
	return 0;

out_free_record:
	secure_free(record);
out_free_ring:
	keyring_free(ring);
	return ret;
}

int wallet_payload_encode_secrets(struct secret *const *secrets, size_t count, uint8_t **out,
				  size_t *len)
{
	size_t total = SECRETS_PAYLOAD_HEADER_SIZE, offset;
	uint8_t *payload;

	if (count < 1 || count > WALLET_MAX_SECRETS)
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		if (secrets[i]->len < 1 || secrets[i]->len > SECRET_MAX_SIZE)
			return -EINVAL;
		total += SECRET_ENTRY_HEADER_SIZE + secrets[i]->len;
	}
	payload = secure_alloc(total);
	if (!payload)
		return -ENOMEM;
	store_le32(payload + SECRETS_OFFSET_COUNT, (uint32_t)count);
	offset = SECRETS_PAYLOAD_HEADER_SIZE;
	for (size_t i = 0; i < count; i++) {
		store_le32(payload + offset, (uint32_t)secrets[i]->len);
		offset += SECRET_ENTRY_HEADER_SIZE;
		memcpy(payload + offset, secrets[i]->bytes, secrets[i]->len);
		offset += secrets[i]->len;
	}
	*out = payload;
	*len = total;
	return 0;
}

int wallet_payload_decode_secrets(const uint8_t *data, size_t len,
				  struct secret *secrets[WALLET_MAX_SECRETS], size_t *count,
				  char why[WALLET_WHY_SIZE])
{
	size_t offset = SECRETS_PAYLOAD_HEADER_SIZE, decoded = 0;
	uint32_t entries;
	int ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);

	if (len < SECRETS_PAYLOAD_HEADER_SIZE) {
		snprintf(why, WALLET_WHY_SIZE, "secret list shorter than its header");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	entries = load_le32(data + SECRETS_OFFSET_COUNT);
	if (entries < 1 || entries > WALLET_MAX_SECRETS ||
	    load_le32(data + SECRETS_OFFSET_RESERVED) != 0) {
		snprintf(why, WALLET_WHY_SIZE, "bad secret list header");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	for (; decoded < entries; decoded++) {
		uint32_t secret_len;

		if (len - offset < SECRET_ENTRY_HEADER_SIZE) {
			snprintf(why, WALLET_WHY_SIZE, "secret %zu: truncated", decoded + 1);
			goto out_free_secrets;
		}
		secret_len = load_le32(data + offset);
		if (secret_len < 1 || secret_len > SECRET_MAX_SIZE ||
		    load_le32(data + offset + 4) != 0 ||
		    secret_len > len - offset - SECRET_ENTRY_HEADER_SIZE) {
			snprintf(why, WALLET_WHY_SIZE, "secret %zu: bad length", decoded + 1);
			goto out_free_secrets;
		}
		offset += SECRET_ENTRY_HEADER_SIZE;
		secrets[decoded] = secret_new();
		if (!secrets[decoded]) {
			ret = -ENOMEM;
			goto out_free_secrets;
		}
		memcpy(secrets[decoded]->bytes, data + offset, secret_len);
		secrets[decoded]->len = secret_len;
		offset += secret_len;
	}
	if (offset != len) {
		snprintf(why, WALLET_WHY_SIZE, "trailing bytes after the secret list");
		goto out_free_secrets;
	}
	*count = decoded;
	return 0;

out_free_secrets:
	for (size_t i = 0; i < decoded; i++) {
		secret_free(secrets[i]);
		secrets[i] = NULL;
	}
	return ret;
}
