/*
 * keystore: wallets that hold master encryption keys (MEKs), in the manner of Oracle TDE's
 * keystores. A wallet directory holds a password wallet and, optionally, an auto-login or local
 * auto-login wallet with the same keys. Opening a wallet yields a keyring: every MEK ever
 * created (historical keys included), with one marked active.
 *
 * This header is the whole contract the filesystem and the tools use. Functions return 0 or a
 * negative errno; where a person must read why, they also fill a one-line message in the
 * caller's buffer that names the wallet file and never contains key material or passwords.
 *   -ENOENT        no wallet there (status NOT_AVAILABLE)
 *   -EKEYREJECTED  wrong password
 *   -EBADMSG       wallet damaged (corrupt, truncated, bad magic); message points to a backup
 *   -EPROTONOSUPPORT  wallet written by a newer format version
 *   -EPERM         auto-login wallet readable by group or others, or a wallet file, the wallet
 *                  directory or one of its parents owned by another user or writable by
 *                  others (strict modes; the message gives the chmod or chown)
 *   -EXDEV         local auto-login wallet made on another host
 *   -ENOKEY        the wallet holds no master key (status OPEN_NO_MASTER_KEY)
 */
#ifndef TDEFS_KEYSTORE_H
#define TDEFS_KEYSTORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_ID_SIZE 16
#define KEY_ID_TEXT_SIZE 33 /* 32 lowercase hex digits and a NUL */
#define MEK_SIZE 32
#define KEYSTORE_ERROR_SIZE 512

struct keyring;

/* The stable text form of a key ID: 32 lowercase hex digits. */
void key_id_format(const uint8_t id[KEY_ID_SIZE], char out[KEY_ID_TEXT_SIZE]);
int key_id_parse(const char *text, uint8_t id[KEY_ID_SIZE]);

/*
 * Open the wallet directory for a mount. With password_fd >= 0 the password wallet, with the
 * password read from it, even when an auto-login file is there too (the password given wins;
 * logged). With -1: the auto-login or local auto-login wallet when present (no prompt), else the
 * password wallet with the password from the external password store when there is one. The
 * directory, its parents and its files must pass strict modes first.
 */
int keystore_open_for_mount(const char *wallet_dir, int password_fd, struct keyring **out,
			    char error[KEYSTORE_ERROR_SIZE]);

/*
 * Re-read the wallet for a running daemon that holds loaded: the file of the kind loaded was
 * read from, never another kind (a password wallet is re-opened only through the external
 * password store), after the same strict-modes check as at mount. On success *out is a new ring
 * with every key of loaded and the wallet's new keys; the active key is the wallet's when it
 * has one, else the loaded one. On failure loaded is all there is: the caller keeps it.
 */
struct keystore_reload_result {
	char path[PATH_MAX];	/* the file re-read */
	size_t added;		/* keys new to the daemon */
	size_t kept;		/* loaded keys the file lacks, kept */
	bool active_moved;	/* the active key changed */
	bool wallet_has_active; /* false: the loaded active key stays active */
};
int keystore_reload(const char *wallet_dir, const struct keyring *loaded, struct keyring **out,
		    struct keystore_reload_result *result, char error[KEYSTORE_ERROR_SIZE]);

void keyring_free(struct keyring *ring);

/* The MEK with this key ID, or NULL. The memory is locked and owned by the keyring. */
const uint8_t *keyring_find(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE]);

/* The active MEK and its ID; -ENOKEY when the wallet has none. */
int keyring_active(const struct keyring *ring, uint8_t id[KEY_ID_SIZE], const uint8_t **mek);

size_t keyring_count(const struct keyring *ring);

/*
 * The wallet's identity: 16 random bytes fixed when the password wallet is created and shared
 * by its auto-login copies and backups. A backing directory records it at --init so that
 * mounting it with another wallet fails with a clear message.
 */
void keyring_wallet_id(const struct keyring *ring, uint8_t id[KEY_ID_SIZE]);

/* Container name of the key set (default "CDB$ROOT"-like "default"). */
const char *keyring_container(const struct keyring *ring);

#endif
