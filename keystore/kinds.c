/*
 * The table of keystore kinds and the few questions every caller asks of it: which kind has
 * this on-disk code, where its file is, which file the daemon opens at mount. The kinds
 * themselves live one to a file (kind_*.c); adding one is a new file and a line here.
 */
#include "keystore/keystore_kind.h"

#include <stdio.h>

#include "util/util.h"

/* Status lists the files in this order; the report has a row for each. */
static const struct keystore_kind *const kinds[] = {
	&keystore_kind_password,
	&keystore_kind_autologin,
	&keystore_kind_local_autologin,
	&keystore_kind_hsm,
};

_Static_assert(ARRAY_SIZE(kinds) <= ARRAY_SIZE(((struct wallet_status_report *)0)->rows),
	       "the status report has a row for every kind");

size_t keystore_kind_count(void)
{
	return ARRAY_SIZE(kinds);
}

const struct keystore_kind *keystore_kind_at(size_t index)
{
	return index < ARRAY_SIZE(kinds) ? kinds[index] : NULL;
}

const struct keystore_kind *keystore_kind_of(enum wallet_kind code)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->code == code)
			return kinds[i];
	return NULL;
}

const char *keystore_kind_path(const struct keystore_kind *kind, const struct wallet_paths *paths)
{
	return (const char *)paths + kind->paths_offset;
}

const struct keystore_kind *keystore_kind_for_mount(const struct wallet_paths *paths)
{
	const struct keystore_kind *best = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if ((!best || kinds[i]->mount_rank < best->mount_rank) &&
		    wallet_file_present(keystore_kind_path(kinds[i], paths)))
			best = kinds[i];
	return best;
}

int keystore_kind_derive_failed(const char *path, int ret, char error[KEYSTORE_ERROR_SIZE])
{
	wallet_message(error, "cannot derive the key of wallet %s: %s", path,
		       keystore_error_message(ret));
	return ret;
}

int keystore_kind_damaged(char why[WALLET_WHY_SIZE], const char *reason)
{
	snprintf(why, WALLET_WHY_SIZE, "%s", reason);
	return KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);
}
