/*
 * keystore_kind: the one seam for the kinds of wallet file (PASSWORD, AUTOLOGIN,
 * LOCAL_AUTOLOGIN, HSM). Each kind is one file (kind_*.c) that fills one struct keystore_kind: its
 * WALLET_TYPE word, its file in the wallet directory, how the daemon ranks it at mount, what the
 * clear header of such a file must look like, how a file of the kind is opened (the sealing key
 * derived from a password, a stored key or the host), and how a new file is sealed. kinds.c
 * holds the table; the rest of the keystore asks the table instead of switching on the kind, so
 * a new kind is one new file and one line in the table (docs/ARCHITECTURE.md, "Where new things
 * go: a keystore kind").
 *
 * Internal to the keystore, like wallet_internal.h: the public API still speaks enum
 * wallet_kind, whose values are the on-disk codes.
 */
#ifndef TDEFS_KEYSTORE_KIND_H
#define TDEFS_KEYSTORE_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

/*
 * What a new file's protection is built in: salt, stored key, check value, host secret and
 * sealing key, one locked block so that nothing of it lands in unlocked memory.
 */
struct keystore_kind_material {
	uint8_t salt[WALLET_SALT_SIZE];
	uint8_t stored[WALLET_STORED_KEY_SIZE];
	uint8_t check[WALLET_CHECK_SIZE];
	uint8_t secret[HOST_SECRET_SIZE];
	uint8_t key[AES256_KEY_SIZE];
};

/*
 * A device that holds master keys (an HSM token): the kind opens it, the ring keeps it
 * (keyring_attach_token) and asks it to make keys and to wrap and unwrap DEKs. Shared by the
 * rings a reload merges, so it is counted: the last release closes it.
 */
struct keystore_token;
struct keystore_token_ops {
	/* A new AES-256 key on the token, non-extractable, named by the key ID. */
	int (*generate)(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
			char error[KEYSTORE_ERROR_SIZE]);
	/* AES-256-GCM on the token: cipher/plain of len bytes, a 16-byte tag. */
	int (*seal)(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
		    const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		    const uint8_t *plain, size_t len, uint8_t *cipher, uint8_t tag[16]);
	int (*open)(struct keystore_token *token, const uint8_t id[KEY_ID_SIZE],
		    const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		    const uint8_t *cipher, size_t len, const uint8_t tag[16], uint8_t *plain);
	/* Connect again in a child after fork(). */
	int (*after_fork)(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE]);
	/*
	 * Availability (keyring_token_watch and the two after it in keystore.h): watch makes
	 * operations on a token found gone wait up to wait_ms for a reconnect; check asks the
	 * token whether it is there (0, 1 when already known gone, or the failure); reconnect
	 * opens sessions and logs in again.
	 */
	void (*watch)(struct keystore_token *token, unsigned wait_ms);
	int (*check)(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE]);
	int (*reconnect)(struct keystore_token *token, char error[KEYSTORE_ERROR_SIZE]);
	struct keystore_token *(*retain)(struct keystore_token *token);
	void (*release)(struct keystore_token *token);
};

struct keystore_kind {
	enum wallet_kind code;	   /* the on-disk code in the header's kind byte */
	const char *name;	   /* the WALLET_TYPE word status and JSON show: "PASSWORD" */
	const char *file;	   /* its file in the wallet directory: "password.wallet" */
	const char *backup_prefix; /* backup/<prefix>-<time>-g<gen>.wallet: "password" */
	size_t paths_offset;	   /* where its path is in struct wallet_paths (offsetof) */
	/* Words for messages about a file of this kind holding keys / an external store. */
	const char *wallet_words; /* "local auto-login wallet" */
	const char *store_words;  /* "local external password store"; NULL: cannot hold one */
	/*
	 * Opens without anything from the user: the file carries what opens it, so a mode open
	 * to group or others is refused before a byte is used; it is a copy of the password
	 * wallet when there is one, and the daemon prefers it at mount.
	 */
	bool auto_login;
	/* The order the daemon (and a read-only session) tries kinds in: lowest present first. */
	int mount_rank;

	/*
	 * The header fields the kind fixes, checked while parsing before any key is derived
	 * (wallet_file_parse): 0, or KEYSTORE_ERR_DAMAGED with the reason in why.
	 */
	int (*check_header)(const struct wallet_file_view *view, char why[WALLET_WHY_SIZE]);
	/*
	 * Derive the sealing key of a parsed file into key (request->password for a password
	 * wallet, which also keeps request->password_key). A one-line message on failure.
	 */
	int (*open)(const struct wallet_file_view *view, struct wallet_read *request,
		    uint8_t key[AES256_KEY_SIZE], char error[KEYSTORE_ERROR_SIZE]);
	/*
	 * Fill the protection of a new file: fields (salt, stored key, check, cost, flags)
	 * pointing into material, and material->key the sealing key. password_key is what a
	 * password wallet is sealed under (NULL for the others).
	 */
	int (*seal)(const struct password_key *password_key, struct wallet_header_fields *fields,
		    struct keystore_kind_material *material, char error[KEYSTORE_ERROR_SIZE]);

	/*
	 * A kind whose file is not a sealed wallet file (hsm.wallet: a key map, no key material)
	 * reads and writes it itself; NULL for the sealed kinds above, whose check_header, open
	 * and seal the common reader and encoder (wallet_io.c) call. read fills request as
	 * wallet_read() does; request->password is then the token's PIN, and with
	 * request->header_only only the file is parsed (the token is not opened).
	 */
	int (*read)(struct wallet_read *request, char error[KEYSTORE_ERROR_SIZE]);
	int (*encode)(const struct keyring *ring, uint8_t **out, size_t *out_len,
		      char error[KEYSTORE_ERROR_SIZE]);
	/* What a prompt asks for, when not a password: "PIN of the HSM token"; NULL: a password. */
	const char *secret_words;
};

extern const struct keystore_kind keystore_kind_password;	 /* kind_password.c */
extern const struct keystore_kind keystore_kind_autologin;	 /* kind_autologin.c */
extern const struct keystore_kind keystore_kind_local_autologin; /* kind_local_autologin.c */
extern const struct keystore_kind keystore_kind_hsm;		 /* kind_hsm.c */

/*
 * The ring's token (kinds with one): the ring takes the reference given. keyring_token_of()
 * answers the ring's, so that a reload can share it (ops->retain) with the ring it builds.
 */
void keyring_attach_token(struct keyring *ring, const struct keystore_token_ops *ops,
			  struct keystore_token *token);
struct keystore_token *keyring_token_of(const struct keyring *ring,
					const struct keystore_token_ops **ops);

/* The table (kinds.c), in the order status lists the files: password, auto-login, local. */
size_t keystore_kind_count(void);
const struct keystore_kind *keystore_kind_at(size_t index);
/* The kind with that on-disk code; NULL for a code no kind has. */
const struct keystore_kind *keystore_kind_of(enum wallet_kind code);

/* The path of the kind's file in paths. */
const char *keystore_kind_path(const struct keystore_kind *kind, const struct wallet_paths *paths);

/* The kind the daemon opens at mount: the present file of lowest mount_rank; NULL when none. */
const struct keystore_kind *keystore_kind_for_mount(const struct wallet_paths *paths);

/* Shared by the kinds: "cannot derive the key of wallet <path>: <why>", returns ret. */
int keystore_kind_derive_failed(const char *path, int ret, char error[KEYSTORE_ERROR_SIZE]);

/* For check_header: the reason in why, KEYSTORE_ERR_DAMAGED returned. */
int keystore_kind_damaged(char why[WALLET_WHY_SIZE], const char *reason);

static inline bool keystore_kind_all_zero(const uint8_t *data, size_t len)
{
	uint8_t bits = 0;

	for (size_t i = 0; i < len; i++)
		bits |= data[i];
	return bits == 0;
}

#endif
