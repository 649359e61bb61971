/*
 * wallet_internal: what the keystore's own files and its tests share and nothing else uses:
 * messages in one fixed wording, the directory lock, crash-safe writes of encoded wallets, and
 * the lower layers under the sessions (reading and encoding one wallet file, building and
 * merging key rings, backups, the external store). tdekey and the daemon go through wallet.h and
 * keystore.h, which stay narrow so that a change down here touches neither.
 */
#ifndef TDEFS_WALLET_INTERNAL_H
#define TDEFS_WALLET_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "keystore/wallet.h"

struct wallet_read; /* below: one wallet file */

/*
 * Fill a one-line message. A function rather than snprintf so that paths of any length may be
 * cut short at the buffer's end without the compiler treating each call as a likely mistake.
 */
void wallet_message(char error[KEYSTORE_ERROR_SIZE], const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* "wallet <path> is damaged: <why>; newest backup: <path>" */
void wallet_message_damaged(char error[KEYSTORE_ERROR_SIZE], const char *path, const char *why);

/* The backup file name prefix for a wallet file: "password", "autologin", ... */
const char *wallet_backup_prefix(const char *path);
/* 0640 for a password wallet (or its backup) in a group directory (02750), else 0600. */
mode_t wallet_file_mode(const char *directory, bool password_wallet);

int64_t wallet_now(void);

/*
 * Strict modes (strict_modes.c). A file or directory described by st must belong to root or to
 * the user running the program and be writable by no one else; subject names it in the message
 * ("wallet file /x/autologin.wallet"), path is what the chmod or chown fix names. -EPERM.
 */
int strict_modes_check_stat(const struct stat *st, const char *subject, const char *path,
			    char error[KEYSTORE_ERROR_SIZE]);
/*
 * directory (what: "wallet directory", "backup directory", ...) and each of its ancestors up to
 * "/", links followed and the directories they live in checked too. Ancestors writable by others
 * pass only as root-owned sticky directories (/tmp); the directory itself never does.
 */
int strict_modes_check_directory(const char *directory, const char *what,
				 char error[KEYSTORE_ERROR_SIZE]);
/*
 * The whole wallet directory, before anything in it is opened or created: the directory and its
 * ancestors, then each wallet file, the lock file and backup/ that exist (lstat: no links).
 */
int wallet_directory_check(const struct wallet_paths *paths, char error[KEYSTORE_ERROR_SIZE]);
/* The paths of dir, which must exist as a directory and pass wallet_directory_check(). */
int wallet_directory_open(const char *dir, struct wallet_paths *paths,
			  char error[KEYSTORE_ERROR_SIZE]);

/* Take the directory's lock file (created 0600) exclusively; *fd keeps it. */
int wallet_lock(const struct wallet_paths *paths, int *fd, char error[KEYSTORE_ERROR_SIZE]);
void wallet_unlock(int fd);

/* Remove temporary files a killed writer left next to the wallet files (under the lock). */
void wallet_remove_stale_temporaries(const struct wallet_paths *paths);

bool wallet_file_present(const char *path);

/* write_file_atomic() with mode 0600 and a message naming the file on failure. */
int wallet_write_bytes(const char *path, const uint8_t *bytes, size_t len,
		       char error[KEYSTORE_ERROR_SIZE]);

/* Remove a wallet file and make the removal durable. */
int wallet_remove_file(const char *path, char error[KEYSTORE_ERROR_SIZE]);

/* Encode an external password store. */
int wallet_encode_secrets(enum wallet_kind kind, const uint8_t wallet_id[KEY_ID_SIZE],
			  uint64_t generation, struct secret *const *secrets, size_t count,
			  uint8_t **out, size_t *out_len, char error[KEYSTORE_ERROR_SIZE]);

/*
 * Open password.wallet with one of the external store's passwords. On success *password gets a
 * copy of the password that worked.
 */
int wallet_open_with_external_store(const struct wallet_paths *paths, struct wallet_read *read,
				    struct secret **password, char error[KEYSTORE_ERROR_SIZE]);

/* --- moved out of wallet.h: used only inside the keystore and by its tests ------------- */

struct password_key; /* scrypt output of a password wallet: wallet_format.h */

const char *wallet_kind_file(enum wallet_kind kind);	   /* password.wallet, ... */

/* -EINVAL with a message when a new password is too short. */
int password_check_new(const struct secret *password, char error[KEYSTORE_ERROR_SIZE]);

/* --- key rings: building, merging and bookkeeping -------------------------------------- */

int keyring_new(const uint8_t wallet_id[KEY_ID_SIZE], const char *container, struct keyring **out);
/* The tokens one ring may hold: an HSM wallet's own and those of the wallets it links. */
#define KEYRING_MAX_TOKENS 8
/*
 * Add the keys of linked (a wallet an HSM wallet links after a migration, same wallet ID) to
 * ring, marked linked, with linked's tokens: a key ring already holds stays. Their ACTIVE key
 * stays ACTIVE only with keep_active and when ring has none in that container; otherwise it is
 * RETIRED here. -EINVAL for another wallet ID, -E2BIG for too many tokens.
 */
int keyring_link(struct keyring *ring, const struct keyring *linked, bool keep_active);
/* The selected container's ACTIVE key, if any, becomes RETIRED (a reverse migration). */
void keyring_retire_active(struct keyring *ring);
/* Whether the container has an ACTIVE key in the ring. */
bool keyring_holds_active(const struct keyring *ring, const char *container);
/* Append a copy of record; -EEXIST when its key ID is already present. */
int keyring_append(struct keyring *ring, const struct mek_record *record);

/* The kind of wallet file the ring was read from (wallet_read sets it); 0 for a new ring. */
enum wallet_kind keyring_source_kind(const struct keyring *ring);
void keyring_set_source_kind(struct keyring *ring, enum wallet_kind kind);
void keyring_set_generation(struct keyring *ring, uint64_t generation);

/*
 * Remove the key at index (its MEK is wiped); the others keep their order.
 * KEYSTORE_ERR_KEY_IS_ACTIVE for an ACTIVE key, which wraps new files; -EINVAL for an index out
 * of range. Only for tdekey delete-key, after it has proved that no file header references the
 * key: rotation never removes a key. wallet_session_delete_key() is the way to make the removal
 * durable.
 */
int keyring_remove(struct keyring *ring, size_t index);
/*
 * keyring_remove(), and with even_active the ACTIVE key too: only for a whole container leaving
 * the wallet (tdekey isolate), where no key of that container is left to wrap under.
 */
int keyring_remove_key(struct keyring *ring, size_t index, bool even_active);

/*
 * A new ring holding every key of loaded and every key of fresh (a re-read of the same wallet):
 * loaded keys keep their order and take fresh's metadata (state, tag, times) when fresh has
 * them; keys only fresh has follow. Nothing loaded is ever dropped. The active key of each
 * container is fresh's when fresh has one there, else loaded's. -EINVAL when the wallet ID or
 * the container differs, KEYSTORE_ERR_KEY_MISMATCH when a key ID is in both with different
 * MEKs; the message says which.
 */
struct keyring_merge_summary {
	size_t added;		/* keys of fresh that loaded lacked */
	size_t kept;		/* keys of loaded that fresh lacks, kept */
	bool active_moved;	/* the active key of the ring's container changed */
	bool wallet_has_active; /* fresh has an active key in the ring's container */
	bool active_revoked;	/* the loaded active key was revoked and none is active now */
};
int keyring_merge(const struct keyring *loaded, const struct keyring *fresh, struct keyring **out,
		  struct keyring_merge_summary *summary, char error[KEYSTORE_ERROR_SIZE]);

bool keyring_fully_backed_up(const struct keyring *ring);
/* Mark the first count keys as backed up (they are in a backup just written). */
void keyring_mark_backed_up(struct keyring *ring, size_t count);

/* --- one wallet file ------------------------------------------------------------------- */

/*
 * Read one wallet file. Fill path (and, for a password wallet, password); on success ring (key
 * wallets) or secrets (external stores) are set, and for a password wallet password_key keeps
 * the scrypt output so the file can be rewritten without running scrypt again. raw holds the
 * file's bytes as read, for a backup. Release with wallet_read_release().
 */
struct wallet_read {
	const char *path;
	enum wallet_kind expected_kind; /* 0: any kind (a backup) */
	enum wallet_content expected_content;
	const struct secret *password;
	bool header_only; /* stop after the clear header (status of a closed wallet) */
	/*
	 * An HSM wallet re-read by a running daemon: the token this ring has open serves the
	 * keys read, so no PIN is needed again (NULL: open the token with password).
	 */
	const struct keyring *token_from;

	struct wallet_file_info info;
	struct keyring *ring;
	struct secret *secrets[2];
	size_t secret_count;
	struct password_key *password_key;
	uint8_t *raw;
	size_t raw_len;
};
int wallet_read(struct wallet_read *request, char error[KEYSTORE_ERROR_SIZE]);
void wallet_read_release(struct wallet_read *request);

/* Encode a key ring as a wallet file of the given kind (secure memory, free with secure_free). */
int wallet_encode_keys(enum wallet_kind kind, const struct keyring *ring,
		       const struct password_key *password_key, uint8_t **out, size_t *out_len,
		       char error[KEYSTORE_ERROR_SIZE]);

/* --- backups and the external store ---------------------------------------------------- */

/* The newest backup of a kind's file in dir/backup (by time stamp, then generation). */
int wallet_newest_backup(const char *backup_dir, const char *kind_prefix, char out[PATH_MAX]);

/*
 * Write bytes as a new backup file backup_dir/<prefix>-<UTC time>-g<generation>[-<id>].wallet
 * (mode 0600, crash-safe), never replacing an existing file. written gets its path.
 */
int wallet_backup_write(const char *backup_dir, const char *prefix, uint64_t generation,
			const char *id, const uint8_t *bytes, size_t len, char written[PATH_MAX],
			char error[KEYSTORE_ERROR_SIZE]);

/* The passwords held by the store (normally one; two while a change of password is under way). */
int wallet_external_store_read(const struct wallet_paths *paths, struct secret *secrets[2],
			       size_t *count, char error[KEYSTORE_ERROR_SIZE]);

#endif
