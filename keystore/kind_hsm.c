/*
 * The HSM kind: master keys that live on a PKCS#11 token and never leave it. The wallet
 * directory's hsm.wallet (hsm_wallet.c) names the module, the token and, for each key, its
 * token object; this file is everything that speaks PKCS#11: the module is loaded through
 * p11-kit (never dlopen here), keys are generated on the token as sensitive, non-extractable
 * AES-256 secret keys, and the DEKs of a file header are sealed and opened by the token with
 * CKM_AES_GCM through C_Encrypt and C_Decrypt (docs/FORMAT.md, cipher suite 2).
 *
 * The module is code the root daemon runs, so it is loaded only from a regular file that, and
 * whose every parent directory, no one but root (or the user running) can write: the same
 * strict modes as the wallet files (strict_modes.c). The PIN is kept in locked memory for as
 * long as the token is open, because a daemon connects again after fork().
 *
 * The daemon seals and opens from many threads at once: a PKCS#11 session runs one operation
 * at a time, so the token keeps a few sessions, each under its own lock, and a caller takes
 * the first free one (or waits on one). Object handles are found once per key and cached;
 * they are valid in every session of the process.
 *
 * Availability (the daemon's -o hsm_heartbeat, fs/hsm_heartbeat.c): once the daemon watches the
 * token, a failure that says the device is gone (removed, not present, its sessions lost) marks
 * the token unreachable. Operations then wait, a bounded time and outside any session lock,
 * for the heartbeat to connect again (reconnect: new sessions, a login with the PIN kept, the
 * key objects found again, as their handles may differ on a token that came back), and give
 * up with -EHOSTDOWN. A token nobody watches fails at once, as before.
 */
#include "keystore/keystore_kind.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "crypto/crypto.h"
#include "keystore/hsm_wallet.h"
#include "util/util.h"

#define HSM_SESSIONS 4
#define HSM_GCM_TAG_SIZE 16
#define HSM_GCM_NONCE_SIZE 12
#define HSM_SEAL_MAX 256 /* the most a header seals: two DEKs, 128 bytes */

struct hsm_session {
	pthread_mutex_t lock;
	CK_SESSION_HANDLE handle;
	bool open;
};

struct keystore_token {
	atomic_int refs;
	struct hsm_wallet_identity identity;
	CK_FUNCTION_LIST *module;
	CK_SLOT_ID slot;
	struct secret *pin;
	pthread_mutex_t objects_lock; /* objects, handles */
	struct hsm_key_object *objects;
	CK_OBJECT_HANDLE *handles; /* CK_INVALID_HANDLE until found */
	size_t object_count;
	size_t object_capacity;
	struct hsm_session sessions[HSM_SESSIONS];
	atomic_uint next_session;
	/* Availability, while the daemon watches (watch_wait_ms > 0): guarded by reach_lock. */
	pthread_mutex_t reach_lock;
	pthread_cond_t reach_changed;
	bool unreachable;
	atomic_uint watch_wait_ms; /* 0: not watched */
};

/* --- messages and the meanings of CK_RV ---------------------------------------------- */

static int token_error(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_LOCKED:
	case CKR_PIN_EXPIRED:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PIN);
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SLOT_ID_INVALID:
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_ABSENT);
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_MECHANISM);
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return -EBADMSG; /* the GCM tag: altered, or another key */
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_MEMORY:
		return -ENOMEM;
	default:
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_FAILED);
	}
}

static int token_failed(char error[KEYSTORE_ERROR_SIZE], const struct keystore_token *token,
			const char *what, CK_RV rv)
{
	int ret = token_error(rv);

	wallet_message(error, "HSM token '%s' (%s): %s failed: %s (%s)",
		       token->identity.token_label, token->identity.module, what,
		       keystore_error_message(ret), p11_kit_strerror(rv));
	return ret;
}

/* --- the module ------------------------------------------------------------------------ */

/*
 * The module must be a regular file that only root (or we) can change, in directories only
 * root (or we) can change, all the way up: otherwise whoever could write there chooses the
 * code the daemon runs with the keys. resolved gets the path to load (links followed).
 */
static int module_trusted(const char *module, char resolved[PATH_MAX],
			  char error[KEYSTORE_ERROR_SIZE])
{
	char subject[PATH_MAX + 32], directory[PATH_MAX];
	struct stat st;
	char *slash;
	int ret;

	if (module[0] != '/') {
		wallet_message(error, "PKCS#11 module %s: not an absolute path", module);
		return -EINVAL;
	}
	/* The directory named, before its links are followed (a link in it could be swapped). */
	snprintf(directory, sizeof(directory), "%s", module);
	slash = strrchr(directory, '/');
	if (slash == directory)
		slash[1] = '\0';
	else
		*slash = '\0';
	ret = strict_modes_check_directory(directory, "PKCS#11 module directory", error);
	if (ret == -ENOENT) {
		wallet_message(error, "PKCS#11 module %s: no such file or directory", module);
		return KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE);
	}
	if (ret < 0)
		return ret;
	if (!realpath(module, resolved)) {
		ret = -errno;
		wallet_message(error, "PKCS#11 module %s: %s", module, strerror(-ret));
		return ret == -ENOENT ? KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE) : ret;
	}
	snprintf(directory, sizeof(directory), "%s", resolved);
	slash = strrchr(directory, '/');
	if (slash == directory)
		slash[1] = '\0';
	else
		*slash = '\0';
	ret = strict_modes_check_directory(directory, "PKCS#11 module directory", error);
	if (ret < 0)
		return ret;
	if (lstat(resolved, &st) < 0) {
		ret = -errno;
		wallet_message(error, "PKCS#11 module %s: %s", resolved, strerror(-ret));
		return ret == -ENOENT ? KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE) : ret;
	}
	if (!S_ISREG(st.st_mode)) {
		wallet_message(error, "PKCS#11 module %s is not a regular file", resolved);
		return KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE);
	}
	snprintf(subject, sizeof(subject), "PKCS#11 module %s", resolved);
	return strict_modes_check_stat(&st, subject, resolved, error);
}

static int module_load(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	char resolved[PATH_MAX];
	CK_RV rv;
	int ret;

	ret = module_trusted(token->identity.module, resolved, error);
	if (ret < 0)
		return ret;
	token->module = p11_kit_module_load(resolved, 0);
	if (!token->module) {
		wallet_message(error, "PKCS#11 module %s does not load: %s", resolved,
			       p11_kit_message() ? p11_kit_message() : "not a PKCS#11 module");
		return KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE);
	}
	rv = p11_kit_module_initialize(token->module);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		wallet_message(error, "PKCS#11 module %s does not initialise: %s", resolved,
			       p11_kit_strerror(rv));
		p11_kit_module_release(token->module);
		token->module = NULL;
		return KEYSTORE_ERROR(KEYSTORE_ERR_HSM_MODULE);
	}
	return 0;
}

/* CK_UTF8CHAR fields are padded with spaces, not terminated. */
static bool padded_equal(const CK_UTF8CHAR *field, size_t size, const char *text)
{
	size_t len = strlen(text);

	if (len > size || memcmp(field, text, len) != 0)
		return false;
	for (size_t i = len; i < size; i++)
		if (field[i] != ' ')
			return false;
	return true;
}

static int find_slot(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0;
	bool found = false;
	CK_RV rv;

	rv = token->module->C_GetSlotList(CK_TRUE, NULL, &count);
	if (rv == CKR_OK && count > 0) {
		slots = calloc(count, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		rv = token->module->C_GetSlotList(CK_TRUE, slots, &count);
	}
	if (rv != CKR_OK) {
		free(slots);
		return token_failed(error, token, "C_GetSlotList", rv);
	}
	for (CK_ULONG i = 0; i < count && !found; i++) {
		CK_TOKEN_INFO info;

		if (token->module->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		if (!(info.flags & CKF_TOKEN_INITIALIZED) ||
		    !padded_equal(info.label, sizeof(info.label), token->identity.token_label))
			continue;
		if (token->identity.token_serial[0] &&
		    !padded_equal(info.serialNumber, sizeof(info.serialNumber),
				  token->identity.token_serial))
			continue;
		token->slot = slots[i];
		found = true;
	}
	free(slots);
	if (!found) {
		wallet_message(error,
			       "no HSM token labelled '%s'%s%s%s is present in PKCS#11 module %s",
			       token->identity.token_label,
			       token->identity.token_serial[0] ? " with serial '" : "",
			       token->identity.token_serial,
			       token->identity.token_serial[0] ? "'" : "", token->identity.module);
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_ABSENT);
	}
	return 0;
}

static bool offers(const CK_MECHANISM_TYPE *list, CK_ULONG count, CK_MECHANISM_TYPE type)
{
	for (CK_ULONG i = 0; i < count; i++)
		if (list[i] == type)
			return true;
	return false;
}

/*
 * The token must generate AES-256 keys and do AES-GCM both ways. The list first: a module asked
 * about a mechanism it lacks may complain on stderr rather than answer.
 */
static int check_mechanisms(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	CK_MECHANISM_TYPE *list = NULL;
	CK_MECHANISM_INFO gcm, keygen;
	CK_ULONG count = 0;
	bool usable = false;
	CK_RV rv;

	rv = token->module->C_GetMechanismList(token->slot, NULL, &count);
	if (rv == CKR_OK && count > 0) {
		list = calloc(count, sizeof(*list));
		if (!list)
			return -ENOMEM;
		rv = token->module->C_GetMechanismList(token->slot, list, &count);
	}
	if (rv == CKR_OK && offers(list, count, CKM_AES_GCM) &&
	    offers(list, count, CKM_AES_KEY_GEN) &&
	    token->module->C_GetMechanismInfo(token->slot, CKM_AES_GCM, &gcm) == CKR_OK &&
	    token->module->C_GetMechanismInfo(token->slot, CKM_AES_KEY_GEN, &keygen) == CKR_OK)
		usable = (gcm.flags & CKF_ENCRYPT) && (gcm.flags & CKF_DECRYPT) &&
			 keygen.ulMaxKeySize >= 32;
	free(list);
	if (!usable) {
		wallet_message(error,
			       "HSM token '%s' (%s) does not offer AES-256 key generation and "
			       "AES-GCM encryption and decryption (CKM_AES_KEY_GEN, CKM_AES_GCM), "
			       "which an HSM wallet needs",
			       token->identity.token_label, token->identity.module);
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_MECHANISM);
	}
	return 0;
}

static int open_sessions(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	CK_RV rv;

	for (size_t i = 0; i < HSM_SESSIONS; i++) {
		token->sessions[i].open = false;
		rv = token->module->C_OpenSession(token->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
						  NULL, NULL, &token->sessions[i].handle);
		if (rv != CKR_OK)
			return token_failed(error, token, "C_OpenSession", rv);
		token->sessions[i].open = true;
	}
	/* A login is the application's, for every session of the slot. */
	rv = token->module->C_Login(token->sessions[0].handle, CKU_USER, token->pin->bytes,
				    token->pin->len);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) {
		wallet_message(error, "wrong PIN for HSM token '%s' (%s)",
			       token->identity.token_label, token->identity.module);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PIN);
	}
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return token_failed(error, token, "C_Login", rv);
	return 0;
}

static void close_sessions(struct keystore_token *token)
{
	for (size_t i = 0; i < HSM_SESSIONS; i++)
		if (token->sessions[i].open) {
			token->module->C_CloseSession(token->sessions[i].handle);
			token->sessions[i].open = false;
		}
}

static void token_free(struct keystore_token *token)
{
	if (token->module) {
		close_sessions(token);
		p11_kit_module_finalize(token->module);
		p11_kit_module_release(token->module);
	}
	for (size_t i = 0; i < HSM_SESSIONS; i++)
		pthread_mutex_destroy(&token->sessions[i].lock);
	pthread_mutex_destroy(&token->objects_lock);
	pthread_mutex_destroy(&token->reach_lock);
	pthread_cond_destroy(&token->reach_changed);
	secret_free(token->pin);
	free(token->objects);
	free(token->handles);
	free(token);
}

/* A free session, locked; every caller unlocks it with session_put. */
static struct hsm_session *session_get(struct keystore_token *token)
{
	unsigned start = atomic_fetch_add(&token->next_session, 1);

	for (unsigned i = 0; i < HSM_SESSIONS; i++) {
		struct hsm_session *session = &token->sessions[(start + i) % HSM_SESSIONS];

		if (pthread_mutex_trylock(&session->lock) == 0)
			return session;
	}
	pthread_mutex_lock(&token->sessions[start % HSM_SESSIONS].lock);
	return &token->sessions[start % HSM_SESSIONS];
}

static void session_put(struct hsm_session *session)
{
	pthread_mutex_unlock(&session->lock);
}

/* The handle of the secret key with this CKA_ID; 0 found, KEY_NOT_ON_TOKEN, or a failure. */
static int find_object(struct keystore_token *token, const struct hsm_key_object *object,
		       CK_OBJECT_HANDLE *handle)
{
	CK_OBJECT_CLASS class = CKO_SECRET_KEY;
	CK_ATTRIBUTE query[] = {
		{ CKA_CLASS, &class, sizeof(class) },
		{ CKA_ID, (void *)object->cka_id, object->cka_id_len },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG count = 0;
	struct hsm_session *session = session_get(token);
	CK_RV rv;

	rv = token->module->C_FindObjectsInit(session->handle, query, ARRAY_SIZE(query));
	if (rv == CKR_OK) {
		rv = token->module->C_FindObjects(session->handle, found, ARRAY_SIZE(found), &count);
		token->module->C_FindObjectsFinal(session->handle);
	}
	session_put(session);
	if (rv != CKR_OK)
		return token_error(rv);
	/* Two objects with one CKA_ID: which one wraps is not for us to guess. */
	if (count != 1)
		return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN);
	*handle = found[0];
	return 0;
}

static int object_index(const struct keystore_token *token, const uint8_t id[KEY_ID_SIZE])
{
	for (size_t i = 0; i < token->object_count; i++)
		if (memcmp(token->objects[i].key_id, id, KEY_ID_SIZE) == 0)
			return (int)i;
	return -1;
}

static int key_handle(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
		      CK_OBJECT_HANDLE *handle)
{
	struct hsm_key_object object;
	int index, ret;

	pthread_mutex_lock(&token->objects_lock);
	index = object_index(token, id);
	if (index >= 0) {
		*handle = token->handles[index];
		object = token->objects[index];
	}
	pthread_mutex_unlock(&token->objects_lock);
	if (index < 0)
		return -ENOKEY;
	if (*handle != CK_INVALID_HANDLE)
		return 0;
	ret = find_object(token, &object, handle);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&token->objects_lock);
	token->handles[index] = *handle;
	pthread_mutex_unlock(&token->objects_lock);
	return 0;
}

static int add_object(struct keystore_token *token, const struct hsm_key_object *object,
		      CK_OBJECT_HANDLE handle)
{
	int ret = 0;

	pthread_mutex_lock(&token->objects_lock);
	if (token->object_count == token->object_capacity) {
		size_t grown = token->object_capacity ? token->object_capacity * 2 : 8;
		struct hsm_key_object *objects = realloc(token->objects, grown * sizeof(*objects));
		CK_OBJECT_HANDLE *handles;

		if (objects)
			token->objects = objects;
		handles = objects ? realloc(token->handles, grown * sizeof(*handles)) : NULL;
		if (handles) {
			token->handles = handles;
			token->object_capacity = grown;
		} else {
			ret = -ENOMEM;
		}
	}
	if (ret == 0) {
		token->objects[token->object_count] = *object;
		token->handles[token->object_count] = handle;
		token->object_count++;
	}
	pthread_mutex_unlock(&token->objects_lock);
	return ret;
}

/* --- availability ------------------------------------------------------------------- */

/* The answers of a token that is gone (pulled, powered off, its link down, its sessions lost). */
static bool device_gone(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_REMOVED:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return true;
	default:
		return false;
	}
}

static void mark_unreachable(struct keystore_token *token)
{
	pthread_mutex_lock(&token->reach_lock);
	if (atomic_load(&token->watch_wait_ms) > 0)
		token->unreachable = true;
	pthread_mutex_unlock(&token->reach_lock);
}

/*
 * Before an operation: true at once while the token is reachable (or not watched); while it
 * is not, wait up to the watch bound for a reconnect, false when none came.
 */
static bool wait_reachable(struct keystore_token *token)
{
	struct timespec deadline;
	bool reachable;

	unsigned wait_ms = atomic_load(&token->watch_wait_ms);

	pthread_mutex_lock(&token->reach_lock);
	if (token->unreachable) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += wait_ms / 1000;
		deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (token->unreachable &&
		       pthread_cond_timedwait(&token->reach_changed, &token->reach_lock,
					      &deadline) == 0)
			;
	}
	reachable = !token->unreachable;
	pthread_mutex_unlock(&token->reach_lock);
	return reachable;
}

/* --- the token operations ---------------------------------------------------------------- */

static int token_generate(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
			  char error[KEYSTORE_ERROR_SIZE])
{
	CK_MECHANISM mechanism = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_CLASS class = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_ULONG length = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	struct hsm_key_object object;
	CK_OBJECT_HANDLE handle;
	struct hsm_session *session;
	CK_RV rv;
	int ret;

	hsm_key_object_for(id, &object);
	CK_ATTRIBUTE template[] = {
		{ CKA_CLASS, &class, sizeof(class) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_VALUE_LEN, &length, sizeof(length) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_SIGN, &no, sizeof(no) },
		{ CKA_VERIFY, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_ID, object.cka_id, object.cka_id_len },
		{ CKA_LABEL, object.label, strlen(object.label) },
	};

	/* A key ID already on the token would make two objects of one name. */
	ret = find_object(token, &object, &handle);
	if (ret == 0) {
		wallet_message(error, "HSM token '%s' already holds an object with CKA_ID %s",
			       token->identity.token_label, object.label + 6);
		return -EEXIST;
	}
	if (ret != KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN))
		return token_failed(error, token, "C_FindObjects", CKR_GENERAL_ERROR);
	session = session_get(token);
	rv = token->module->C_GenerateKey(session->handle, &mechanism, template,
					  ARRAY_SIZE(template), &handle);
	session_put(session);
	if (rv != CKR_OK)
		return token_failed(error, token, "C_GenerateKey (AES-256)", rv);
	ret = add_object(token, &object, handle);
	if (ret < 0)
		wallet_message(error, "out of memory");
	return ret;
}

/* One AES-GCM operation on the token: encrypt (seal) or decrypt (open). */
static int token_gcm(struct keystore_token *token, bool encrypt, const uint8_t id[KEY_ID_SIZE],
		     const uint8_t nonce[HSM_GCM_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
		     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	CK_GCM_PARAMS params = {
		.pIv = (CK_BYTE_PTR)nonce,
		.ulIvLen = HSM_GCM_NONCE_SIZE,
		.ulIvBits = HSM_GCM_NONCE_SIZE * 8,
		.pAAD = (CK_BYTE_PTR)aad,
		.ulAADLen = aad_len,
		.ulTagBits = HSM_GCM_TAG_SIZE * 8,
	};
	CK_MECHANISM mechanism = { CKM_AES_GCM, &params, sizeof(params) };
	CK_OBJECT_HANDLE handle;
	struct hsm_session *session;
	CK_ULONG done = out_len;
	CK_RV rv;
	int ret;

	/* A token found gone is waited for once (the heartbeat may bring it back), then not. */
	for (int attempt = 0;; attempt++) {
		if (!wait_reachable(token))
			return -EHOSTDOWN;
		ret = key_handle(token, id, &handle);
		if (ret < 0 && ret != KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN) &&
		    atomic_load(&token->watch_wait_ms) > 0 && attempt == 0) {
			/* The search failed, which a token gone makes it do: wait for it once. */
			mark_unreachable(token);
			continue;
		}
		if (ret < 0)
			return ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN) ? -ENOKEY : ret;
		done = out_len;
		session = session_get(token);
		rv = encrypt ? token->module->C_EncryptInit(session->handle, &mechanism, handle)
			     : token->module->C_DecryptInit(session->handle, &mechanism, handle);
		if (rv == CKR_OK)
			rv = encrypt ? token->module->C_Encrypt(session->handle, (CK_BYTE_PTR)in,
								in_len, out, &done)
				     : token->module->C_Decrypt(session->handle, (CK_BYTE_PTR)in,
								in_len, out, &done);
		session_put(session);
		if (!device_gone(rv) || atomic_load(&token->watch_wait_ms) == 0)
			break;
		mark_unreachable(token);
		if (attempt == 1)
			return -EHOSTDOWN;
	}
	if (rv != CKR_OK)
		return token_error(rv);
	/* Encrypting gives the ciphertext and the tag; decrypting takes both. */
	if (done != (encrypt ? in_len + HSM_GCM_TAG_SIZE : in_len - HSM_GCM_TAG_SIZE))
		return KEYSTORE_ERROR(KEYSTORE_ERR_TOKEN_FAILED);
	return 0;
}

static int token_seal(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
		      const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		      const uint8_t *plain, size_t len, uint8_t *cipher, uint8_t tag[16])
{
	uint8_t sealed[HSM_SEAL_MAX + HSM_GCM_TAG_SIZE];
	int ret;

	if (len == 0 || len > HSM_SEAL_MAX)
		return -EINVAL;
	/* C_Encrypt gives the ciphertext with the tag after it. */
	ret = token_gcm(token, true, id, nonce, aad, aad_len, plain, len, sealed,
			len + HSM_GCM_TAG_SIZE);
	if (ret == 0) {
		memcpy(cipher, sealed, len);
		memcpy(tag, sealed + len, HSM_GCM_TAG_SIZE);
	}
	return ret;
}

static int token_open(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
		      const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		      const uint8_t *cipher, size_t len, const uint8_t tag[16], uint8_t *plain)
{
	uint8_t sealed[HSM_SEAL_MAX + HSM_GCM_TAG_SIZE];
	uint8_t *opened;
	int ret;

	if (len == 0 || len > HSM_SEAL_MAX)
		return -EINVAL;
	opened = secure_alloc(len + HSM_GCM_TAG_SIZE);
	if (!opened)
		return -ENOMEM;
	memcpy(sealed, cipher, len);
	memcpy(sealed + len, tag, HSM_GCM_TAG_SIZE);
	ret = token_gcm(token, false, id, nonce, aad, aad_len, sealed, len + HSM_GCM_TAG_SIZE,
			opened, len + HSM_GCM_TAG_SIZE);
	if (ret == 0)
		memcpy(plain, opened, len);
	secure_free(opened);
	return ret;
}

static int token_after_fork(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	CK_RV rv;

	/* The parent's sessions are not the child's: forget them, never close them here. */
	for (size_t i = 0; i < HSM_SESSIONS; i++)
		token->sessions[i].open = false;
	pthread_mutex_lock(&token->objects_lock);
	for (size_t i = 0; i < token->object_count; i++)
		token->handles[i] = CK_INVALID_HANDLE;
	pthread_mutex_unlock(&token->objects_lock);
	rv = p11_kit_module_initialize(token->module);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return token_failed(error, token, "C_Initialize after fork", rv);
	return open_sessions(token, error);
}

/* The daemon watches the token from now on: operations wait up to wait_ms for it. */
static void token_watch(struct keystore_token *token, unsigned wait_ms)
{
	atomic_store(&token->watch_wait_ms, wait_ms ? wait_ms : 1);
}

/*
 * The heartbeat: is the token there, and our session still logged in? C_GetSessionInfo is
 * answered by the token without any key work. An unreachable token is not asked: 1 then
 * (the caller reconnects instead).
 */
static int token_check(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	struct hsm_session *session;
	CK_SESSION_INFO info;
	bool unreachable;
	CK_RV rv;

	pthread_mutex_lock(&token->reach_lock);
	unreachable = token->unreachable;
	pthread_mutex_unlock(&token->reach_lock);
	if (unreachable) {
		wallet_message(error, "HSM token '%s' (%s) is unreachable",
			       token->identity.token_label, token->identity.module);
		return 1;
	}
	session = session_get(token);
	rv = session->open ? token->module->C_GetSessionInfo(session->handle, &info)
			   : CKR_SESSION_HANDLE_INVALID;
	session_put(session);
	if (rv == CKR_OK && info.state != CKS_RO_USER_FUNCTIONS &&
	    info.state != CKS_RW_USER_FUNCTIONS)
		rv = CKR_USER_NOT_LOGGED_IN;
	if (rv == CKR_OK)
		return 0;
	mark_unreachable(token);
	return token_failed(error, token, "C_GetSessionInfo", rv);
}

/*
 * Connect again after an outage: every session closed (each under its lock, so no operation
 * runs on it meanwhile) and opened anew, a login with the PIN kept in locked memory, the slot
 * and every key object found again. 0 and the token reachable again, or the failure.
 */
static int token_reconnect(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	for (size_t i = 0; i < HSM_SESSIONS; i++)
		pthread_mutex_lock(&token->sessions[i].lock);
	close_sessions(token);
	ret = find_slot(token, error);
	if (ret == 0)
		ret = open_sessions(token, error);
	pthread_mutex_lock(&token->objects_lock);
	for (size_t i = 0; i < token->object_count; i++)
		token->handles[i] = CK_INVALID_HANDLE;
	pthread_mutex_unlock(&token->objects_lock);
	for (size_t i = HSM_SESSIONS; i-- > 0;)
		pthread_mutex_unlock(&token->sessions[i].lock);
	for (size_t i = 0; ret == 0; i++) {
		struct hsm_key_object object;
		CK_OBJECT_HANDLE handle;
		bool more;

		pthread_mutex_lock(&token->objects_lock);
		more = i < token->object_count;
		if (more)
			object = token->objects[i];
		pthread_mutex_unlock(&token->objects_lock);
		if (!more)
			break;
		ret = find_object(token, &object, &handle);
		if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN)) {
			ret = 0; /* a key gone from the token fails its own opens, with ENOKEY */
			continue;
		}
		if (ret < 0) {
			token_failed(error, token, "C_FindObjects", CKR_DEVICE_ERROR);
			break;
		}
		pthread_mutex_lock(&token->objects_lock);
		token->handles[i] = handle;
		pthread_mutex_unlock(&token->objects_lock);
	}
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&token->reach_lock);
	token->unreachable = false;
	pthread_cond_broadcast(&token->reach_changed);
	pthread_mutex_unlock(&token->reach_lock);
	return 0;
}

static struct keystore_token *token_retain(struct keystore_token *token)
{
	atomic_fetch_add(&token->refs, 1);
	return token;
}

static void token_release(struct keystore_token *token)
{
	if (token && atomic_fetch_sub(&token->refs, 1) == 1)
		token_free(token);
}

static const struct keystore_token_ops hsm_token_ops = {
	.generate = token_generate,
	.seal = token_seal,
	.open = token_open,
	.after_fork = token_after_fork,
	.watch = token_watch,
	.check = token_check,
	.reconnect = token_reconnect,
	.retain = token_retain,
	.release = token_release,
};

int hsm_token_open(const struct hsm_wallet_identity *identity, const struct secret *pin,
		   const struct hsm_key_object *objects, size_t object_count,
		   struct keystore_token **out, char error[KEYSTORE_ERROR_SIZE])
{
	struct keystore_token *token = calloc(1, sizeof(*token));
	pthread_condattr_t reach_attr;
	int ret;

	if (!token) {
		wallet_message(error, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&token->refs, 1);
	atomic_init(&token->next_session, 0);
	token->identity = *identity;
	pthread_mutex_init(&token->objects_lock, NULL);
	pthread_mutex_init(&token->reach_lock, NULL);
	/* The wait's deadline is on the monotonic clock: a clock step neither cuts nor stretches it. */
	pthread_condattr_init(&reach_attr);
	pthread_condattr_setclock(&reach_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&token->reach_changed, &reach_attr);
	pthread_condattr_destroy(&reach_attr);
	for (size_t i = 0; i < HSM_SESSIONS; i++)
		pthread_mutex_init(&token->sessions[i].lock, NULL);
	token->pin = secret_new();
	if (!token->pin) {
		token_free(token);
		wallet_message(error, "out of memory");
		return -ENOMEM;
	}
	if (!pin || pin->len == 0) {
		token_free(token);
		wallet_message(error, "HSM token '%s' needs its PIN and none was given",
			       identity->token_label);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WRONG_PIN);
	}
	*token->pin = *pin;
	ret = module_load(token, error);
	if (ret == 0)
		ret = find_slot(token, error);
	if (ret == 0)
		ret = check_mechanisms(token, error);
	if (ret == 0)
		ret = open_sessions(token, error);
	for (size_t i = 0; ret == 0 && i < object_count; i++)
		ret = add_object(token, &objects[i], CK_INVALID_HANDLE);
	if (ret < 0) {
		token_free(token);
		return ret;
	}
	*out = token;
	return 0;
}

const struct keystore_token_ops *hsm_token_ops_get(void)
{
	return &hsm_token_ops;
}

/* --- the kind ---------------------------------------------------------------------------- */

/*
 * A re-read by the daemon: the token already open serves the wallet if it is the same token;
 * the objects of keys new to it are added to it.
 */
static int reuse_token(struct wallet_read *request, const struct hsm_wallet *wallet,
		       struct keystore_token **out, char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_token_ops *ops;
	struct keystore_token *token = keyring_token_of(request->token_from, &ops);
	int ret = 0;

	if (!token || ops != &hsm_token_ops ||
	    strcmp(token->identity.module, wallet->identity.module) != 0 ||
	    strcmp(token->identity.token_label, wallet->identity.token_label) != 0 ||
	    strcmp(token->identity.token_serial, wallet->identity.token_serial) != 0) {
		wallet_message(error,
			       "%s now names another PKCS#11 module or token than the one the keys "
			       "loaded are on; remount to use it",
			       request->path);
		return -EINVAL;
	}
	for (size_t i = 0; i < wallet->object_count && ret == 0; i++) {
		int index;

		pthread_mutex_lock(&token->objects_lock);
		index = object_index(token, wallet->objects[i].key_id);
		pthread_mutex_unlock(&token->objects_lock);
		if (index < 0)
			ret = add_object(token, &wallet->objects[i], CK_INVALID_HANDLE);
	}
	if (ret < 0) {
		wallet_message(error, "out of memory");
		return ret;
	}
	*out = token_retain(token);
	return 0;
}

/*
 * The keys of the wallets an HSM wallet links (a migration's source, or after a reverse
 * migration the software wallet with the active key), each opened as the daemon opens a
 * wallet: strict modes, then its auto-login file or external store, never a prompt. A linked
 * wallet's own links are not followed: one step, no cycles.
 */
static _Thread_local int link_depth;

static int open_links(const struct wallet_read *request, const struct hsm_wallet_identity *identity,
		      struct keyring *ring, char error[KEYSTORE_ERROR_SIZE])
{
	int ret = 0;

	if (link_depth > 0)
		return 0;
	for (size_t i = 0; i < identity->link_count && ret == 0; i++) {
		struct keyring *linked = NULL;
		char why[KEYSTORE_ERROR_SIZE] = "";

		link_depth++;
		ret = keystore_open_for_mount(identity->links[i].path, -1, &linked, why);
		link_depth--;
		if (ret < 0) {
			wallet_message(error, "%s links wallet %s, which does not open: %s",
				       request->path, identity->links[i].path, why);
			return ret;
		}
		ret = keyring_link(ring, linked, identity->links[i].active);
		keyring_free(linked);
		if (ret == -EINVAL)
			wallet_message(error, "%s links wallet %s, which has another wallet ID",
				       request->path, identity->links[i].path);
		else if (ret < 0)
			wallet_message(error, "%s: cannot take the keys of linked wallet %s: %s",
				       request->path, identity->links[i].path,
				       keystore_error_message(ret));
	}
	return ret;
}

static int hsm_read(struct wallet_read *request, char error[KEYSTORE_ERROR_SIZE])
{
	struct hsm_wallet wallet;
	struct keystore_token *token = NULL;
	char why[WALLET_WHY_SIZE];
	uint8_t active[KEY_ID_SIZE];
	int ret;

	ret = hsm_wallet_parse(request->raw, request->raw_len, &wallet, why);
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT)) {
		wallet_message(error, "wallet %s was written by a newer version of tdefs: %s",
			       request->path, why);
		return ret;
	}
	if (ret < 0) {
		if (ret == -ENOMEM)
			wallet_message(error, "out of memory reading %s", request->path);
		else
			wallet_message_damaged(error, request->path, why);
		return ret;
	}
	request->info.version = HSM_WALLET_VERSION;
	request->info.kind = WALLET_KIND_HSM;
	request->info.content = WALLET_CONTENT_KEYS;
	memcpy(request->info.wallet_id, wallet.wallet_id, KEY_ID_SIZE);
	request->info.generation = wallet.generation;
	request->info.write_time = wallet.write_time;
	request->info.file_size = request->raw_len;
	if (request->expected_content != WALLET_CONTENT_KEYS) {
		hsm_wallet_release(&wallet);
		wallet_message_damaged(error, request->path, "an HSM wallet holds no password store");
		return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
	}
	if (request->header_only) {
		hsm_wallet_release(&wallet);
		return 0;
	}
	ret = request->token_from ? reuse_token(request, &wallet, &token, error)
				  : hsm_token_open(&wallet.identity, request->password,
						   wallet.objects, wallet.object_count, &token,
						   error);
	if (ret < 0) {
		hsm_wallet_release(&wallet);
		return ret;
	}
	/* The key that wraps new files must be there now, not at the first create. */
	if (keyring_active(wallet.ring, active, NULL) == 0) {
		CK_OBJECT_HANDLE handle;

		ret = key_handle(token, active, &handle);
		if (ret < 0) {
			char text[KEY_ID_TEXT_SIZE];

			key_id_format(active, text);
			if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_NOT_ON_TOKEN))
				wallet_message(error,
					       "the active master key %s of wallet %s is not on HSM "
					       "token '%s' (no one secret key object with its CKA_ID)",
					       text, request->path, wallet.identity.token_label);
			else
				token_failed(error, token, "C_FindObjects", CKR_GENERAL_ERROR);
			token_release(token);
			hsm_wallet_release(&wallet);
			return ret;
		}
	}
	keyring_attach_token(wallet.ring, &hsm_token_ops, token);
	ret = open_links(request, &wallet.identity, wallet.ring, error);
	if (ret < 0) {
		hsm_wallet_release(&wallet);
		return ret;
	}
	/* The token keeps what hsm.wallet names, links included, for the next write of it. */
	pthread_mutex_lock(&token->objects_lock);
	memcpy(token->identity.links, wallet.identity.links, sizeof(token->identity.links));
	token->identity.link_count = wallet.identity.link_count;
	pthread_mutex_unlock(&token->objects_lock);
	request->ring = wallet.ring;
	wallet.ring = NULL;
	hsm_wallet_release(&wallet);
	return 0;
}

int hsm_token_set_links(struct keystore_token *token, const struct hsm_link *links, size_t count)
{
	if (count > HSM_MAX_LINKS)
		return -E2BIG;
	pthread_mutex_lock(&token->objects_lock);
	memcpy(token->identity.links, links, count * sizeof(*links));
	token->identity.link_count = count;
	pthread_mutex_unlock(&token->objects_lock);
	return 0;
}

void hsm_token_links(struct keystore_token *token, struct hsm_link links[HSM_MAX_LINKS],
		     size_t *count)
{
	pthread_mutex_lock(&token->objects_lock);
	memcpy(links, token->identity.links, sizeof(token->identity.links));
	*count = token->identity.link_count;
	pthread_mutex_unlock(&token->objects_lock);
}

static int hsm_encode(const struct keyring *ring, uint8_t **out, size_t *out_len,
		      char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_token_ops *ops;
	struct keystore_token *token = keyring_token_of(ring, &ops);
	char *text;
	size_t len;
	int ret;

	if (!token || ops != &hsm_token_ops) {
		wallet_message(error, "cannot write an HSM wallet without its token open");
		return -EINVAL;
	}
	pthread_mutex_lock(&token->objects_lock);
	ret = hsm_wallet_encode(&token->identity, ring, token->objects, token->object_count,
				wallet_now(), &text, &len);
	pthread_mutex_unlock(&token->objects_lock);
	if (ret < 0) {
		wallet_message(error, "cannot encode the HSM wallet: %s",
			       ret == -EINVAL ? "a key not on its token" : keystore_error_message(ret));
		return ret;
	}
	/* The callers free wallet bytes with secure_free. */
	*out = secure_alloc(len + 1);
	if (!*out) {
		free(text);
		return -ENOMEM;
	}
	memcpy(*out, text, len);
	*out_len = len;
	free(text);
	return 0;
}

const struct keystore_kind keystore_kind_hsm = {
	.code = WALLET_KIND_HSM,
	.name = "HSM",
	.file = WALLET_HSM_FILE,
	.backup_prefix = "hsm",
	.paths_offset = offsetof(struct wallet_paths, hsm),
	.wallet_words = "HSM wallet",
	.store_words = NULL,
	.auto_login = false,
	/* A directory with hsm.wallet is an HSM wallet: it is what the daemon opens. */
	.mount_rank = -1,
	.read = hsm_read,
	.encode = hsm_encode,
	.secret_words = "PIN of the HSM token",
};

/* --- links: migrations ---------------------------------------------------------------- */

static struct keystore_token *own_token(const struct keyring *ring,
					char error[KEYSTORE_ERROR_SIZE])
{
	const struct keystore_token_ops *ops;
	struct keystore_token *token = keyring_token_of(ring, &ops);

	if (!token || ops != &hsm_token_ops) {
		wallet_message(error, "only an HSM wallet links other wallets");
		return NULL;
	}
	return token;
}

int wallet_hsm_link(struct keyring *ring, const char *path, bool active,
		    char error[KEYSTORE_ERROR_SIZE])
{
	struct keystore_token *token = own_token(ring, error);
	struct hsm_link links[HSM_MAX_LINKS];
	struct keyring *linked = NULL;
	char why[KEYSTORE_ERROR_SIZE] = "";
	size_t count;
	int ret;

	if (!token)
		return -EINVAL;
	if (path[0] != '/' || strlen(path) > HSM_MODULE_PATH_MAX || strchr(path, ' ')) {
		wallet_message(error, "a linked wallet must be an absolute path without spaces, "
			       "at most %d bytes", HSM_MODULE_PATH_MAX);
		return -EINVAL;
	}
	hsm_token_links(token, links, &count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(links[i].path, path) == 0 || (active && links[i].active)) {
			wallet_message(error, "%s is linked already, or another link is active",
				       path);
			return -EINVAL;
		}
	if (count == HSM_MAX_LINKS) {
		wallet_message(error, "an HSM wallet links at most %d wallets", HSM_MAX_LINKS);
		return -E2BIG;
	}
	link_depth++;
	ret = keystore_open_for_mount(path, -1, &linked, why);
	link_depth--;
	if (ret < 0) {
		wallet_message(error, "wallet %s does not open without a person (it needs an "
			       "auto-login wallet or an external store to be linked): %s", path, why);
		return ret;
	}
	/* The linked wallet's key wraps new files from now on. */
	if (active)
		keyring_retire_active(ring);
	ret = keyring_link(ring, linked, active);
	keyring_free(linked);
	if (ret == -EINVAL) {
		wallet_message(error, "wallet %s has another wallet ID than this one", path);
		return ret;
	}
	if (ret < 0) {
		wallet_message(error, "cannot take the keys of %s: %s", path,
			       keystore_error_message(ret));
		return ret;
	}
	snprintf(links[count].path, sizeof(links[count].path), "%s", path);
	links[count].active = active;
	return hsm_token_set_links(token, links, count + 1);
}

int wallet_hsm_unlink(struct keyring *ring, const char *path, char error[KEYSTORE_ERROR_SIZE])
{
	struct keystore_token *token = own_token(ring, error);
	struct hsm_link links[HSM_MAX_LINKS];
	size_t count, kept = 0;

	if (!token)
		return -EINVAL;
	hsm_token_links(token, links, &count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(links[i].path, path) != 0)
			links[kept++] = links[i];
	if (kept == count) {
		wallet_message(error, "this HSM wallet does not link %s", path);
		return -EINVAL;
	}
	return hsm_token_set_links(token, links, kept);
}

