/*
 * The one test helper, tdefs-test-helper: the subcommands the shell tests run to look at and
 * forge what the daemon writes, from outside the daemon. test_helper.c holds the table of
 * subcommands and what they share (messages, reading and writing a header image); each
 * helper_*.c holds one group of subcommands. Every subcommand returns an exit status: 0 done
 * (or "yes"), 1 failed (or "no", where the usage says so), 2 bad usage.
 */
#ifndef TDEFS_TEST_HELPER_H
#define TDEFS_TEST_HELPER_H

#include <stdint.h>

#include "fs/format.h"

/* "tdefs-test-helper SUBCOMMAND: MESSAGE[: DETAIL]" on stderr; returns 1. */
int helper_fail(const char *message, const char *detail);

/* The first TDEFS_HEADER_SIZE bytes of PATH (both header copies); 0, or 1 after a message. */
int helper_load_header(const char *path, uint8_t image[TDEFS_HEADER_SIZE]);

/* LEN bytes of DATA at OFFSET of PATH, then fsync; 0, or 1 after a message. */
int helper_store(const char *path, const uint8_t *data, size_t len, uint64_t offset);

/* Subcommands: argc and argv after the subcommand's name (argv[0] is the first operand). */
int cmd_verify(int argc, char **argv);
int cmd_dek(int argc, char **argv);
int cmd_find_in_memory(int argc, char **argv);
int cmd_forge_wallet(int argc, char **argv);

int cmd_key_id(int argc, char **argv);
int cmd_set_key_id(int argc, char **argv);
int cmd_forge_watermark(int argc, char **argv);
int cmd_swap_keys(int argc, char **argv);
int cmd_copy_header(int argc, char **argv);
int cmd_copy_slot(int argc, char **argv);
int cmd_describe(int argc, char **argv);

int cmd_init(int argc, char **argv);
int cmd_files(int argc, char **argv);

int cmd_writer(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
