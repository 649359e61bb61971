/*
 * test_tdekey_exit_codes: tdekey's exit code per kind of failure, the contract a script relies
 * on (docs/WALLET.md), read from the keystore's own meanings and never from an errno that
 * happens to share a number with an old overload. A wallet on NFS that answers ESTALE, a rename
 * across file systems (EXDEV), a corrupt read (EBADMSG from a driver) are system errors: exit 1
 * and strerror's words, not "copy ahead", "other host" or "damaged".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tools/tdekey/tdekey.h"

/* output.c prints key tables with a FILES column from key_usage.c; no table is printed here. */
uint64_t census_files_for(const struct key_census *census, const uint8_t key_id[KEY_ID_SIZE])
{
	(void)census;
	(void)key_id;
	fail_msg("census_files_for is not expected in an exit-code test");
	return 0;
}

static void test_keystore_meanings(void **state)
{
	static const struct {
		enum keystore_error error;
		int exit_code;
	} cases[] = {
		{ KEYSTORE_ERR_WRONG_PASSWORD, EXIT_WRONG_PASSWORD },
		{ KEYSTORE_ERR_DAMAGED, EXIT_DAMAGED },
		{ KEYSTORE_ERR_NEWER_FORMAT, EXIT_NEWER_FORMAT },
		{ KEYSTORE_ERR_UNSAFE_MODES, EXIT_PERMISSIONS },
		{ KEYSTORE_ERR_OTHER_HOST, EXIT_OTHER_HOST },
		{ KEYSTORE_ERR_NO_SUCH_KEY, EXIT_NO_SUCH_KEY },
		{ KEYSTORE_ERR_AMBIGUOUS_KEY_ID, EXIT_NO_SUCH_KEY },
		{ KEYSTORE_ERR_COPY_HAS_MORE_KEYS, EXIT_COPY_AHEAD },
		{ KEYSTORE_ERR_KEY_IS_ACTIVE, EXIT_KEY_IN_USE },
		{ KEYSTORE_ERR_KEY_MISMATCH, EXIT_ERROR },
		{ KEYSTORE_ERR_WALLET_FULL, EXIT_ERROR },
		{ KEYSTORE_ERR_WRONG_SECRET, EXIT_WRONG_SECRET },
		{ KEYSTORE_ERR_EXPORT_DAMAGED, EXIT_EXPORT_DAMAGED },
		{ KEYSTORE_ERR_KEY_CONFLICT, EXIT_KEY_CONFLICT },
		{ KEYSTORE_ERR_WRONG_PIN, EXIT_WRONG_PIN },
		{ KEYSTORE_ERR_HSM_MODULE, EXIT_HSM_MODULE },
		{ KEYSTORE_ERR_TOKEN_ABSENT, EXIT_TOKEN_ABSENT },
		{ KEYSTORE_ERR_KEY_NOT_ON_TOKEN, EXIT_KEY_NOT_ON_TOKEN },
		{ KEYSTORE_ERR_TOKEN_MECHANISM, EXIT_TOKEN_MECHANISM },
		{ KEYSTORE_ERR_TOKEN_FAILED, EXIT_TOKEN_FAILED },
		{ KEYSTORE_ERR_KEY_SERVER_UNREACHABLE, EXIT_KEY_SERVER_UNREACHABLE },
		{ KEYSTORE_ERR_KEY_SERVER_REFUSED, EXIT_KEY_SERVER_REFUSED },
	};

	(void)state;
	assert_int_equal(exit_code_for(0), EXIT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(exit_code_for(KEYSTORE_ERROR(cases[i].error)), cases[i].exit_code);
}

static void test_system_errors(void **state)
{
	/* The errno values the keystore once overloaded: all plain system errors now. */
	static const int overloaded[] = { ESTALE,  ENOTUNIQ, EXDEV,	   EKEYREJECTED,
					  EBADMSG, ESRCH,    EPROTONOSUPPORT, EBUSY,
					  ENOSPC };

	(void)state;
	for (size_t i = 0; i < sizeof(overloaded) / sizeof(overloaded[0]); i++) {
		if (exit_code_for(-overloaded[i]) != EXIT_ERROR)
			fail_msg("a system %s exits %d, not %d", strerror(overloaded[i]),
				 exit_code_for(-overloaded[i]), EXIT_ERROR);
	}
	/* The errno values that keep their meaning. */
	assert_int_equal(exit_code_for(-ENOENT), EXIT_NO_WALLET);
	assert_int_equal(exit_code_for(-EEXIST), EXIT_EXISTS);
	assert_int_equal(exit_code_for(-ENXIO), EXIT_WRONG_PASSWORD);
	assert_int_equal(exit_code_for(-EPERM), EXIT_PERMISSIONS);
	assert_int_equal(exit_code_for(-ENOKEY), EXIT_NO_MASTER_KEY);
	assert_int_equal(exit_code_for(-EIO), EXIT_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keystore_meanings),
		cmocka_unit_test(test_system_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
