/*
 * libFuzzer target for the one parser of the TLS wallet that is tdefs' own: the --dn text
 * ("CN=a,O=b\,c") that crypto/tls_openssl.c splits into attributes for OpenSSL's X509_NAME.
 * Everything else a TLS wallet reads (PKCS#12, X.509, PEM) is parsed by OpenSSL itself, so it
 * has no target here (a PKCS#12 decode also costs two 100000-round PBKDF2 runs per input, which
 * would leave the fuzzer measuring PBKDF2). The input is the DN, NUL-terminated here. Seeds in
 * corpus/fuzz_tls_dn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[TLS_WHY_SIZE];
	char *text;

	if (size > 4096)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)tls_dn_check(text, why);
	free(text);
	return 0;
}
