/*
 * Key export files (key_export.h, docs/WALLET.md "Key export files"): encoding, parsing and
 * unsealing, reading and writing them, reading the transport secret with the strict-modes rule,
 * and adding imported keys to a ring all or nothing.
 *
 * The order of the checks on reading is what lets a person tell the failures apart: the
 * SHA-256 over the whole file first (any truncation or flipped bit is "damaged", never "wrong
 * secret"), then the header's fields, then scrypt and the check value ("wrong secret"), and only
 * then GCM, whose failure with the right secret means a file forged or altered with its checksum
 * recomputed ("damaged" again). Each key record carries a key check value of its own, so a key
 * that decodes is also proved to be the key that was exported under that ID.
 */
#include "keystore/key_export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"
#include "util/util.h"

#define SEAL_INFO "tdefs key export v1 seal"
#define CHECK_INFO "tdefs key export v1 check"
#define KCV_INFO "tdefs key check value v1"

_Static_assert(KEY_EXPORT_OFFSET_SALT + KEY_EXPORT_SALT_SIZE == KEY_EXPORT_OFFSET_CHECK, "salt");
_Static_assert(KEY_EXPORT_OFFSET_CHECK + KEY_EXPORT_CHECK_SIZE == KEY_EXPORT_OFFSET_NONCE,
	       "check");
_Static_assert(KEY_EXPORT_OFFSET_NONCE + GCM_NONCE_SIZE == KEY_EXPORT_OFFSET_RESERVED_3, "nonce");
_Static_assert(KEX_RECORD_OFFSET_TAG + WALLET_TAG_MAX == KEX_RECORD_OFFSET_CONTAINER, "tag");
_Static_assert(KEX_RECORD_OFFSET_CONTAINER + WALLET_CONTAINER_MAX == KEX_RECORD_OFFSET_KCV,
	       "container");
_Static_assert(KEX_RECORD_OFFSET_KCV + KEY_EXPORT_KCV_SIZE == KEY_EXPORT_RECORD_V1_SIZE, "kcv");
_Static_assert(KEX_RECORD_OFFSET_CREATOR + WALLET_CREATOR_MAX == KEY_EXPORT_RECORD_SIZE,
	       "creator");

/* The record size of an export file of that version (0 for none). */
static size_t record_size(unsigned version)
{
	return version == 1 ? KEY_EXPORT_RECORD_V1_SIZE : version == 2 ? KEY_EXPORT_RECORD_SIZE : 0;
}

void key_export_free(struct key_export *export)
{
	if (!export)
		return;
	secure_free(export->records);
	free(export);
}

static bool all_zero(const uint8_t *bytes, size_t len)
{
	uint8_t any = 0;

	for (size_t i = 0; i < len; i++)
		any |= bytes[i];
	return any == 0;
}

int key_export_parse(const uint8_t *data, size_t len, struct key_export_view *view,
		     char why[KEYSTORE_ERROR_SIZE])
{
	uint8_t digest[SHA256_SIZE];
	uint32_t sealed_len;
	uint16_t version;
	int ret;

	memset(view, 0, sizeof(*view));
	if (len < KEY_EXPORT_MAGIC_SIZE ||
	    memcmp(data, KEY_EXPORT_MAGIC, KEY_EXPORT_MAGIC_SIZE) != 0) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "%s",
			 len >= WALLET_MAGIC_SIZE && memcmp(data, WALLET_MAGIC, WALLET_MAGIC_SIZE) == 0
				 ? "it is a wallet file, not a key export file"
				 : "not a key export file (bad magic)");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	if (len < KEY_EXPORT_HEADER_SIZE + KEY_EXPORT_TRAILER_SIZE) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "truncated (%zu bytes)", len);
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	if (len > KEY_EXPORT_MAX_FILE_SIZE) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "larger than any export file (%zu bytes)", len);
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	ret = crypto_sha256(data, len - SHA256_SIZE, digest);
	if (ret < 0)
		return ret;
	if (!secure_equal(digest, data + len - SHA256_SIZE, SHA256_SIZE)) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "bad checksum (truncated or altered)");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	version = load_le16(data + KEY_EXPORT_OFFSET_VERSION);
	if (version > KEY_EXPORT_VERSION) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "format version %u (this tdefs reads %d)",
			 version, KEY_EXPORT_VERSION);
		return KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT);
	}
	if (version == 0 || load_le16(data + KEY_EXPORT_OFFSET_RESERVED_1) != 0 ||
	    !all_zero(data + KEY_EXPORT_OFFSET_RESERVED_2, 3) ||
	    !all_zero(data + KEY_EXPORT_OFFSET_RESERVED_3,
		      KEY_EXPORT_HEADER_SIZE - KEY_EXPORT_OFFSET_RESERVED_3)) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "bad version or reserved header bytes");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	view->header = data;
	view->version = version;
	view->count = load_le32(data + KEY_EXPORT_OFFSET_COUNT);
	memcpy(view->wallet_id, data + KEY_EXPORT_OFFSET_WALLET_ID, KEY_ID_SIZE);
	view->export_time = (int64_t)load_le64(data + KEY_EXPORT_OFFSET_EXPORT_TIME);
	view->cost.log2_n = data[KEY_EXPORT_OFFSET_SCRYPT_LOG2_N];
	view->cost.r = load_le32(data + KEY_EXPORT_OFFSET_SCRYPT_R);
	view->cost.p = load_le32(data + KEY_EXPORT_OFFSET_SCRYPT_P);
	sealed_len = load_le32(data + KEY_EXPORT_OFFSET_SEALED_LENGTH);
	if (!scrypt_cost_valid(&view->cost)) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "scrypt cost out of range");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	if (view->count == 0 || view->count > WALLET_MAX_KEYS ||
	    sealed_len != (uint64_t)view->count * record_size(version) ||
	    len != KEY_EXPORT_HEADER_SIZE + (size_t)sealed_len + KEY_EXPORT_TRAILER_SIZE) {
		snprintf(why, KEYSTORE_ERROR_SIZE,
			 "key count, sealed length and file size disagree");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	view->salt = data + KEY_EXPORT_OFFSET_SALT;
	view->check = data + KEY_EXPORT_OFFSET_CHECK;
	view->nonce = data + KEY_EXPORT_OFFSET_NONCE;
	view->sealed = data + KEY_EXPORT_HEADER_SIZE;
	view->sealed_len = sealed_len;
	view->tag = view->sealed + sealed_len;
	return 0;
}

int key_export_derive(const struct secret *secret, const uint8_t salt[KEY_EXPORT_SALT_SIZE],
		      const struct scrypt_cost *cost, uint8_t seal_key[AES256_KEY_SIZE],
		      uint8_t check[KEY_EXPORT_CHECK_SIZE])
{
	uint8_t *master = secure_alloc(AES256_KEY_SIZE);
	int ret;

	if (!master)
		return -ENOMEM;
	if (!scrypt_cost_valid(cost)) {
		ret = -EINVAL;
		goto out;
	}
	ret = crypto_scrypt(secret->bytes, secret->len, salt, KEY_EXPORT_SALT_SIZE, cost->log2_n,
			    cost->r, cost->p, master, AES256_KEY_SIZE);
	if (ret == 0)
		ret = crypto_hkdf_sha256(master, AES256_KEY_SIZE, salt, KEY_EXPORT_SALT_SIZE,
					 SEAL_INFO, seal_key, AES256_KEY_SIZE);
	if (ret == 0)
		ret = crypto_hkdf_sha256(master, AES256_KEY_SIZE, salt, KEY_EXPORT_SALT_SIZE,
					 CHECK_INFO, check, KEY_EXPORT_CHECK_SIZE);
out:
	secure_free(master);
	return ret;
}

/* The key check value: proves the MEK decoded is the one exported under its ID. */
static int key_check_value(const uint8_t id[KEY_ID_SIZE], const uint8_t mek[MEK_SIZE],
			   uint8_t out[KEY_EXPORT_KCV_SIZE])
{
	return crypto_hkdf_sha256(mek, MEK_SIZE, id, KEY_ID_SIZE, KCV_INFO, out,
				  KEY_EXPORT_KCV_SIZE);
}

static bool text_field_valid(const uint8_t *field, size_t len, size_t size, bool container)
{
	char text[WALLET_CONTAINER_MAX + 1];

	if (len > size || !all_zero(field + len, size - len))
		return false;
	memcpy(text, field, len);
	text[len] = '\0';
	if (container)
		return wallet_container_valid(text);
	return len == 0 || wallet_tag_valid(text);
}

/* A version 2 creator: empty and all zero (unknown), or valid text then zeros. */
static bool creator_field_valid(const uint8_t *p, size_t len)
{
	char text[WALLET_CREATOR_MAX + 1];
	const uint8_t *field = p + KEX_RECORD_OFFSET_CREATOR;

	if (len > WALLET_CREATOR_MAX || !all_zero(field + len, WALLET_CREATOR_MAX - len))
		return false;
	if (len == 0)
		return true;
	memcpy(text, field, len);
	text[len] = '\0';
	return strlen(text) == len && wallet_creator_valid(text);
}

int key_export_decode_records(const uint8_t *plaintext, size_t len, unsigned version, size_t count,
			      struct mek_record **out, char why[KEYSTORE_ERROR_SIZE])
{
	size_t size = record_size(version);
	uint8_t kcv[KEY_EXPORT_KCV_SIZE];
	struct mek_record *records;
	int ret = 0;

	if (size == 0 || count == 0 || count > WALLET_MAX_KEYS || len != count * size) {
		snprintf(why, KEYSTORE_ERROR_SIZE, "payload size does not match the key count");
		return KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
	}
	records = secure_alloc(count * sizeof(*records));
	if (!records)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *p = plaintext + i * size;
		struct mek_record *record = &records[i];
		size_t tag_len = p[KEX_RECORD_OFFSET_TAG_LENGTH];
		size_t container_len = p[KEX_RECORD_OFFSET_CONTAINER_LENGTH];
		size_t creator_len = p[KEX_RECORD_OFFSET_CREATOR_LENGTH];
		bool creator_ok = version == 1 ? creator_len == 0
					       : creator_field_valid(p, creator_len);

		memcpy(record->id, p + KEX_RECORD_OFFSET_KEY_ID, KEY_ID_SIZE);
		memcpy(record->mek, p + KEX_RECORD_OFFSET_MEK, MEK_SIZE);
		record->creation_time = (int64_t)load_le64(p + KEX_RECORD_OFFSET_CREATION_TIME);
		record->activation_time = (int64_t)load_le64(p + KEX_RECORD_OFFSET_ACTIVATION_TIME);
		record->state = p[KEX_RECORD_OFFSET_STATE];
		record->origin = p[KEX_RECORD_OFFSET_ORIGIN];
		if (record->state < MEK_STATE_ACTIVE || record->state > MEK_STATE_PREACTIVE ||
		    record->origin < MEK_ORIGIN_LOCAL || record->origin > MEK_ORIGIN_IMPORTED ||
		    !all_zero(p + KEX_RECORD_OFFSET_RESERVED, 3) || !creator_ok ||
		    !text_field_valid(p + KEX_RECORD_OFFSET_TAG, tag_len, WALLET_TAG_MAX, false) ||
		    !text_field_valid(p + KEX_RECORD_OFFSET_CONTAINER, container_len,
				      WALLET_CONTAINER_MAX, true)) {
			snprintf(why, KEYSTORE_ERROR_SIZE, "key record %zu is malformed", i + 1);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
			break;
		}
		memcpy(record->tag, p + KEX_RECORD_OFFSET_TAG, tag_len);
		memcpy(record->container, p + KEX_RECORD_OFFSET_CONTAINER, container_len);
		if (version >= 2)
			memcpy(record->creator, p + KEX_RECORD_OFFSET_CREATOR, creator_len);
		ret = key_check_value(record->id, record->mek, kcv);
		if (ret < 0)
			break;
		if (!secure_equal(kcv, p + KEX_RECORD_OFFSET_KCV, KEY_EXPORT_KCV_SIZE)) {
			snprintf(why, KEYSTORE_ERROR_SIZE,
				 "key record %zu fails its key check value", i + 1);
			ret = KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
			break;
		}
		for (size_t k = 0; k < i; k++) {
			if (memcmp(records[k].id, record->id, KEY_ID_SIZE) == 0) {
				snprintf(why, KEYSTORE_ERROR_SIZE,
					 "key record %zu repeats a key ID", i + 1);
				ret = KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
				break;
			}
		}
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		secure_free(records);
		return ret;
	}
	*out = records;
	return 0;
}

static int encode_record(const struct mek_record *record, uint8_t *p)
{
	size_t tag_len = strlen(record->tag), container_len = strlen(record->container);
	size_t creator_len = strlen(record->creator);

	if (tag_len > WALLET_TAG_MAX || container_len == 0 ||
	    container_len > WALLET_CONTAINER_MAX || creator_len > WALLET_CREATOR_MAX)
		return -EINVAL;
	memcpy(p + KEX_RECORD_OFFSET_KEY_ID, record->id, KEY_ID_SIZE);
	memcpy(p + KEX_RECORD_OFFSET_MEK, record->mek, MEK_SIZE);
	store_le64(p + KEX_RECORD_OFFSET_CREATION_TIME, (uint64_t)record->creation_time);
	store_le64(p + KEX_RECORD_OFFSET_ACTIVATION_TIME, (uint64_t)record->activation_time);
	p[KEX_RECORD_OFFSET_STATE] = record->state;
	p[KEX_RECORD_OFFSET_ORIGIN] = record->origin;
	p[KEX_RECORD_OFFSET_TAG_LENGTH] = (uint8_t)tag_len;
	p[KEX_RECORD_OFFSET_CONTAINER_LENGTH] = (uint8_t)container_len;
	memcpy(p + KEX_RECORD_OFFSET_TAG, record->tag, tag_len);
	memcpy(p + KEX_RECORD_OFFSET_CONTAINER, record->container, container_len);
	p[KEX_RECORD_OFFSET_CREATOR_LENGTH] = (uint8_t)creator_len;
	memcpy(p + KEX_RECORD_OFFSET_CREATOR, record->creator, creator_len);
	return key_check_value(record->id, record->mek, p + KEX_RECORD_OFFSET_KCV);
}

int key_export_encode(const uint8_t wallet_id[KEY_ID_SIZE], const struct mek_record *records,
		      size_t count, const struct secret *secret, const struct scrypt_cost *cost,
		      int64_t now, const uint8_t *salt, const uint8_t *nonce, uint8_t **out,
		      size_t *out_len, char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t seal_key[AES256_KEY_SIZE];
	uint8_t *file, *plaintext = NULL;
	size_t sealed_len, len;
	int ret;

	if (count == 0 || count > WALLET_MAX_KEYS) {
		wallet_message(error, "an export file holds 1 to %d keys", WALLET_MAX_KEYS);
		return -EINVAL;
	}
	for (size_t i = 0; i < count; i++)
		if (records[i].on_token) {
			char id[KEY_ID_TEXT_SIZE];

			key_id_format(records[i].id, id);
			wallet_message(error,
				       "key %s lives on an HSM token and is not extractable: it "
				       "cannot be exported",
				       id);
			return -EOPNOTSUPP;
		}
	if (!scrypt_cost_valid(cost)) {
		wallet_message(error, "scrypt cost out of range");
		return -EINVAL;
	}
	sealed_len = count * KEY_EXPORT_RECORD_SIZE;
	len = KEY_EXPORT_HEADER_SIZE + sealed_len + KEY_EXPORT_TRAILER_SIZE;
	file = secure_alloc(len);
	plaintext = secure_alloc(sealed_len);
	if (!file || !plaintext) {
		ret = -ENOMEM;
		goto out_fail;
	}
	memcpy(file, KEY_EXPORT_MAGIC, KEY_EXPORT_MAGIC_SIZE);
	store_le16(file + KEY_EXPORT_OFFSET_VERSION, KEY_EXPORT_VERSION);
	store_le32(file + KEY_EXPORT_OFFSET_COUNT, (uint32_t)count);
	memcpy(file + KEY_EXPORT_OFFSET_WALLET_ID, wallet_id, KEY_ID_SIZE);
	store_le64(file + KEY_EXPORT_OFFSET_EXPORT_TIME, (uint64_t)now);
	file[KEY_EXPORT_OFFSET_SCRYPT_LOG2_N] = (uint8_t)cost->log2_n;
	store_le32(file + KEY_EXPORT_OFFSET_SCRYPT_R, cost->r);
	store_le32(file + KEY_EXPORT_OFFSET_SCRYPT_P, cost->p);
	store_le32(file + KEY_EXPORT_OFFSET_SEALED_LENGTH, (uint32_t)sealed_len);
	if (salt)
		memcpy(file + KEY_EXPORT_OFFSET_SALT, salt, KEY_EXPORT_SALT_SIZE);
	else if ((ret = crypto_random_bytes(file + KEY_EXPORT_OFFSET_SALT, KEY_EXPORT_SALT_SIZE)))
		goto out_fail;
	if (nonce)
		memcpy(file + KEY_EXPORT_OFFSET_NONCE, nonce, GCM_NONCE_SIZE);
	else if ((ret = crypto_random_bytes(file + KEY_EXPORT_OFFSET_NONCE, GCM_NONCE_SIZE)))
		goto out_fail;
	for (size_t i = 0; i < count; i++) {
		ret = encode_record(&records[i], plaintext + i * KEY_EXPORT_RECORD_SIZE);
		if (ret < 0)
			goto out_fail;
	}
	ret = key_export_derive(secret, file + KEY_EXPORT_OFFSET_SALT, cost, seal_key,
				file + KEY_EXPORT_OFFSET_CHECK);
	if (ret == 0)
		ret = crypto_gcm_seal(seal_key, file + KEY_EXPORT_OFFSET_NONCE, file,
				      KEY_EXPORT_HEADER_SIZE, plaintext, sealed_len,
				      file + KEY_EXPORT_HEADER_SIZE,
				      file + KEY_EXPORT_HEADER_SIZE + sealed_len);
	secure_wipe(seal_key, sizeof(seal_key));
	if (ret == 0)
		ret = crypto_sha256(file, len - SHA256_SIZE, file + len - SHA256_SIZE);
	if (ret < 0)
		goto out_fail;
	secure_free(plaintext);
	*out = file;
	*out_len = len;
	return 0;
out_fail:
	wallet_message(error, "cannot encode the key export: %s", keystore_error_message(ret));
	secure_free(plaintext);
	secure_free(file);
	return ret;
}

int key_export_decode(const uint8_t *data, size_t len, const char *path,
		      const struct secret *secret, struct key_export **out,
		      char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t seal_key[AES256_KEY_SIZE], check[KEY_EXPORT_CHECK_SIZE];
	char why[KEYSTORE_ERROR_SIZE] = "";
	struct key_export_view view;
	struct key_export *export;
	uint8_t *plaintext;
	int ret;

	ret = key_export_parse(data, len, &view, why);
	if (ret < 0) {
		if (keystore_error_of(ret) == KEYSTORE_ERR_NEWER_FORMAT)
			wallet_message(error, "key export file %s was written by a newer tdefs: %s",
				       path, why);
		else
			wallet_message(error, "key export file %s is damaged: %s", path, why);
		return ret;
	}
	ret = key_export_derive(secret, view.salt, &view.cost, seal_key, check);
	if (ret < 0) {
		wallet_message(error, "cannot derive the key of %s: %s", path,
			       keystore_error_message(ret));
		return ret;
	}
	if (!secure_equal(check, view.check, KEY_EXPORT_CHECK_SIZE)) {
		secure_wipe(seal_key, sizeof(seal_key));
		wallet_message(error, "wrong transport secret for key export file %s", path);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_SECRET);
	}
	plaintext = secure_alloc(view.sealed_len);
	export = calloc(1, sizeof(*export));
	if (!plaintext || !export) {
		ret = -ENOMEM;
		wallet_message(error, "out of memory reading %s", path);
		goto out;
	}
	ret = crypto_gcm_open(seal_key, view.nonce, view.header, KEY_EXPORT_HEADER_SIZE,
			      view.sealed, view.sealed_len, view.tag, plaintext);
	if (ret < 0) {
		wallet_message(error,
			       "key export file %s is damaged: the keys do not authenticate "
			       "although the secret is right (altered with its checksum redone?)",
			       path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_EXPORT_DAMAGED);
		goto out;
	}
	ret = key_export_decode_records(plaintext, view.sealed_len, view.version, view.count,
					&export->records,
					why);
	if (ret < 0) {
		wallet_message(error, "key export file %s is damaged: %s", path, why);
		goto out;
	}
	memcpy(export->wallet_id, view.wallet_id, KEY_ID_SIZE);
	export->export_time = view.export_time;
	export->cost = view.cost;
	export->count = view.count;
	*out = export;
	export = NULL;
out:
	secure_wipe(seal_key, sizeof(seal_key));
	secure_free(plaintext);
	key_export_free(export);
	return ret;
}

int key_export_write(const char *path, const uint8_t wallet_id[KEY_ID_SIZE],
		     const struct mek_record *records, size_t count, const struct secret *secret,
		     const struct scrypt_cost *cost, char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	uint8_t *bytes;
	size_t len;
	int ret;

	/* Never replace a file: a mistyped --to must not overwrite a wallet or another export. */
	if (lstat(path, &st) == 0) {
		wallet_message(error, "%s already exists; choose a new file for --to", path);
		return -EEXIST;
	}
	ret = key_export_encode(wallet_id, records, count, secret, cost, wallet_now(), NULL, NULL,
				&bytes, &len, error);
	if (ret < 0)
		return ret;
	ret = write_file_atomic(path, bytes, len, 0600);
	secure_free(bytes);
	if (ret < 0)
		wallet_message(error, "cannot write key export file %s: %s", path,
			       keystore_error_message(ret));
	return ret;
}

int key_export_read(const char *path, const struct secret *secret, struct key_export **out,
		    char error[KEYSTORE_ERROR_SIZE])
{
	char what[PATH_MAX + 32];
	uint8_t *data;
	struct stat st;
	size_t len;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot read key export file %s: %s", path,
			       keystore_error_message(ret));
		return ret;
	}
	/*
	 * A file another user wrote (or could have) carries keys they chose: refused before it is
	 * read, as a wallet file would be. One others can read has let them try secrets offline.
	 */
	snprintf(what, sizeof(what), "key export file %s", path);
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		wallet_message(error, "cannot check %s: %s", what, keystore_error_message(ret));
	} else if (strict_modes_check_stat(&st, what, path, error) < 0) {
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	} else if (S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		wallet_message(error,
			       "%s has mode %04o: it must be readable by its owner only, as "
			       "'tdekey export' writes it; fix: chmod 600 %s",
			       what, (unsigned)(st.st_mode & 07777), path);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
	} else {
		ret = read_small_fd(fd, KEY_EXPORT_MAX_FILE_SIZE + 1, &data, &len);
		if (ret < 0)
			wallet_message(error, "cannot read key export file %s: %s", path,
				       keystore_error_message(ret));
	}
	close(fd);
	if (ret < 0)
		return ret;
	ret = key_export_decode(data, len, path, secret, out, error);
	free(data);
	return ret;
}

/* --- secrets --------------------------------------------------------------------------- */

static int check_secret_stat(int fd, const char *what, const char *path,
			     char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		wallet_message(error, "cannot check %s: %s", what, keystore_error_message(ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode))
		return 0; /* a pipe or terminal: no one else wrote into it before us */
	ret = strict_modes_check_stat(&st, what, path, error);
	return ret < 0 ? KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES) : 0;
}

int transport_secret_open_file(const char *path, const char *option, int *fd,
			       char error[KEYSTORE_ERROR_SIZE])
{
	char what[PATH_MAX + 64];
	int ret;

	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (*fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot open %s %s: %s", option, path,
			       keystore_error_message(ret));
		return ret;
	}
	snprintf(what, sizeof(what), "%s %s", option, path);
	ret = check_secret_stat(*fd, what, path, error);
	if (ret < 0) {
		close(*fd);
		*fd = -1;
	}
	return ret;
}

int transport_secret_check_fd(int fd, const char *option, char error[KEYSTORE_ERROR_SIZE])
{
	char what[64];

	snprintf(what, sizeof(what), "%s descriptor %d", option, fd);
	return check_secret_stat(fd, what, what, error);
}

/*
 * A transport secret is all that guards an export file once it leaves the host, so a file
 * holding one must be readable by its owner alone, as a --key-file must (a wallet password
 * file only draws a warning: the wallet file it opens is itself 0600).
 */
static int check_secret_private(int fd, const char *option, const char *name,
				char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;

	if (strncmp(option, "--secret", 8) != 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    !(st.st_mode & 077))
		return 0;
	wallet_message(error,
		       "%s %s has mode %04o: a transport secret must be readable by its owner "
		       "only; fix: chmod 600 %s (and choose a new secret if others read it)",
		       option, name, (unsigned)(st.st_mode & 07777), name);
	return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
}

int transport_secret_read(const struct password_source *source, const char *option,
			  const char *prompt, bool confirm, size_t min_len, struct secret **out,
			  char error[KEYSTORE_ERROR_SIZE])
{
	struct password_source from_fd = { .kind = PASSWORD_SOURCE_FD, .explicit = true };
	char name[32];
	int fd = -1, ret;

	switch (source->kind) {
	case PASSWORD_SOURCE_FILE:
		ret = transport_secret_open_file(source->path, option, &fd, error);
		if (ret < 0)
			return ret;
		from_fd.fd = fd;
		ret = check_secret_private(fd, option, source->path, error);
		if (ret == 0)
			ret = password_read(&from_fd, prompt, false, out, error);
		close(fd);
		break;
	case PASSWORD_SOURCE_FD:
		snprintf(name, sizeof(name), "descriptor %d", source->fd);
		ret = transport_secret_check_fd(source->fd, option, error);
		if (ret == 0)
			ret = check_secret_private(source->fd, option, name, error);
		if (ret == 0)
			ret = password_read(source, prompt, false, out, error);
		break;
	case PASSWORD_SOURCE_PROMPT:
		ret = password_read(source, prompt, confirm, out, error);
		if (ret == -ENXIO)
			wallet_message(error,
				       "a secret is needed and there is no terminal to ask on; give "
				       "%s FILE or the matching -fd N",
				       option);
		break;
	default:
		wallet_message(error, "%s: no such secret source", option);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if ((*out)->len < min_len) {
		secret_free(*out);
		*out = NULL;
		wallet_message(error, "the secret from %s must have at least %zu characters", option,
			       min_len);
		return -EINVAL;
	}
	return 0;
}

/* --- import ---------------------------------------------------------------------------- */

int keyring_import(struct keyring *ring, const struct mek_record *records, size_t count,
		   struct key_import_summary *summary, char error[KEYSTORE_ERROR_SIZE])
{
	char id_text[KEY_ID_TEXT_SIZE];
	size_t before = keyring_count(ring), fresh = 0;
	int ret = 0;

	memset(summary, 0, sizeof(*summary));
	/* Every check before the first change: the ring is all old or all new. */
	for (size_t i = 0; i < count; i++) {
		const uint8_t *have = keyring_find(ring, records[i].id);

		if (!have) {
			fresh++;
			continue;
		}
		if (!secure_equal(have, records[i].mek, MEK_SIZE)) {
			key_id_format(records[i].id, id_text);
			wallet_message(error,
				       "key %s is already in the wallet with other key bytes; nothing "
				       "was imported",
				       id_text);
			return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_CONFLICT);
		}
	}
	if (before + fresh > WALLET_MAX_KEYS) {
		wallet_message(error, "the wallet would hold %zu keys, more than %d; nothing was "
				      "imported",
			       before + fresh, WALLET_MAX_KEYS);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL);
	}
	for (size_t i = 0; i < count; i++) {
		struct mek_record copy = records[i];

		if (keyring_find(ring, copy.id)) {
			summary->skipped++;
			continue;
		}
		copy.origin = MEK_ORIGIN_IMPORTED;
		if (copy.state == MEK_STATE_ACTIVE)
			copy.state = MEK_STATE_RETIRED;
		copy.backed_up = false;
		ret = keyring_append(ring, &copy);
		secure_wipe(&copy, sizeof(copy));
		if (ret < 0)
			break;
		summary->added++;
	}
	if (ret < 0) {
		/* Take back what was added (never ACTIVE, so keyring_remove allows it). */
		while (keyring_count(ring) > before)
			keyring_remove(ring, keyring_count(ring) - 1);
		memset(summary, 0, sizeof(*summary));
		wallet_message(error, "cannot import the keys: %s", keystore_error_message(ret));
	}
	return ret;
}
