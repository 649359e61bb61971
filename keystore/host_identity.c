/*
 * The host identity a local auto-login wallet is bound to: the machine ID (systemd's
 * /etc/machine-id, or D-Bus's copy on systems without systemd) and the host name, as Oracle
 * binds its local auto-login wallets to the host. Either changing makes the wallet refuse to
 * open, with a message saying so.
 *
 * Test builds (keystore compiled with TDEFS_KEYSTORE_TESTING) take the identity from
 * $TDEFS_TEST_HOST_IDENTITY instead, so a test can play two hosts. Production builds never
 * read that variable.
 */
#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static const char *const machine_id_paths[] = { "/etc/machine-id", "/var/lib/dbus/machine-id" };

static int append(struct host_identity *identity, const char *text, size_t len)
{
	if (len > sizeof(identity->bytes) - identity->len)
		return -ENAMETOOLONG;
	memcpy(identity->bytes + identity->len, text, len);
	identity->len += len;
	return 0;
}

static int read_machine_id(char out[128])
{
	for (size_t i = 0; i < ARRAY_SIZE(machine_id_paths); i++) {
		uint8_t *data;
		size_t len, start = 0;

		if (read_small_file(machine_id_paths[i], 127, &data, &len) < 0)
			continue;
		while (start < len && (data[start] == ' ' || data[start] == '\t'))
			start++;
		while (len > start && (data[len - 1] == '\n' || data[len - 1] == ' ' ||
				       data[len - 1] == '\t' || data[len - 1] == '\r'))
			len--;
		if (len > start) {
			memcpy(out, data + start, len - start);
			out[len - start] = '\0';
			free(data);
			return 0;
		}
		free(data);
	}
	return -ENOENT;
}

int host_identity_read(struct host_identity *identity, char error[KEYSTORE_ERROR_SIZE])
{
	char machine_id[128], host_name[256];
	int ret;

	memset(identity, 0, sizeof(*identity));
#ifdef TDEFS_KEYSTORE_TESTING
	{
		const char *test_identity = getenv("TDEFS_TEST_HOST_IDENTITY");

		if (test_identity && *test_identity)
			return append(identity, test_identity, strlen(test_identity));
	}
#endif
	if (read_machine_id(machine_id) < 0) {
		wallet_message(error,
			       "cannot identify this host for a local auto-login wallet: neither "
			       "/etc/machine-id nor /var/lib/dbus/machine-id can be read");
		return -ENOENT;
	}
	if (gethostname(host_name, sizeof(host_name)) < 0) {
		ret = -errno;
		wallet_message(
			error,
			"cannot identify this host for a local auto-login wallet: gethostname: %s",
			keystore_error_message(ret));
		return ret;
	}
	host_name[sizeof(host_name) - 1] = '\0';
	/* Labelled fields, so "ab"+"c" and "a"+"bc" never give the same identity. */
	ret = append(identity, "machine-id=", strlen("machine-id="));
	if (ret == 0)
		ret = append(identity, machine_id, strlen(machine_id));
	if (ret == 0)
		ret = append(identity, "\nhostname=", strlen("\nhostname="));
	if (ret == 0)
		ret = append(identity, host_name, strlen(host_name));
	return ret;
}
