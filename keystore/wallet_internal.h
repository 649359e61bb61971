/*
 * wallet_internal: helpers shared by the keystore's own files and by nothing else: messages in
 * one fixed wording, the directory lock, and crash-safe writes of encoded
 * wallets. tdekey and the daemon go through wallet.h and keystore.h.
 */
#ifndef TDEFS_WALLET_INTERNAL_H
#define TDEFS_WALLET_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "keystore/wallet.h"

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

#endif
