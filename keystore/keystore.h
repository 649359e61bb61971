/*
 * keystore: wallets that hold master encryption keys (MEKs), in the manner of Oracle TDE's
 * keystores. A wallet directory holds a password wallet and, optionally, an auto-login or local
 * auto-login wallet with the same keys. Opening a wallet yields a keyring: every MEK ever
 * created (historical keys included), with one marked active.
 *
 * This header is the whole contract the filesystem and the tools use. Where a person must read
 * why a call failed, it also fills a one-line message in the caller's buffer that names the
 * wallet file and never contains key material or passwords.
 *
 * Return values: 0 on success; -errno for a system error (the errno the system call gave, so
 * that an ESTALE from a wallet on NFS reads as "Stale file handle"); or -(KEYSTORE_ERROR_BASE +
 * n) for a keystore meaning n of enum keystore_error below (wrong password, damaged wallet, ...).
 * The two ranges cannot meet: Linux errno values stop at 4095 (MAX_ERRNO) and
 * KEYSTORE_ERROR_BASE is 4096. An int in two ranges rather than a struct because every caller
 * already propagates "ret < 0" unchanged up the stack: only the few places that decide what a
 * failure means (tdekey's exit codes, the daemon's messages) classify it, with
 * keystore_error_of(), and every failure has a text, keystore_error_message().
 *
 * Errno values that keep their plain system meaning: -ENOENT (no wallet there: status
 * NOT_AVAILABLE), -EEXIST (a wallet is already there), -ENXIO (a password is needed and there is
 * no terminal: what opening /dev/tty says), -EINVAL (bad argument), -ENOMEM and I/O errors. One
 * exception by design: keyring_active() returns -ENOKEY, because the daemon's data path hands
 * it to the kernel as the errno of a create or a rewrap.
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

/* What a keystore failure means, apart from system errors (see the return values above). */
enum keystore_error {
	KEYSTORE_OK = 0,
	KEYSTORE_ERR_SYSTEM,		  /* not a keystore meaning: a -errno, see errno */
	KEYSTORE_ERR_WRONG_PASSWORD,	  /* wrong password, or none given for a password wallet */
	KEYSTORE_ERR_DAMAGED,		  /* corrupt, truncated, bad magic; restore a backup */
	KEYSTORE_ERR_NEWER_FORMAT,	  /* written by a newer format version */
	KEYSTORE_ERR_UNSAFE_MODES,	  /* strict modes: readable or writable by others, owner */
	KEYSTORE_ERR_OTHER_HOST,	  /* local auto-login wallet made on another host */
	KEYSTORE_ERR_NO_SUCH_KEY,	  /* no key matches a key ID */
	KEYSTORE_ERR_AMBIGUOUS_KEY_ID,	  /* a key ID prefix matches several keys */
	KEYSTORE_ERR_COPY_HAS_MORE_KEYS,  /* an auto-login copy holds keys the primary lacks */
	KEYSTORE_ERR_KEY_MISMATCH,	  /* one key ID with two different MEKs */
	KEYSTORE_ERR_KEY_IS_ACTIVE,	  /* the ACTIVE key cannot be removed */
	KEYSTORE_ERR_WALLET_FULL,	  /* the wallet holds the most keys it can */
	KEYSTORE_ERR_WRONG_SECRET,	  /* wrong transport secret for a key export file */
	KEYSTORE_ERR_EXPORT_DAMAGED,	  /* key export file truncated, altered, or not one */
	KEYSTORE_ERR_KEY_CONFLICT,	  /* an imported key ID is here with other key bytes */
	KEYSTORE_ERR_WRONG_PIN,		  /* the HSM token refused the PIN (or none was given) */
	KEYSTORE_ERR_HSM_MODULE,	  /* the PKCS#11 module is missing or does not load */
	KEYSTORE_ERR_TOKEN_ABSENT,	  /* no token with the wallet's label and serial */
	KEYSTORE_ERR_KEY_NOT_ON_TOKEN,	  /* a master key of the wallet is not on the token */
	KEYSTORE_ERR_TOKEN_MECHANISM,	  /* the token lacks AES key generation or AES-GCM */
	KEYSTORE_ERR_TOKEN_FAILED,	  /* the token failed an operation (unreachable, ...) */
	KEYSTORE_ERR_KEY_SERVER_UNREACHABLE, /* no KMIP server connected and shook hands */
	KEYSTORE_ERR_KEY_SERVER_REFUSED,     /* the KMIP server refused, or answered not KMIP */
	KEYSTORE_ERROR_COUNT
};

#define KEYSTORE_ERROR_BASE 4096
/* The return value for a keystore meaning: KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED). */
#define KEYSTORE_ERROR(e) (-(KEYSTORE_ERROR_BASE + (int)(e)))

/*
 * What a return value means: KEYSTORE_OK for 0 (or any value >= 0), the keystore meaning for
 * -(KEYSTORE_ERROR_BASE + n), KEYSTORE_ERR_SYSTEM for anything else (a -errno).
 */
enum keystore_error keystore_error_of(int ret);

/* A short text for any return value: the meaning's, or strerror() of a system error. */
const char *keystore_error_message(int ret);

/* The constant name of a meaning ("KEYSTORE_ERR_DAMAGED"), for logs and tests. */
const char *keystore_error_name(enum keystore_error error);

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
	bool wallet_has_active; /* false: the loaded active key stays active (unless revoked) */
	bool active_revoked;	/* the key server revoked the active key: none is active now */
};
int keystore_reload(const char *wallet_dir, const struct keyring *loaded, struct keyring **out,
		    struct keystore_reload_result *result, char error[KEYSTORE_ERROR_SIZE]);

void keyring_free(struct keyring *ring);

/*
 * A ring with ring's identity (wallet ID, container, selected container, source kind) and no
 * keys: what a daemon whose keystore was closed (tderekey close) holds until it is opened again.
 * 0 or -ENOMEM.
 */
int keyring_new_closed(const struct keyring *ring, struct keyring **out);

/* The MEK with this key ID, or NULL. The memory is locked and owned by the keyring. */
const uint8_t *keyring_find(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE]);

/* The active MEK and its ID; -ENOKEY (an errno on purpose, see above) when there is none. */
int keyring_active(const struct keyring *ring, uint8_t id[KEY_ID_SIZE], const uint8_t **mek);

size_t keyring_count(const struct keyring *ring);

/*
 * Master keys on an HSM token (a wallet of kind HSM): the MEK never leaves the token, so
 * keyring_find() answers NULL for such a key and a header's DEKs are sealed and opened by the
 * token, AES-256-GCM with the caller's 12-byte nonce and associated data (docs/FORMAT.md,
 * cipher suite 2). keyring_holds() is true for every key of the ring, on a token or not.
 */
bool keyring_holds(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE]);
bool keyring_key_on_token(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE]);
/* cipher gets len bytes, tag 16; -ENOKEY for a key the ring lacks or that is not on a token. */
int keyring_token_seal(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE],
		       const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		       const uint8_t *plain, size_t len, uint8_t *cipher, uint8_t tag[16]);
/* -EBADMSG when the tag does not verify (altered, or another key). */
int keyring_token_open(const struct keyring *ring, const uint8_t id[KEY_ID_SIZE],
		       const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
		       const uint8_t *cipher, size_t len, const uint8_t tag[16], uint8_t *plain);
/*
 * After fork(): a PKCS#11 library's state does not survive into a child, so the daemon that
 * stays after daemonising connects to the token again (nothing to do for a ring without one).
 */
int keyring_after_fork(struct keyring *ring, char error[KEYSTORE_ERROR_SIZE]);
/*
 * The availability of the ring's tokens (the daemon's -o hsm_heartbeat). keyring_token_watch:
 * from now on an operation on a token found unreachable waits up to wait_ms for it to be
 * connected again, then fails with -EHOSTDOWN (unwatched, it fails at once); -ENODEV for a ring
 * without a token. keyring_token_check: 0 when every token answers, 1 when one is known
 * unreachable already, or the failure with a one-line error (the token is unreachable from
 * then on). keyring_token_reconnect: new sessions and a login with the PIN the token keeps, on
 * every token; 0 when all are reachable again.
 */
int keyring_token_watch(const struct keyring *ring, unsigned wait_ms);
int keyring_token_check(const struct keyring *ring, char error[KEYSTORE_ERROR_SIZE]);
int keyring_token_reconnect(const struct keyring *ring, char error[KEYSTORE_ERROR_SIZE]);

/*
 * The kind of wallet file the keys were read from, in the words of V$ENCRYPTION_WALLET's
 * WALLET_TYPE: "PASSWORD", "AUTOLOGIN" or "LOCAL_AUTOLOGIN"; "NONE" for a ring read from no file.
 */
const char *keyring_source_kind_name(const struct keyring *ring);

/*
 * The wallet's identity: 16 random bytes fixed when the password wallet is created and shared
 * by its auto-login copies and backups. A backing directory records it at --init so that
 * mounting it with another wallet fails with a clear message.
 */
void keyring_wallet_id(const struct keyring *ring, uint8_t id[KEY_ID_SIZE]);

/* Container name of the key set (default "CDB$ROOT"-like "default"). */
const char *keyring_container(const struct keyring *ring);

/*
 * United mode: one wallet holds a key set per container (each key record names its container).
 * keyring_select_container() makes container the one keyring_active() answers for and new keys
 * go to (a daemon selects its backing directory's container); -EINVAL for an invalid name. It
 * changes nothing in the wallet file. keyring_has_container(): the wallet's own container, or
 * one at least one key belongs to.
 */
int keyring_select_container(struct keyring *ring, const char *container);
const char *keyring_selected_container(const struct keyring *ring);
bool keyring_has_container(const struct keyring *ring, const char *container);

#endif
