/*
 * The master keys of a KMIP wallet on the key server (keystore/kmip_wallet.h): the first key of
 * a new wallet, the fetch of every key into a ring at mount or reload, rotation, and the
 * revoke and destroy of a deleted key. The TLS wallet named by kmip.wallet is opened by its
 * auto-login file, as the daemon must open it unattended; its own strict-mode checks run there.
 *
 * Every key is created with a Name made of the wallet ID and key ID, so that a key whose Create
 * answer was lost can be found again with Locate, and a key made on the server is read back
 * with Get (and checked to be AES-256) before the wallet starts to use it. A key on the server
 * that no wallet file came to name (the write failed) is revoked and destroyed again.
 *
 * A wallet of a key group (the hosts of a fleet sharing their keys) lists no key: each fetch
 * Locates the group's keys on the server (Object Group "tdefs-GROUP", each named
 * "tdefs-GROUP-KEYID"), so a rotation one host makes is what every other host fetches next.
 * Before a key is used as ACTIVE its State is asked (Get Attributes): a key the server calls
 * Deactivated or Compromised (revoked) is fetched to read what it wraps, never to wrap anew.
 */
#include "keystore/kmip_wallet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/tls.h"
#include "keystore/tls_wallet.h"
#include "keystore/wallet_internal.h"

/* The open TLS wallet and a client over the wallet's servers. */
struct session {
	struct tls_wallet *tls;
	struct kmip_client *client;
};

static int session_open(const struct kmip_wallet *w, struct session *s,
			char error[KEYSTORE_ERROR_SIZE])
{
	struct password_source auto_login = { 0 };
	int ret;

	memset(s, 0, sizeof(*s));
	ret = tls_wallet_open(w->tls_wallet, false, &auto_login, &s->tls, error);
	if (ret < 0)
		return ret;
	ret = kmip_client_new(w->servers, w->server_count, tls_wallet_content(s->tls),
			      w->timeout_ms, &s->client);
	if (ret < 0) {
		wallet_message(error, "cannot set up the KMIP client: %s", strerror(-ret));
		tls_wallet_close(s->tls);
	}
	return ret;
}

static void session_close(struct session *s)
{
	kmip_client_free(s->client);
	tls_wallet_close(s->tls);
}

static void key_name(const uint8_t wallet_id[KEY_ID_SIZE], const uint8_t id[KEY_ID_SIZE],
		     char name[KMIP_ID_SIZE])
{
	char wallet_text[KEY_ID_TEXT_SIZE], id_text[KEY_ID_TEXT_SIZE];

	key_id_format(wallet_id, wallet_text);
	key_id_format(id, id_text);
	snprintf(name, KMIP_ID_SIZE, "tdefs-%s-%s", wallet_text, id_text);
}

/*
 * A failure of the KMIP client as a keystore meaning, so that every tool exits with the code of
 * its kind: no server reached (connection, handshake, certificates) or a server that refused
 * or did not answer in KMIP. Other errors are left as they are.
 */
static int server_failure(int ret)
{
	switch (ret) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ECONNRESET:
	case -EACCES:
	case -EPERM:
	case -EKEYEXPIRED:
		return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_SERVER_UNREACHABLE);
	case -EREMOTEIO:
	case -EPROTO:
	case -EBADMSG:
		return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_SERVER_REFUSED);
	default:
		return ret;
	}
}

static void group_object_group(const char *group, char out[KMIP_ID_SIZE])
{
	snprintf(out, KMIP_ID_SIZE, "tdefs-%s", group);
}

static void group_key_name(const char *group, const uint8_t id[KEY_ID_SIZE],
			   char name[KMIP_ID_SIZE])
{
	char id_text[KEY_ID_TEXT_SIZE];

	key_id_format(id, id_text);
	snprintf(name, KMIP_ID_SIZE, "tdefs-%s-%s", group, id_text);
}

/* The key ID in a group key's Name "tdefs-GROUP-KEYID": -EPROTO for any other name. */
static int group_key_id(const char *group, const char *name, uint8_t id[KEY_ID_SIZE])
{
	char prefix[KMIP_ID_SIZE];
	size_t len;

	len = (size_t)snprintf(prefix, sizeof(prefix), "tdefs-%s-", group);
	if (strncmp(name, prefix, len) != 0 || strlen(name + len) != KEY_ID_TEXT_SIZE - 1 ||
	    key_id_parse(name + len, id) < 0)
		return -EPROTO;
	return 0;
}

/* Which key of several Active ones is the ACTIVE one: the last activated (then the greatest
 * identifier, so that every host picks the same one). */
static bool activated_later(const struct kmip_wallet_key *a, const struct kmip_wallet_key *b)
{
	if (a->activation_time != b->activation_time)
		return a->activation_time > b->activation_time;
	return strcmp(a->unique_id, b->unique_id) > 0;
}

/*
 * The keys of w's group as the server has them, into w->keys (oldest activation first): the
 * Active key activated last is ACTIVE, every other key with key material RETIRED. A key not
 * yet activated (another host's rotation half done) and a destroyed one are left out; an
 * object in the group that is not a tdefs key is refused.
 */
static int group_list(struct session *s, struct kmip_wallet *w, char error[KEYSTORE_ERROR_SIZE])
{
	char (*ids)[KMIP_ID_SIZE] = malloc(KMIP_LOCATE_MAX * KMIP_ID_SIZE);
	char why[KMIP_WHY_SIZE] = "", object_group[KMIP_ID_SIZE];
	struct kmip_wallet_key *active = NULL;
	size_t count = 0;
	int ret;

	if (!ids)
		return -ENOMEM;
	w->key_count = 0;
	group_object_group(w->group, object_group);
	ret = kmip_locate_group(s->client, object_group, ids, KMIP_LOCATE_MAX, &count, why);
	if (ret < 0) {
		wallet_message(error, "cannot list the keys of group %s: %s", w->group, why);
		ret = server_failure(ret);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		struct kmip_wallet_key *key = &w->keys[w->key_count];
		uint32_t state;
		int64_t activated;

		memset(key, 0, sizeof(*key));
		ret = kmip_get_state(s->client, ids[i], &state, key->name, &activated, why);
		if (ret < 0) {
			wallet_message(error, "cannot read the state of KMIP object %s of group %s: %s",
				       ids[i], w->group, why);
			ret = server_failure(ret);
			goto out;
		}
		if (state == KMIP_STATE_PRE_ACTIVE || state == KMIP_STATE_DESTROYED ||
		    state == KMIP_STATE_DESTROYED_COMPROMISED)
			continue;
		if (group_key_id(w->group, key->name, key->id) < 0) {
			wallet_message(error, "KMIP object %s in group %s is not a tdefs key "
					      "(its Name is not tdefs-%s-KEYID)",
				       ids[i], w->group, w->group);
			ret = -EPROTO;
			goto out;
		}
		snprintf(key->unique_id, sizeof(key->unique_id), "%s", ids[i]);
		key->server_state = state;
		key->state = MEK_STATE_RETIRED;
		key->activation_time = activated;
		key->creation_time = activated;
		if (state == KMIP_STATE_ACTIVE && (!active || activated_later(key, active)))
			active = key;
		w->key_count++;
	}
	if (active)
		active->state = MEK_STATE_ACTIVE;
	/* Oldest first, as a wallet lists them (insertion sort: a group holds few keys). */
	for (size_t i = 1; i < w->key_count; i++) {
		struct kmip_wallet_key moving = w->keys[i];
		size_t j = i;
		for (; j > 0 && activated_later(&w->keys[j - 1], &moving); j--)
			w->keys[j] = w->keys[j - 1];
		w->keys[j] = moving;
	}
	ret = 0;
out:
	free(ids);
	return ret;
}

/* Revoke and destroy an object no wallet names (best effort: the first failure is kept). */
static int discard(struct session *s, const char *unique_id, char why[KMIP_WHY_SIZE])
{
	int ret = kmip_revoke(s->client, unique_id, KMIP_REVOKE_CESSATION, why);

	return ret < 0 ? ret : kmip_destroy(s->client, unique_id, why);
}

/*
 * A new active key on the server for wallet w, appended to w's list (the ACTIVE one, if any,
 * becomes RETIRED); the key bytes are read back into locked memory only to be checked.
 */
static int make_key(struct session *s, struct kmip_wallet *w, uint8_t new_id[KEY_ID_SIZE],
		    char error[KEYSTORE_ERROR_SIZE])
{
	struct kmip_wallet_key *key;
	char why[KMIP_WHY_SIZE] = "";
	uint8_t *check;
	int64_t now = wallet_now();
	int ret;

	if (w->key_count == KMIP_WALLET_MAX_KEYS) {
		wallet_message(error, "the KMIP wallet holds %d keys, the most it can",
			       KMIP_WALLET_MAX_KEYS);
		return KEYSTORE_ERROR(KEYSTORE_ERR_WALLET_FULL);
	}
	key = &w->keys[w->key_count];
	memset(key, 0, sizeof(*key));
	ret = crypto_random_bytes(key->id, KEY_ID_SIZE);
	if (ret < 0) {
		wallet_message(error, "cannot draw a key ID: %s", strerror(-ret));
		return ret;
	}
	char object_group[KMIP_ID_SIZE];
	if (w->group[0]) {
		group_key_name(w->group, key->id, key->name);
		group_object_group(w->group, object_group);
	} else {
		key_name(w->wallet_id, key->id, key->name);
	}
	ret = kmip_create_aes256(s->client, key->name, w->group[0] ? object_group : NULL,
				 key->unique_id, why);
	if (ret == 0) {
		ret = kmip_activate(s->client, key->unique_id, why);
		if (ret == 0) {
			check = secure_alloc(KMIP_KEY_SIZE);
			ret = check ? kmip_get_aes256(s->client, key->unique_id, check, why)
				    : -ENOMEM;
			secure_free(check);
		}
		if (ret < 0) {
			char ignored[KMIP_WHY_SIZE];
			(void)discard(s, key->unique_id, ignored);
		}
	}
	if (ret < 0) {
		wallet_message(error, "cannot create a key on the key server: %s", why);
		return server_failure(ret);
	}
	for (size_t i = 0; i < w->key_count; i++)
		if (w->keys[i].state == MEK_STATE_ACTIVE)
			w->keys[i].state = MEK_STATE_RETIRED;
	key->state = MEK_STATE_ACTIVE;
	key->server_state = KMIP_STATE_ACTIVE;
	key->creation_time = now;
	key->activation_time = now;
	w->key_count++;
	memcpy(new_id, key->id, KEY_ID_SIZE);
	return 0;
}

int kmip_keystore_create(const char *dir, const struct kmip_create_options *options,
			 uint8_t new_id[KEY_ID_SIZE], bool *joined, char error[KEYSTORE_ERROR_SIZE])
{
	const char *servers = options->servers, *tls_wallet = options->tls_wallet;
	const char *container = options->container, *group = options->group;
	int timeout_ms = options->timeout_ms;
	struct kmip_wallet *w = calloc(1, sizeof(*w));
	char why[KMIP_WHY_SIZE], backup[PATH_MAX];
	struct session s;
	int ret;

	if (!w)
		return -ENOMEM;
	*joined = false;
	ret = kmip_servers_parse(servers, w->servers, &w->server_count, why);
	if (ret < 0) {
		wallet_message(error, "--kmip-server: %s", why);
		goto out;
	}
	if (!tls_wallet || tls_wallet[0] != '/' || strlen(tls_wallet) >= sizeof(w->tls_wallet) ||
	    strchr(tls_wallet, ' ') || strchr(tls_wallet, '\n')) {
		wallet_message(error, "--tls-wallet must be an absolute path without spaces");
		ret = -EINVAL;
		goto out;
	}
	if (!wallet_container_valid(container)) {
		wallet_message(error, "container name '%.80s' is not valid", container);
		ret = -EINVAL;
		goto out;
	}
	strcpy(w->tls_wallet, tls_wallet);
	strcpy(w->container, container);
	w->timeout_ms = timeout_ms > 0 ? timeout_ms : KMIP_WALLET_DEFAULT_TIMEOUT_MS;
	if (w->timeout_ms > KMIP_WALLET_MAX_TIMEOUT_MS) {
		wallet_message(error, "a KMIP timeout is at most %d ms", KMIP_WALLET_MAX_TIMEOUT_MS);
		ret = -EINVAL;
		goto out;
	}
	if (kmip_wallet_present(dir)) {
		wallet_message(error, "KMIP wallet %s/%s already exists", dir, KMIP_WALLET_FILE);
		ret = -EEXIST;
		goto out;
	}
	if (options->link) {
		if (options->link[0] != '/' || strlen(options->link) >= sizeof(w->link) ||
		    strchr(options->link, ' ') || strchr(options->link, '\n')) {
			wallet_message(error, "the linked wallet must be an absolute path without "
					      "spaces");
			ret = -EINVAL;
			goto out;
		}
		strcpy(w->link, options->link);
	}
	if (options->wallet_id)
		memcpy(w->wallet_id, options->wallet_id, KEY_ID_SIZE);
	else
		ret = crypto_random_bytes(w->wallet_id, KEY_ID_SIZE);
	if (ret < 0) {
		wallet_message(error, "cannot draw a wallet ID: %s", strerror(-ret));
		goto out;
	}
	if (group) {
		if (!kmip_group_valid(group)) {
			wallet_message(error, "--kmip-group: '%.80s' is not 1 to 64 letters, digits, "
					      "'.', '_', '-'", group);
			ret = -EINVAL;
			goto out;
		}
		strcpy(w->group, group);
	}
	ret = session_open(w, &s, error);
	if (ret < 0)
		goto out;
	if (w->group[0]) {
		/* A group the server already holds keys of is joined: no key is made. */
		ret = group_list(&s, w, error);
		if (ret == 0 && w->key_count > 0) {
			*joined = true;
			memset(new_id, 0, KEY_ID_SIZE);
			for (size_t i = 0; i < w->key_count; i++)
				if (w->keys[i].state == MEK_STATE_ACTIVE)
					memcpy(new_id, w->keys[i].id, KEY_ID_SIZE);
			w->key_count = 0;
			ret = kmip_wallet_write(dir, w, true, backup, error);
			session_close(&s);
			goto out;
		}
	}
	if (ret == 0)
		ret = make_key(&s, w, new_id, error);
	if (ret == 0) {
		char made[KMIP_ID_SIZE];
		memcpy(made, w->keys[0].unique_id, sizeof(made));
		if (w->group[0])
			w->key_count = 0; /* the server lists a group's keys */
		ret = kmip_wallet_write(dir, w, true, backup, error);
		if (ret < 0)
			(void)discard(&s, made, why);
	}
	session_close(&s);
out:
	free(w);
	return ret;
}

/*
 * An empty ring of the wallet's ID, container and generation, and the record a key is read into
 * on its way to the ring: locked memory, as the ring is.
 */
static int ring_and_record(const struct kmip_wallet *w, struct keyring **ring,
			   struct mek_record **record, char error[KEYSTORE_ERROR_SIZE])
{
	int ret;

	ret = keyring_new(w->wallet_id, w->container, ring);
	if (ret < 0) {
		wallet_message(error, "cannot make a key ring: %s", strerror(-ret));
		return ret;
	}
	keyring_set_generation(*ring, w->generation);
	*record = secure_alloc(sizeof(**record));
	if (!*record) {
		keyring_free(*ring);
		*ring = NULL;
		return -ENOMEM;
	}
	return 0;
}

int kmip_keystore_fetch(const struct kmip_wallet *w, struct keyring **out,
			char error[KEYSTORE_ERROR_SIZE])
{
	struct kmip_wallet *listed = NULL;
	struct keyring *ring = NULL;
	struct mek_record *record;
	char why[KMIP_WHY_SIZE], id[KEY_ID_TEXT_SIZE];
	struct session s;
	int ret;

	ret = ring_and_record(w, &ring, &record, error);
	if (ret < 0)
		return ret;
	ret = session_open(w, &s, error);
	if (ret < 0)
		goto out;
	if (w->group[0]) {
		listed = malloc(sizeof(*listed));
		if (!listed) {
			ret = -ENOMEM;
			goto close;
		}
		memcpy(listed, w, sizeof(*listed));
		ret = group_list(&s, listed, error);
		if (ret < 0)
			goto close;
		w = listed;
	}
	for (size_t i = 0; i < w->key_count && ret == 0; i++) {
		const struct kmip_wallet_key *key = &w->keys[i];
		uint8_t state = key->state;

		memset(record, 0, sizeof(*record));
		key_id_format(key->id, id);
		ret = kmip_get_aes256(s.client, key->unique_id, record->mek, why);
		if (ret < 0) {
			wallet_message(error, "cannot fetch master key %s (KMIP object %s): %s", id,
				       key->unique_id, why);
			ret = server_failure(ret);
			break;
		}
		if (key->state == MEK_STATE_ACTIVE && !w->group[0]) {
			/*
			 * Never wrap under a key the server has revoked: ask before using it
			 * (after the Get, so that a destroyed key is named by its refusal).
			 */
			uint32_t server_state;
			int64_t activated;
			ret = kmip_get_state(s.client, key->unique_id, &server_state, NULL,
					     &activated, why);
			if (ret < 0) {
				wallet_message(error, "cannot read the state of master key %s (KMIP "
						      "object %s): %s",
					       id, key->unique_id, why);
				ret = server_failure(ret);
				break;
			}
			if (server_state != KMIP_STATE_ACTIVE) {
				state = MEK_STATE_RETIRED;
				record->revoked = true;
			}
		}
		if (key->server_state == KMIP_STATE_DEACTIVATED ||
		    key->server_state == KMIP_STATE_COMPROMISED)
			record->revoked = true;
		memcpy(record->id, key->id, KEY_ID_SIZE);
		record->creation_time = key->creation_time;
		record->activation_time = key->activation_time;
		record->state = state;
		/* Made and kept by the key server. */
		record->origin = MEK_ORIGIN_KMIP;
		record->backed_up = true; /* the server keeps it */
		snprintf(record->container, sizeof(record->container), "%s", w->container);
		ret = keyring_append(ring, record);
		if (ret < 0)
			wallet_message(error, "cannot add a fetched key to the ring: %s",
				       strerror(-ret));
	}
close:
	session_close(&s);
out:
	free(listed);
	secure_free(record);
	if (ret < 0) {
		keyring_free(ring);
		return ret;
	}
	*out = ring;
	return 0;
}

/*
 * Rotation in a group: the new key made Active on the server is what every host fetches
 * next; the keys Active before are then revoked as superseded (Deactivated: they still unwrap
 * what they wrapped, and no host wraps under them again). kmip.wallet does not change.
 */
static int rotate_group(struct session *s, struct kmip_wallet *w, uint8_t new_id[KEY_ID_SIZE],
			char error[KEYSTORE_ERROR_SIZE])
{
	char why[KMIP_WHY_SIZE] = "", id[KEY_ID_TEXT_SIZE];
	size_t before;
	int ret = group_list(s, w, error);

	if (ret < 0)
		return ret;
	before = w->key_count;
	ret = make_key(s, w, new_id, error);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < before; i++) {
		if (w->keys[i].server_state != KMIP_STATE_ACTIVE)
			continue;
		ret = kmip_revoke(s->client, w->keys[i].unique_id, KMIP_REVOKE_SUPERSEDED, why);
		if (ret < 0) {
			key_id_format(w->keys[i].id, id);
			wallet_message(error, "the new key is ACTIVE, but the one before (%s, KMIP "
					      "object %s) was not revoked: %s",
				       id, w->keys[i].unique_id, why);
			return server_failure(ret);
		}
	}
	return 0;
}

int kmip_keystore_rotate(const char *dir, uint8_t new_id[KEY_ID_SIZE], char backup[PATH_MAX],
			 char error[KEYSTORE_ERROR_SIZE])
{
	struct kmip_wallet *w = calloc(1, sizeof(*w));
	char why[KMIP_WHY_SIZE];
	struct session s;
	int ret;

	if (!w)
		return -ENOMEM;
	backup[0] = '\0';
	ret = kmip_wallet_read(dir, w, error);
	if (ret == 0)
		ret = session_open(w, &s, error);
	if (ret < 0)
		goto out;
	if (w->group[0]) {
		ret = rotate_group(&s, w, new_id, error);
		session_close(&s);
		goto out;
	}
	ret = make_key(&s, w, new_id, error);
	if (ret == 0) {
		ret = kmip_wallet_write(dir, w, false, backup, error);
		if (ret < 0)
			(void)discard(&s, w->keys[w->key_count - 1].unique_id, why);
	}
	session_close(&s);
out:
	free(w);
	return ret;
}

/* Revoke and destroy key id of a group on the server (the caller took the census). */
static int delete_group_key(struct session *s, const struct kmip_wallet *w,
			    const uint8_t id[KEY_ID_SIZE], char error[KEYSTORE_ERROR_SIZE])
{
	char why[KMIP_WHY_SIZE] = "", id_text[KEY_ID_TEXT_SIZE];
	int ret;

	key_id_format(id, id_text);
	for (size_t i = 0; i < w->key_count; i++) {
		if (memcmp(w->keys[i].id, id, KEY_ID_SIZE) != 0)
			continue;
		if (w->keys[i].state == MEK_STATE_ACTIVE) {
			wallet_message(error, "key %s is the ACTIVE key of group %s: rotate "
					      "(set-key) first",
				       id_text, w->group);
			return KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE);
		}
		/* A key revoked already (superseded) is only destroyed. */
		ret = w->keys[i].server_state == KMIP_STATE_ACTIVE
			      ? discard(s, w->keys[i].unique_id, why)
			      : kmip_destroy(s->client, w->keys[i].unique_id, why);
		if (ret < 0)
			wallet_message(error, "key %s (KMIP object %s) was not destroyed: %s",
				       id_text, w->keys[i].unique_id, why);
		return server_failure(ret);
	}
	wallet_message(error, "no key %s in group %s on the key server", id_text, w->group);
	return KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
}

int kmip_keystore_delete(const char *dir, const uint8_t id[KEY_ID_SIZE], char backup[PATH_MAX],
			 char error[KEYSTORE_ERROR_SIZE])
{
	struct kmip_wallet *w = calloc(1, sizeof(*w));
	char why[KMIP_WHY_SIZE], unique_id[KMIP_ID_SIZE], id_text[KEY_ID_TEXT_SIZE];
	struct session s;
	size_t index;
	int ret;

	if (!w)
		return -ENOMEM;
	backup[0] = '\0';
	key_id_format(id, id_text);
	ret = kmip_wallet_read(dir, w, error);
	if (ret < 0)
		goto out;
	if (w->group[0]) {
		ret = session_open(w, &s, error);
		if (ret < 0)
			goto out;
		ret = group_list(&s, w, error);
		if (ret == 0)
			ret = delete_group_key(&s, w, id, error);
		session_close(&s);
		goto out;
	}
	for (index = 0; index < w->key_count; index++)
		if (memcmp(w->keys[index].id, id, KEY_ID_SIZE) == 0)
			break;
	if (index == w->key_count) {
		wallet_message(error, "no key %s in KMIP wallet %s", id_text, dir);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_NO_SUCH_KEY);
		goto out;
	}
	if (w->keys[index].state == MEK_STATE_ACTIVE) {
		wallet_message(error, "key %s is the ACTIVE key: rotate (set-key) first", id_text);
		ret = KEYSTORE_ERROR(KEYSTORE_ERR_KEY_IS_ACTIVE);
		goto out;
	}
	memcpy(unique_id, w->keys[index].unique_id, sizeof(unique_id));
	ret = session_open(w, &s, error);
	if (ret < 0)
		goto out;
	memmove(&w->keys[index], &w->keys[index + 1],
		(w->key_count - index - 1) * sizeof(w->keys[0]));
	w->key_count--;
	/* The wallet stops naming the key before the server forgets it. */
	ret = kmip_wallet_write(dir, w, false, backup, error);
	if (ret == 0) {
		ret = discard(&s, unique_id, why);
		if (ret < 0)
			wallet_message(error,
				       "key %s is out of the wallet, but its KMIP object %s was not "
				       "revoked and destroyed: %s",
				       id_text, unique_id, why);
		ret = server_failure(ret);
	}
	session_close(&s);
out:
	free(w);
	return ret;
}

/*
 * The keys of the wallet w links into ring, marked linked and never ACTIVE. The linked wallet
 * is opened as the daemon opens a wallet (its own strict-mode checks run there); a linked
 * KMIP wallet is refused, so links never chain.
 */
static int add_linked(const struct kmip_wallet *w, struct keyring *ring,
		      char error[KEYSTORE_ERROR_SIZE])
{
	char why[KEYSTORE_ERROR_SIZE] = "";
	struct keyring *linked = NULL;
	int ret;

	if (kmip_wallet_present(w->link)) {
		wallet_message(error, "the linked wallet %.200s is a KMIP wallet: a link names a "
				      "wallet file directory",
			       w->link);
		return -EINVAL;
	}
	ret = keystore_open_for_mount(w->link, -1, &linked, why);
	if (ret < 0) {
		wallet_message(error, "cannot open the linked wallet %.200s: %.300s", w->link, why);
		return ret;
	}
	ret = keyring_link(ring, linked, false);
	keyring_free(linked);
	if (ret < 0)
		wallet_message(error, "cannot link wallet %.200s: %s", w->link,
			       ret == -EINVAL ? "it has another wallet ID" : strerror(-ret));
	return ret;
}

int kmip_keystore_open_dir(const char *dir, struct keyring **out, char error[KEYSTORE_ERROR_SIZE])
{
	struct kmip_wallet *w = malloc(sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	ret = kmip_wallet_read(dir, w, error);
	if (ret == 0)
		ret = kmip_keystore_fetch(w, out, error);
	if (ret == 0 && w->link[0]) {
		ret = add_linked(w, *out, error);
		if (ret < 0) {
			keyring_free(*out);
			*out = NULL;
		}
	}
	free(w);
	return ret;
}

int kmip_keystore_listing(const char *dir, struct kmip_wallet *w, struct keyring **out,
			  char error[KEYSTORE_ERROR_SIZE])
{
	struct keyring *ring = NULL;
	struct mek_record *record;
	struct session s;
	int ret = kmip_wallet_read(dir, w, error);

	if (ret < 0)
		return ret;
	if (w->group[0]) {
		/* A group's keys are the server's: it is asked (for IDs and states, no key). */
		ret = session_open(w, &s, error);
		if (ret < 0)
			return ret;
		ret = group_list(&s, w, error);
		session_close(&s);
		if (ret < 0)
			return ret;
	}
	ret = ring_and_record(w, &ring, &record, error);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < w->key_count && ret == 0; i++) {
		memset(record, 0, sizeof(*record));
		memcpy(record->id, w->keys[i].id, KEY_ID_SIZE);
		record->creation_time = w->keys[i].creation_time;
		record->activation_time = w->keys[i].activation_time;
		record->state = w->keys[i].state;
		record->origin = MEK_ORIGIN_KMIP;
		record->backed_up = true;
		snprintf(record->container, sizeof(record->container), "%s", w->container);
		ret = keyring_append(ring, record);
	}
	secure_free(record);
	if (ret < 0) {
		wallet_message(error, "cannot list the keys: %s", strerror(-ret));
		keyring_free(ring);
		return ret;
	}
	/* The linked wallet's keys too, so that the census counts the headers they wrap. */
	if (w->link[0]) {
		ret = add_linked(w, ring, error);
		if (ret < 0) {
			keyring_free(ring);
			return ret;
		}
	}
	*out = ring;
	return 0;
}
