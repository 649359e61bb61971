/*
 * One wallet file between disk and memory: read it (with the permission check auto-login files
 * need), classify what is wrong with it in the keystore's errno vocabulary with the one-line
 * message a DBA reads, and encode a key ring or a password store back into file bytes.
 *
 * Files are read into locked memory because an auto-login file carries the key to its own
 * contents. Symbolic links are refused: every change replaces the file by rename, which would
 * silently turn a link into a file. The file opened must belong to root or to the user running
 * the program and be writable by no one else (strict_modes.c), checked on the descriptor read.
 *
 * What differs between kinds (how the sealing key is derived when a file is opened, how a new
 * file is sealed, which files carry their own key) is asked of the kind table
 * (keystore_kind.h, kind_*.c); nothing here switches on the kind.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "keystore/keystore_kind.h"
#include "keystore/wallet_format.h"
#include "util/util.h"

/* What a message calls the file: "local auto-login wallet", "external password store". */
static const char *describe_store(enum wallet_content content, const struct keystore_kind *kind)
{
	if (content == WALLET_CONTENT_SECRET && kind->store_words)
		return kind->store_words;
	return kind->wallet_words;
}

static int load_file(const char *path, uint8_t **data, size_t *len, struct stat *file_stat,
		     char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	uint8_t *buffer;
	size_t done;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			wallet_message(error, "no wallet file %s", path);
		else if (ret == -ELOOP)
			wallet_message(
				error,
				"wallet %s is a symbolic link; keep the file itself in the wallet "
				"directory (changes replace it by rename)",
				path);
		else
			wallet_message(error, "cannot open wallet %s: %s", path, keystore_error_message(ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		wallet_message(error, "cannot stat wallet %s: %s", path, keystore_error_message(ret));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		wallet_message(error, "wallet %s is not a regular file", path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > WALLET_MAX_FILE_SIZE) {
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
		wallet_message_damaged(error, path, "the file is larger than any wallet can be");
		goto out_close;
	}
	/* One spare byte so that an empty file still gets a buffer. */
	buffer = secure_alloc((size_t)st.st_size + 1);
	if (!buffer) {
		ret = -ENOMEM;
		wallet_message(error, "out of memory reading %s", path);
		goto out_close;
	}
	ret = pread_full(fd, buffer, (size_t)st.st_size, 0, &done);
	if (ret < 0) {
		secure_free(buffer);
		wallet_message(error, "cannot read wallet %s: %s", path, keystore_error_message(ret));
		goto out_close;
	}
	*data = buffer;
	*len = done;
	*file_stat = st;
out_close:
	close(fd);
	return ret;
}

/* An auto-login file carries what opens it: refused when group or others can reach it. */
static int refuse_permissions(const char *path, mode_t mode, enum wallet_content content,
			      const struct keystore_kind *kind, char error[KEYSTORE_ERROR_SIZE])
{
	if (!kind || !kind->auto_login || (mode & (S_IRWXG | S_IRWXO)) == 0)
		return 0;
	wallet_message(
		error,
		"%s %s is open to group or others (mode %04o), so anyone who can read it has "
		"the keys; fix with: chmod 600 %s",
		describe_store(content, kind), path, (unsigned)(mode & 07777), path);
	return KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES);
}

int wallet_read(struct wallet_read *request, char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_kind *kind;
	struct wallet_file_view view;
	char why[WALLET_WHY_SIZE];
	uint8_t *key = NULL, *plaintext = NULL;
	size_t plaintext_len;
	char subject[PATH_MAX + 16];
	struct stat st;
	mode_t mode;
	int ret;

	request->ring = NULL;
	request->secrets[0] = request->secrets[1] = NULL;
	request->secret_count = 0;
	request->password_key = NULL;
	request->raw = NULL;
	request->raw_len = 0;
	memset(&request->info, 0, sizeof(request->info));

	ret = load_file(request->path, &request->raw, &request->raw_len, &st, error);
	if (ret < 0)
		return ret;
	mode = st.st_mode;
	/* An auto-login file is refused for its mode before a byte of it is used. */
	ret = refuse_permissions(request->path, mode, request->expected_content,
				 keystore_kind_of(request->expected_kind), error);
	if (ret < 0)
		goto out_release;
	/* Whoever else could write the file could have put their own keys in it. */
	snprintf(subject, sizeof(subject), "wallet file %s", request->path);
	ret = strict_modes_check_stat(&st, subject, request->path, error);
	if (ret < 0)
		goto out_release;
	/* A kind with a file of its own (hsm.wallet) reads the bytes itself. */
	kind = keystore_kind_of(request->expected_kind);
	if (kind && kind->read) {
		ret = kind->read(request, error);
		if (ret < 0)
			goto out_release;
		return 0;
	}
	ret = wallet_file_parse(request->raw, request->raw_len, &view, why);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT)) {
		wallet_message(error, "wallet %s was written by a newer version of tdefs: %s",
			       request->path, why);
		goto out_release;
	}
	if (ret < 0) {
		wallet_message_damaged(error, request->path, why);
		goto out_release;
	}
	request->info = view.info;

	if ((request->expected_kind && view.info.kind != request->expected_kind) ||
	    view.info.content != request->expected_content) {
		snprintf(why, sizeof(why), "it holds a %s %s, not what its name says",
			 wallet_kind_name(view.info.kind),
			 view.info.content == WALLET_CONTENT_KEYS ? "key wallet" : "password store");
		wallet_message_damaged(error, request->path, why);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
		goto out_release;
	}
	/* The parser accepted the kind byte, so the table has it. */
	kind = keystore_kind_of(view.info.kind);
	ret = refuse_permissions(request->path, mode, view.info.content, kind, error);
	if (ret < 0)
		goto out_release;
	if (request->header_only)
		return 0;

	key = secure_alloc(AES256_KEY_SIZE);
	if (!key) {
		ret = -ENOMEM;
		wallet_message(error, "out of memory reading %s", request->path);
		goto out_release;
	}
	ret = kind->open(&view, request, key, error);
	if (ret < 0)
		goto out_free_key;
	ret = wallet_file_unseal(&view, key, &plaintext, &plaintext_len);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED)) {
		/*
		 * The checksum held, and for a password wallet so did the password check: the
		 * payload was changed and the checksum recomputed. That is damage, not a password.
		 */
		wallet_message_damaged(error, request->path,
				       "the sealed contents fail authentication");
		goto out_free_key;
	}
	if (ret < 0) {
		wallet_message(error, "cannot unseal wallet %s: %s", request->path, keystore_error_message(ret));
		goto out_free_key;
	}
	if (view.info.content == WALLET_CONTENT_KEYS) {
		ret = wallet_payload_decode_keys(plaintext, plaintext_len, view.info.version,
						 view.info.wallet_id,
						 view.info.generation, &request->ring, why);
		if (ret == 0)
			keyring_set_source_kind(request->ring, view.info.kind);
	} else
		ret = wallet_payload_decode_secrets(plaintext, plaintext_len, request->secrets,
						    &request->secret_count, why);
	secure_free(plaintext);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED))
		wallet_message_damaged(error, request->path, why);
	else if (ret < 0)
		wallet_message(error, "cannot decode wallet %s: %s", request->path, keystore_error_message(ret));
out_free_key:
	secure_free(key);
out_release:
	if (ret < 0)
		wallet_read_release(request);
	return ret;
}

void wallet_read_release(struct wallet_read *request)
{
	keyring_free(request->ring);
	request->ring = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(request->secrets); i++) {
		secret_free(request->secrets[i]);
		request->secrets[i] = NULL;
	}
	request->secret_count = 0;
	password_key_free(request->password_key);
	request->password_key = NULL;
	secure_free(request->raw);
	request->raw = NULL;
	request->raw_len = 0;
}

static int encode(enum wallet_kind kind, enum wallet_content content,
		  const uint8_t wallet_id[KEY_ID_SIZE], uint64_t generation,
		  const struct password_key *password_key, const uint8_t *payload,
		  size_t payload_len, uint8_t **out, size_t *out_len,
		  char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_kind *table_kind = keystore_kind_of(kind);
	struct wallet_header_fields fields;
	struct keystore_kind_material *material;
	int ret;

	if (!table_kind || !table_kind->seal) {
		wallet_message(error, "cannot encode a wallet of unknown kind %d", (int)kind);
		return -EINVAL;
	}
	memset(&fields, 0, sizeof(fields));
	fields.content = content;
	memcpy(fields.wallet_id, wallet_id, KEY_ID_SIZE);
	fields.generation = generation;
	fields.write_time = wallet_now();
	material = secure_alloc(sizeof(*material));
	if (!material)
		return -ENOMEM;
	fields.kind = kind;
	fields.salt = material->salt;
	/* The kind fills salt, stored key, check and cost, and the sealing key. */
	ret = table_kind->seal(password_key, &fields, material, error);
	if (ret == 0)
		ret = wallet_file_build(&fields, material->key, payload, payload_len, out, out_len);
	secure_free(material);
	return ret;
}

int wallet_encode_keys(enum wallet_kind kind, const struct keyring *ring,
		       const struct password_key *password_key, uint8_t **out, size_t *out_len,
		       char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t wallet_id[KEY_ID_SIZE], *payload;
	size_t payload_len;
	int ret;

	wallet_message(error, "cannot encode the %s wallet", wallet_kind_name(kind));
	if (keystore_kind_of(kind) && keystore_kind_of(kind)->encode)
		return keystore_kind_of(kind)->encode(ring, out, out_len, error);
	ret = wallet_payload_encode_keys(ring, &payload, &payload_len);
	if (ret < 0)
		return ret;
	keyring_wallet_id(ring, wallet_id);
	ret = encode(kind, WALLET_CONTENT_KEYS, wallet_id, keyring_generation(ring), password_key,
		     payload, payload_len, out, out_len, error);
	secure_free(payload);
	return ret;
}

int wallet_encode_secrets(enum wallet_kind kind, const uint8_t wallet_id[KEY_ID_SIZE],
			  uint64_t generation, struct secret *const *secrets, size_t count,
			  uint8_t **out, size_t *out_len, char error[KEYSTORE_ERROR_SIZE])
{
	uint8_t *payload;
	size_t payload_len;
	int ret;

	wallet_message(error, "cannot encode the external password store");
	/* Only a kind with words for a store can hold one (not a password wallet). */
	if (!keystore_kind_of(kind) || !keystore_kind_of(kind)->store_words)
		return -EINVAL;
	ret = wallet_payload_encode_secrets(secrets, count, &payload, &payload_len);
	if (ret < 0)
		return ret;
	ret = encode(kind, WALLET_CONTENT_SECRET, wallet_id, generation, NULL, payload, payload_len,
		     out, out_len, error);
	secure_free(payload);
	return ret;
}
