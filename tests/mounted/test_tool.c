/*
 * tdefs-test-tool: what the mounted tests need to look at backing files from the outside.
 *
 *   verify WALLET BACKING_FILE PLAIN_FILE
 *       Decrypt BACKING_FILE with an implementation independent of the daemon's data path:
 *       the header is parsed here from docs/FORMAT.md's offsets, the DEK is unwrapped with
 *       OpenSSL's HKDF and AES-256-GCM called directly, and every block is decrypted with
 *       EVP AES-256-XTS. Only the master key comes from the project's keystore. Exits 0 when
 *       the result equals PLAIN_FILE byte for byte.
 *   set-key-id BACKING_FILE HEX32
 *       Rewrite the master key ID in both header copies with valid checksums, to make a header
 *       that names a key the wallet does not hold.
 *   key-id BACKING_FILE
 *       Print the key ID named by the newest valid header copy.
 *   dek WALLET BACKING_FILE
 *       Print the file's DEK in hex, unwrapped as verify does.
 *   find-in-memory PID HEX
 *       Exit 0 if the bytes HEX occur anywhere in the readable memory of process PID, 1 if not:
 *       the test that a released file's key is gone from the daemon's memory.
 *   forge-watermark BACKING_FILE N
 *       Mark both header copies as "data rekey in progress, watermark N" with valid checksums,
 *       as an attacker or a bug might: the seal must refuse it (cryptsetup's CVE-2021-4122).
 *   writer DIR FILES LOG
 *       Until killed: write numbered 1000-byte records round-robin into DIR/w0..w(FILES-1) at
 *       unaligned offsets, fdatasync each, then append the record number to LOG (on a plain
 *       file system) and fsync that: LOG lists exactly the records that were durable.
 *   check DIR FILES LOG
 *       Verify every record LOG lists reads back intact.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "fs/format.h"
#include "keystore/keystore.h"
#include "util/util.h"

static int die(const char *message, const char *detail)
{
	fprintf(stderr, "tdefs-test-tool: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
	return 1;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	uint8_t *data;

	if (read_small_file(path, (size_t)1 << 30, &data, len) < 0)
		return NULL;
	return data;
}

static int xts_unit(const uint8_t key[64], uint64_t tweak_value, const uint8_t *in, uint8_t *out,
		    int len, int encrypt)
{
	uint8_t tweak[16] = { 0 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int out_len, ok;

	for (int i = 0; i < 8; i++)
		tweak[i] = (uint8_t)(tweak_value >> (8 * i));
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, tweak, encrypt) == 1 &&
	     EVP_CipherUpdate(ctx, out, &out_len, in, len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* The newest header copy's DEK, unwrapped with OpenSSL directly (docs/FORMAT.md). */
static int unwrap_dek(const char *wallet, const uint8_t *backing, const char *backing_path,
		      uint8_t dek[64])
{
	char error[KEYSTORE_ERROR_SIZE];
	struct keyring *ring;
	const uint8_t *copy = NULL, *mek;
	uint8_t wrap_key[32], aad[HEADER_COPY_SIZE];
	size_t wrap_key_len = sizeof(wrap_key);
	uint64_t best_sequence = 0;
	int len;

	for (int i = 0; i < 2; i++) {
		const uint8_t *candidate = backing + i * HEADER_COPY_SIZE;
		/* Newest copy by sequence; the checksum is the project's XXH3, trusted here. */
		if (memcmp(candidate, "TDEFSHDR", 8) == 0 && load_le64(candidate + 16) > best_sequence) {
			best_sequence = load_le64(candidate + 16);
			copy = candidate;
		}
	}
	if (!copy)
		return die("no header copy", backing_path);
	if (keystore_open_for_mount(wallet, -1, &ring, error) < 0)
		return die(error, NULL);
	mek = keyring_find(ring, copy + 40);
	if (!mek)
		return die("the wallet lacks the header's master key", NULL);

	EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (EVP_PKEY_derive_init(kdf) != 1 || EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set1_hkdf_key(kdf, mek, 32) != 1 ||
	    EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)"tdefs v1 dek wrap", 17) != 1 ||
	    EVP_PKEY_derive(kdf, wrap_key, &wrap_key_len) != 1)
		return die("HKDF failed", NULL);
	EVP_PKEY_CTX_free(kdf);
	keyring_free(ring);

	memcpy(aad, copy, sizeof(aad));
	memset(aad + 80, 0, 128);
	memset(aad + 208, 0, 16);
	memset(aad + 2040, 0, 8);
	EVP_CIPHER_CTX *gcm = EVP_CIPHER_CTX_new();
	if (EVP_DecryptInit_ex(gcm, EVP_aes_256_gcm(), NULL, wrap_key, copy + 64) != 1 ||
	    EVP_DecryptUpdate(gcm, NULL, &len, aad, sizeof(aad)) != 1 ||
	    EVP_DecryptUpdate(gcm, dek, &len, copy + 80, 64) != 1 ||
	    EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, 16, (void *)(copy + 208)) != 1 ||
	    EVP_DecryptFinal_ex(gcm, dek + len, &len) != 1)
		return die("the DEK does not unwrap", backing_path);
	EVP_CIPHER_CTX_free(gcm);
	return 0;
}

static int command_verify(const char *wallet, const char *backing_path, const char *plain_path)
{
	size_t backing_len, plain_len;
	uint8_t *backing = read_whole(backing_path, &backing_len);
	uint8_t *plain = read_whole(plain_path, &plain_len);
	uint8_t dek[64];

	if (!backing || !plain)
		return die("cannot read the input files", NULL);
	if (backing_len < TDEFS_HEADER_SIZE || backing_len - TDEFS_HEADER_SIZE != plain_len)
		return die("backing size is not plaintext size + 4096", backing_path);
	if (unwrap_dek(wallet, backing, backing_path, dek))
		return 1;

	for (size_t offset = 0; offset < plain_len; offset += TDEFS_BLOCK_SIZE) {
		size_t block_len = plain_len - offset < TDEFS_BLOCK_SIZE ? plain_len - offset
									 : TDEFS_BLOCK_SIZE;
		const uint8_t *cipher = backing + TDEFS_HEADER_SIZE + offset;
		uint64_t block = offset / TDEFS_BLOCK_SIZE;
		uint8_t out[TDEFS_BLOCK_SIZE];
		size_t zero = 0;

		while (zero < block_len && cipher[zero] == 0)
			zero++;
		if (zero == block_len) {
			memset(out, 0, block_len);
		} else if (block_len >= 16) {
			if (xts_unit(dek, block, cipher, out, (int)block_len, 0) < 0)
				return die("XTS failed", NULL);
		} else {
			uint8_t keystream[16] = { 0 };
			if (xts_unit(dek, block | (UINT64_C(1) << 63), keystream, keystream, 16, 1) < 0)
				return die("XTS failed", NULL);
			bool fixed = memcmp(cipher, keystream, block_len) == 0;
			for (size_t i = 0; i < block_len; i++)
				out[i] = fixed ? cipher[i] : cipher[i] ^ keystream[i];
		}
		if (memcmp(out, plain + offset, block_len) != 0) {
			fprintf(stderr, "tdefs-test-tool: %s: block %llu decrypts to other bytes\n",
				backing_path, (unsigned long long)block);
			return 1;
		}
	}
	printf("verified %s: %zu bytes, %zu blocks\n", backing_path, plain_len,
	       (plain_len + TDEFS_BLOCK_SIZE - 1) / TDEFS_BLOCK_SIZE);
	free(backing);
	free(plain);
	return 0;
}

static int command_dek(const char *wallet, const char *backing_path)
{
	size_t backing_len;
	uint8_t *backing = read_whole(backing_path, &backing_len);
	uint8_t dek[64];

	if (!backing || backing_len < TDEFS_HEADER_SIZE)
		return die("cannot read the header", backing_path);
	if (unwrap_dek(wallet, backing, backing_path, dek))
		return 1;
	for (int i = 0; i < 64; i++)
		printf("%02x", dek[i]);
	printf("\n");
	free(backing);
	return 0;
}

static int command_find_in_memory(const char *pid, const char *hex)
{
	char maps_path[64], mem_path[64], line[512];
	uint8_t needle[64];
	size_t needle_len = strlen(hex) / 2;
	bool found = false;
	FILE *maps;
	int mem;

	if (needle_len == 0 || needle_len > sizeof(needle))
		return die("bad needle", hex);
	for (size_t i = 0; i < needle_len; i++) {
		unsigned value;
		if (sscanf(hex + 2 * i, "%2x", &value) != 1)
			return die("bad needle", hex);
		needle[i] = (uint8_t)value;
	}
	snprintf(maps_path, sizeof(maps_path), "/proc/%s/maps", pid);
	snprintf(mem_path, sizeof(mem_path), "/proc/%s/mem", pid);
	maps = fopen(maps_path, "r");
	mem = open(mem_path, O_RDONLY);
	if (!maps || mem < 0)
		return die("cannot read the memory of process", pid);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char perms[8];

		/*
		 * Mappings over 1 GiB are reservations, not data (AddressSanitizer's shadow memory
		 * runs to terabytes); the daemon's heaps and stacks are far smaller.
		 */
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar]") || strstr(line, "[vsyscall]") || end - start > (1ul << 30))
			continue;
		for (unsigned long at = start; at < end && !found;) {
			static uint8_t chunk[1 << 20];
			size_t want = end - at < sizeof(chunk) ? end - at : sizeof(chunk);
			ssize_t got = pread(mem, chunk, want, (off_t)at);

			if (got <= 0)
				break;
			if (memmem(chunk, (size_t)got, needle, needle_len))
				found = true;
			/* Overlap so a needle across two chunks is not missed. */
			at += (size_t)got > needle_len ? (size_t)got - needle_len : (size_t)got;
		}
	}
	fclose(maps);
	close(mem);
	return found ? 0 : 1;
}

static int command_set_key_id(const char *path, const char *hex)
{
	uint8_t image[TDEFS_HEADER_SIZE], key_id[16];
	size_t done;
	int fd = open(path, O_RDWR);

	if (fd < 0 || pread_full(fd, image, sizeof(image), 0, &done) < 0 || done != sizeof(image))
		return die("cannot read the header", path);
	if (key_id_parse(hex, key_id) < 0)
		return die("bad key ID", hex);
	for (int i = 0; i < 2; i++) {
		struct file_header header;
		if (header_copy_decode(image + i * HEADER_COPY_SIZE, &header) < 0)
			return die("header copy does not decode", path);
		memcpy(header.key_id, key_id, 16);
		header_copy_encode(&header, image + i * HEADER_COPY_SIZE);
	}
	if (pwrite_all(fd, image, sizeof(image), 0) < 0 || fsync(fd) < 0)
		return die("cannot write the header", path);
	close(fd);
	return 0;
}

static int command_forge_watermark(const char *path, uint64_t watermark)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	size_t done;
	int fd = open(path, O_RDWR);

	if (fd < 0 || pread_full(fd, image, sizeof(image), 0, &done) < 0 || done != sizeof(image))
		return die("cannot read the header", path);
	for (int i = 0; i < 2; i++) {
		struct file_header header;
		if (header_copy_decode(image + i * HEADER_COPY_SIZE, &header) < 0)
			return die("header copy does not decode", path);
		header.flags |= HEADER_FLAG_REKEY_IN_PROGRESS;
		header.wrapped_length = 2 * DEK_SIZE;
		header.watermark = watermark;
		header_copy_encode(&header, image + i * HEADER_COPY_SIZE);
		if (header_copy_decode(image + i * HEADER_COPY_SIZE, &header) < 0)
			return die("the forged copy does not even decode", path);
	}
	if (pwrite_all(fd, image, sizeof(image), 0) < 0 || fsync(fd) < 0)
		return die("cannot write the header", path);
	close(fd);
	return 0;
}

static int command_key_id(const char *path)
{
	uint8_t image[TDEFS_HEADER_SIZE];
	char text[KEY_ID_TEXT_SIZE];
	struct file_header header;
	unsigned slot;
	size_t done;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || pread_full(fd, image, sizeof(image), 0, &done) < 0)
		return die("cannot read the header", path);
	close(fd);
	if (header_select(image, done, &header, &slot) < 0)
		return die("no valid header", path);
	key_id_format(header.key_id, text);
	printf("%s\n", text);
	return 0;
}

#define RECORD_SIZE 1000

static void fill_record(uint8_t *record, unsigned long number)
{
	for (size_t i = 0; i < RECORD_SIZE; i++)
		record[i] = (uint8_t)((number * 2654435761u + i * 40503u) >> 7);
	memcpy(record, &number, sizeof(number));
}

/* Record n goes into file n % files at offset (n / files) * RECORD_SIZE + 7. */
static off_t record_offset(unsigned long number, unsigned long files)
{
	return (off_t)((number / files) * RECORD_SIZE + 7);
}

static int open_files(const char *dir, unsigned long files, int *fds, int flags)
{
	char path[4096];

	for (unsigned long i = 0; i < files; i++) {
		snprintf(path, sizeof(path), "%s/w%lu", dir, i);
		fds[i] = open(path, flags, 0644);
		if (fds[i] < 0)
			return die("cannot open", path);
	}
	return 0;
}

static int command_writer(const char *dir, unsigned long files, const char *log_path)
{
	uint8_t record[RECORD_SIZE];
	int *fds = calloc(files, sizeof(int));
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (!fds || log_fd < 0 || open_files(dir, files, fds, O_RDWR | O_CREAT))
		return die("cannot start the writer", dir);
	for (unsigned long number = 0;; number++) {
		char line[32];
		int fd = fds[number % files];

		fill_record(record, number);
		if (pwrite_all(fd, record, sizeof(record), record_offset(number, files)) < 0 ||
		    fdatasync(fd) < 0)
			return die("write failed", strerror(errno));
		int n = snprintf(line, sizeof(line), "%lu\n", number);
		if (write(log_fd, line, (size_t)n) != n || fsync(log_fd) < 0)
			return die("cannot log", log_path);
	}
}

static int command_check(const char *dir, unsigned long files, const char *log_path)
{
	uint8_t expected[RECORD_SIZE], actual[RECORD_SIZE];
	int *fds = calloc(files, sizeof(int));
	FILE *log = fopen(log_path, "r");
	unsigned long number, checked = 0;
	size_t done;

	if (!fds || !log || open_files(dir, files, fds, O_RDONLY))
		return die("cannot start the check", dir);
	while (fscanf(log, "%lu", &number) == 1) {
		fill_record(expected, number);
		if (pread_full(fds[number % files], actual, sizeof(actual),
			       record_offset(number, files), &done) < 0 ||
		    done != sizeof(actual) || memcmp(actual, expected, sizeof(actual)) != 0) {
			fprintf(stderr, "tdefs-test-tool: record %lu (file w%lu) was fsync'ed but does "
					"not read back\n", number, number % files);
			return 1;
		}
		checked++;
	}
	printf("%lu durable records verified\n", checked);
	for (unsigned long i = 0; i < files; i++)
		close(fds[i]);
	free(fds);
	fclose(log);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "writer") == 0)
		return command_writer(argv[2], strtoul(argv[3], NULL, 10), argv[4]);
	if (argc == 5 && strcmp(argv[1], "check") == 0)
		return command_check(argv[2], strtoul(argv[3], NULL, 10), argv[4]);
	if (argc == 5 && strcmp(argv[1], "verify") == 0)
		return command_verify(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "set-key-id") == 0)
		return command_set_key_id(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "dek") == 0)
		return command_dek(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "find-in-memory") == 0)
		return command_find_in_memory(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "forge-watermark") == 0)
		return command_forge_watermark(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "key-id") == 0)
		return command_key_id(argv[2]);
	fprintf(stderr, "usage: tdefs-test-tool verify WALLET BACKING_FILE PLAIN_FILE\n"
			"       tdefs-test-tool set-key-id BACKING_FILE HEX32\n"
			"       tdefs-test-tool key-id BACKING_FILE\n"
			"       tdefs-test-tool writer|check DIR FILES LOG\n");
	return 2;
}
