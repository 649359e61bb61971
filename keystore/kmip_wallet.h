/*
 * kmip_wallet: the wallet directory of a key-server keystore (docs/WALLET.md, "KMIP wallet").
 * Its kmip.wallet names the KMIP servers, the TLS wallet that authenticates tdefs to them, and
 * for each master key the KMIP object that holds it; it never holds key material. The keys are
 * fetched with KMIP Get into locked memory and handed on as an ordinary key ring, so the rest
 * of tdefs (DEKs wrapped by the master keys, the census, rewrap) is as for a file wallet.
 *
 * kmip_wallet.c is the file: a strict, bounded text parser and its encoder, the read with the
 * owner and mode checks of strict modes, and the crash-safe replacement after a backup.
 * kmip_keystore.c is what talks to the servers: creating the first key, fetching the ring,
 * rotating, and the revoke and destroy of a deleted key.
 *
 * Errors are keystore.h codes (KEYSTORE_ERR_DAMAGED, _NEWER_FORMAT, _UNSAFE_MODES, _NO_SUCH_KEY,
 * _KEY_IS_ACTIVE, _WALLET_FULL) or -errno: the server's (kmip/kmip.h: -EREMOTEIO for a refusal,
 * -ECONNREFUSED, -ETIMEDOUT, ... when none could be reached), each with a one-line message.
 */
#ifndef TDEFS_KEYSTORE_KMIP_WALLET_H
#define TDEFS_KEYSTORE_KMIP_WALLET_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"
#include "keystore/wallet.h"
#include "kmip/kmip.h"

#define KMIP_WALLET_FILE "kmip.wallet"
#define KMIP_WALLET_BACKUP_PREFIX "kmip"
#define KMIP_WALLET_VERSION 1
#define KMIP_WALLET_MAX_SIZE 65536 /* bytes of kmip.wallet */
#define KMIP_WALLET_MAX_KEYS 256
#define KMIP_WALLET_LINE_MAX 512
#define KMIP_WALLET_DEFAULT_TIMEOUT_MS 5000
#define KMIP_WALLET_WHY_SIZE 160 /* the reason a file is refused, for a one-line message */
#define KMIP_WALLET_MAX_TIMEOUT_MS 600000
#define KMIP_GROUP_SIZE 65 /* a key group's name, NUL included */

/* One master key: its tdefs key ID and the KMIP object holding it. */
struct kmip_wallet_key {
	uint8_t id[KEY_ID_SIZE];
	uint8_t state; /* enum mek_state */
	int64_t creation_time, activation_time;
	char unique_id[KMIP_ID_SIZE]; /* the server's Unique Identifier */
	char name[KMIP_ID_SIZE];      /* the Name it was created with, to Locate it again */
	uint32_t server_state;	      /* enum kmip_state as the server last said; 0: not asked */
};

struct kmip_wallet {
	uint8_t wallet_id[KEY_ID_SIZE];
	uint64_t generation; /* counts the changes, as a file wallet's header does */
	char container[WALLET_CONTAINER_MAX + 1];
	char tls_wallet[PATH_MAX]; /* an absolute path */
	struct kmip_server servers[KMIP_MAX_SERVERS];
	size_t server_count;
	int timeout_ms;
	/*
	 * A key group shared by the hosts of a fleet ("" for none): its keys are the server's
	 * symmetric keys of Object Group "tdefs-GROUP", found by Locate at each fetch, and the
	 * file lists none of them (key_count is 0).
	 */
	char group[KMIP_GROUP_SIZE];
	/*
	 * A wallet directory this one links ("" for none): after tdekey migrate --to-kmip, the
	 * source wallet (same wallet ID), whose keys stay usable for the headers still wrapped
	 * under them; opened as the daemon opens a wallet, without a person.
	 */
	char link[PATH_MAX];
	struct kmip_wallet_key keys[KMIP_WALLET_MAX_KEYS];
	size_t key_count;
};

/*
 * Parse kmip.wallet's bytes. Every line is checked against its grammar and bound before it is
 * used; anything else is KEYSTORE_ERR_DAMAGED with the line number and reason in why. A
 * version above KMIP_WALLET_VERSION is KEYSTORE_ERR_NEWER_FORMAT.
 */
int kmip_wallet_parse(const uint8_t *data, size_t len, struct kmip_wallet *wallet,
		      char why[KMIP_WALLET_WHY_SIZE]);
/* The text of wallet (malloc'd), with its closing checksum line. */
int kmip_wallet_encode(const struct kmip_wallet *wallet, char **out, size_t *len);

/* A key group's name: 1 to 64 of [A-Za-z0-9._-]. */
bool kmip_group_valid(const char *group);

/* DIR/kmip.wallet into path; -ENAMETOOLONG. */
int kmip_wallet_path(const char *dir, char path[PATH_MAX]);
bool kmip_wallet_present(const char *dir);

/*
 * Read DIR/kmip.wallet: the directory and its ancestors, and the file (a regular file opened
 * without following a link), must pass strict modes (owned by root or the caller, written by no
 * one else) before a byte is parsed; so must the TLS wallet directory it names.
 */
int kmip_wallet_read(const char *dir, struct kmip_wallet *wallet, char error[KEYSTORE_ERROR_SIZE]);

/*
 * Replace (or, with create, make: -EEXIST when any wallet file is there) DIR/kmip.wallet with
 * wallet, generation counted up: under the directory's lock, a backup of the file as it was
 * first (backup names it, "" when there was none), then the crash-safe write.
 */
int kmip_wallet_write(const char *dir, struct kmip_wallet *wallet, bool create,
		      char backup[PATH_MAX], char error[KEYSTORE_ERROR_SIZE]);

/* --- the keys on the server (kmip_keystore.c) ------------------------------------------- */

/*
 * Make a KMIP wallet in dir: servers ("host:port,..."), the TLS wallet at tls_wallet, the first
 * master key created on the server (AES-256, named after the wallet and key ID), activated and
 * read back, then kmip.wallet written. A key made on the server whose wallet file could not be
 * written is revoked and destroyed again. new_id gets the key's ID.
 *
 * With group (NULL: none) the wallet is of that key group: when the server holds keys of the
 * group already, none is made, the wallet joins them (*joined; new_id the group's ACTIVE key,
 * zero when it has none); else the first key is made in the group.
 */
struct kmip_create_options {
	const char *servers;	/* "host:port,..." */
	const char *tls_wallet; /* an absolute path */
	const char *container;
	const char *group; /* NULL: a wallet of its own */
	int timeout_ms;	   /* 0: KMIP_WALLET_DEFAULT_TIMEOUT_MS */
	/* tdekey migrate --to-kmip: the source's wallet ID, and the source linked (NULL: none). */
	const uint8_t *wallet_id;
	const char *link;
};
int kmip_keystore_create(const char *dir, const struct kmip_create_options *options,
			 uint8_t new_id[KEY_ID_SIZE], bool *joined,
			 char error[KEYSTORE_ERROR_SIZE]);
/*
 * Fetch every key of wallet with KMIP Get into a new ring (locked memory), in the wallet's
 * order and states (a group's: the server's list). The ACTIVE key's State is asked first: one
 * the server has revoked is RETIRED in the ring, so no new file is wrapped under it. When no
 * server can be reached the message names each and its failure.
 */
int kmip_keystore_fetch(const struct kmip_wallet *wallet, struct keyring **out,
			char error[KEYSTORE_ERROR_SIZE]);
/*
 * kmip_wallet_read and kmip_keystore_fetch of DIR, and the keys of the wallet it links (opened
 * without a person, added as linked keys, none ACTIVE): what the daemon does at mount and
 * reload.
 */
int kmip_keystore_open_dir(const char *dir, struct keyring **out, char error[KEYSTORE_ERROR_SIZE]);
/*
 * The wallet's keys as a ring whose key bytes are all zero, with no server asked (a group's
 * server is asked for the keys' IDs and states, never their bytes): for listing
 * and for the key census (which reads key IDs from headers, never unseals). Never for data.
 */
int kmip_keystore_listing(const char *dir, struct kmip_wallet *wallet, struct keyring **out,
			  char error[KEYSTORE_ERROR_SIZE]);
/*
 * A new key created and activated on the server; the ACTIVE one becomes RETIRED. In a group
 * the keys Active before are revoked (superseded) on the server, and kmip.wallet is unchanged
 * (backup "").
 */
int kmip_keystore_rotate(const char *dir, uint8_t new_id[KEY_ID_SIZE], char backup[PATH_MAX],
			 char error[KEYSTORE_ERROR_SIZE]);
/*
 * Remove key id from the wallet and revoke and destroy its object on the server (the caller
 * has made sure by the key census that no file needs it). KEYSTORE_ERR_KEY_IS_ACTIVE for the
 * active key. The wallet file is rewritten first, so a failure on the server leaves an object
 * the wallet no longer uses, never a wallet naming a destroyed key.
 */
int kmip_keystore_delete(const char *dir, const uint8_t id[KEY_ID_SIZE], char backup[PATH_MAX],
			 char error[KEYSTORE_ERROR_SIZE]);

#endif
