/*
 * The insides of the opaque TLS handles of crypto/tls.h, shared by the two files that hand them
 * to OpenSSL: tls_openssl.c (certificates and PKCS#12) and tls_connection.c (the TLS client of
 * the key server). Private to crypto/.
 */
#ifndef TDEFS_CRYPTO_TLS_HANDLES_H
#define TDEFS_CRYPTO_TLS_HANDLES_H

#include <openssl/evp.h>
#include <openssl/x509.h>

struct tls_key {
	EVP_PKEY *pkey;
};
struct tls_cert {
	X509 *x509;
};

#endif
