/*
 * tdefs-test-helper: the one helper program of the shell tests (tests/lib/helper.h). Its job
 * here is the table of subcommands, argument counts and usage lines (as wireguard-tools' wg
 * has), and the few things several subcommands share: the message format and reading and
 * writing a backing file's header image. Groups of subcommands:
 *   helper_keys.c      independent decryption, a file's DEK, keys in a process's memory,
 *                      a forged auto-login wallet
 *   helper_header.c    header copies read, described and forged with valid checksums
 *   helper_backing.c   backing directories through the real `tdefs --init`, and files with
 *                      headers under a chosen key
 *   helper_workload.c  the durable-record writer and its check
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "util/util.h"

struct subcommand {
	const char *name;
	int (*function)(int argc, char **argv);
	int operands; /* exactly this many arguments after the name */
	const char *usage;
};

static const struct subcommand subcommands[] = {
	{ "verify", cmd_verify, 3, "verify WALLET BACKING_FILE PLAIN_FILE\n"
	  "    decrypt BACKING_FILE without the daemon's code (OpenSSL HKDF, AES-256-GCM and\n"
	  "    AES-256-XTS called directly; only the master key comes from the keystore);\n"
	  "    exit 0 when it equals PLAIN_FILE byte for byte" },
	{ "dek", cmd_dek, 2, "dek WALLET BACKING_FILE\n"
	  "    print the file's DEK in hex, unwrapped as verify does" },
	{ "find-in-memory", cmd_find_in_memory, 2, "find-in-memory PID HEX\n"
	  "    exit 0 if the bytes HEX occur in the readable memory of process PID, 1 if not" },
	{ "forge-wallet", cmd_forge_wallet, 2, "forge-wallet WALLET_ID OUT_FILE\n"
	  "    write an auto-login wallet claiming WALLET_ID with one ACTIVE key of its own (the\n"
	  "    planted wallet of a local attacker); print that key's ID and MEK in hex" },
	{ "key-id", cmd_key_id, 1, "key-id BACKING_FILE\n"
	  "    print the master key ID named by the newest valid header copy" },
	{ "set-key-id", cmd_set_key_id, 2, "set-key-id BACKING_FILE HEX32\n"
	  "    rewrite the key ID in both header copies, checksums valid" },
	{ "forge-watermark", cmd_forge_watermark, 2, "forge-watermark BACKING_FILE N\n"
	  "    mark both header copies \"data rekey in progress, watermark N\", checksums valid" },
	{ "swap-keys", cmd_swap_keys, 2, "swap-keys A B\n"
	  "    exchange the sealed key material (nonce, wrapped DEKs and length, tag) of A's and\n"
	  "    B's header copies, each keeping its own file ID and sequence; checksums valid" },
	{ "copy-header", cmd_copy_header, 2, "copy-header SRC DST\n"
	  "    copy SRC's whole 4096-byte header over DST's" },
	{ "copy-slot", cmd_copy_slot, 3, "copy-slot SRC DST 0|1\n"
	  "    copy header copy N of SRC over copy N of DST" },
	{ "describe", cmd_describe, 1, "describe FILE\n"
	  "    print each header copy: valid or not, sequence, file ID, rekey watermark" },
	{ "init", cmd_init, 2, "init WALLET BACKING\n"
	  "    make BACKING (0700) if missing and run the real 'tdefs --init --wallet WALLET\n"
	  "    BACKING' ($TDEFS_BIN, default the tdefs of this build)" },
	{ "files", cmd_files, 4, "files WALLET KEY DIR COUNT\n"
	  "    COUNT files DIR/key-IDPREFIX-N (DIR made if missing), headers under KEY of WALLET\n"
	  "    (a key ID prefix, or \"active\") and no data; WALLET need not be BACKING's" },
	{ "writer", cmd_writer, 3, "writer DIR FILES LOG\n"
	  "    until killed: numbered 1000-byte records round-robin into DIR/w0..w(FILES-1),\n"
	  "    each fdatasync'ed, then its number appended to LOG and fsync'ed" },
	{ "check", cmd_check, 3, "check DIR FILES LOG\n"
	  "    verify that every record LOG lists reads back intact" },
};

static const char *current = "";

int helper_fail(const char *message, const char *detail)
{
	fprintf(stderr, "tdefs-test-helper %s: %s%s%s\n", current, message, detail ? ": " : "",
		detail ? detail : "");
	return 1;
}

int helper_load_header(const char *path, uint8_t image[TDEFS_HEADER_SIZE])
{
	size_t done;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return helper_fail(path, strerror(errno));
	ret = pread_full(fd, image, TDEFS_HEADER_SIZE, 0, &done);
	close(fd);
	if (ret < 0 || done != TDEFS_HEADER_SIZE)
		return helper_fail("cannot read a whole header", path);
	return 0;
}

int helper_store(const char *path, const uint8_t *data, size_t len, uint64_t offset)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return helper_fail(path, strerror(errno));
	ret = pwrite_all(fd, data, len, (off_t)offset);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret < 0 ? helper_fail(path, strerror(-ret)) : 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: tdefs-test-helper SUBCOMMAND ARGUMENTS...\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %s\n", subcommands[i].usage);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		const struct subcommand *sub = &subcommands[i];

		if (strcmp(argv[1], sub->name) != 0)
			continue;
		current = sub->name;
		if (argc - 2 != sub->operands) {
			fprintf(stderr, "usage: tdefs-test-helper %s\n", sub->usage);
			return 2;
		}
		return sub->function(argc - 2, argv + 2);
	}
	fprintf(stderr, "tdefs-test-helper: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
