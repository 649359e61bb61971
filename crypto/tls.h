/*
 * crypto/tls: the X.509, PKCS#10 and PKCS#12 work of the TLS wallet (docs/WALLET.md, "TLS
 * wallet"), done by OpenSSL in crypto/tls_openssl.c. The rest of tdefs sees opaque handles for a
 * private key and a certificate, plain strings for what a certificate says, and DER or PEM
 * buffers; it never parses ASN.1 itself.
 *
 * Functions return 0 or a negative errno: -EINVAL for input that is not what was asked for (a
 * PEM file without a certificate, a DN OpenSSL does not know), -EACCES when a PKCS#12 MAC does
 * not verify under the password given, -EBADMSG when a PKCS#12 file cannot be decoded. why, when
 * given, gets a short reason (TLS_WHY_SIZE) for the caller's one-line message.
 */
#ifndef TDEFS_CRYPTO_TLS_H
#define TDEFS_CRYPTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_WHY_SIZE 160
#define TLS_NAME_SIZE 512	/* a DN in RFC 2253 form, cut short if longer */
#define TLS_FINGERPRINT_SIZE 100/* SHA-256 as 32 hex pairs joined by ':' */

struct tls_key;	 /* a private key (EVP_PKEY) */
struct tls_cert; /* an X.509 certificate */

enum tls_key_type {
	TLS_KEY_EC_P256,
	TLS_KEY_RSA_3072,
};

/* "ec-p256" or "rsa-3072"; -EINVAL for anything else. */
int tls_key_type_parse(const char *text, enum tls_key_type *type);

int tls_key_generate(enum tls_key_type type, struct tls_key **out);
void tls_key_free(struct tls_key *key);
void tls_cert_free(struct tls_cert *cert);
struct tls_cert *tls_cert_dup(const struct tls_cert *cert);

/*
 * Check a DN given as "CN=db17.example,O=Example Corp" (RFC 4514 order and escapes: '\,' for a
 * comma inside a value); every attribute type must be one OpenSSL knows. why names the problem.
 */
int tls_dn_check(const char *dn, char why[TLS_WHY_SIZE]);

/* A self-signed certificate for key (SHA-256, random 127-bit serial, valid from now for days). */
int tls_cert_self_signed(const struct tls_key *key, const char *dn, unsigned days,
			 struct tls_cert **out, char why[TLS_WHY_SIZE]);
/* A PKCS#10 request for key with subject dn, signed by key, as PEM (malloc'd, NUL-terminated). */
int tls_csr_pem(const struct tls_key *key, const char *dn, char **pem, size_t *len,
		char why[TLS_WHY_SIZE]);

/* Every certificate in a PEM (or a single DER) buffer, in order; -EINVAL when there is none. */
int tls_certs_parse(const uint8_t *data, size_t len, struct tls_cert ***certs, size_t *count,
		    char why[TLS_WHY_SIZE]);
void tls_certs_free(struct tls_cert **certs, size_t count);
int tls_cert_pem(const struct tls_cert *cert, char **pem, size_t *len);
/* true when cert's public key is key's. */
bool tls_cert_matches_key(const struct tls_cert *cert, const struct tls_key *key);

struct tls_cert_info {
	char subject[TLS_NAME_SIZE];
	char issuer[TLS_NAME_SIZE];
	char serial[128]; /* hex, as openssl x509 -serial prints it */
	int64_t not_before, not_after;
	char fingerprint[TLS_FINGERPRINT_SIZE]; /* SHA-256 of the DER, "AB:CD:..." */
	char key_type[32];			/* "EC P-256", "RSA 3072", ... */
	bool self_signed;
};
int tls_cert_info(const struct tls_cert *cert, struct tls_cert_info *info);
/* The key's type in the words of tls_cert_info.key_type. */
void tls_key_describe(const struct tls_key *key, char out[32]);

/*
 * What a TLS wallet holds: the client's private key and its certificate (either may be absent:
 * a key alone after a certificate request) and the trusted CA certificates.
 */
struct tls_bundle {
	struct tls_key *key;
	struct tls_cert *cert;
	struct tls_cert **trusted;
	size_t trusted_count;
};
void tls_bundle_release(struct tls_bundle *bundle);
/* Append a copy of cert to bundle->trusted. */
int tls_bundle_add_trusted(struct tls_bundle *bundle, const struct tls_cert *cert);
/* Remove (and free) trusted[index]. */
void tls_bundle_remove_trusted(struct tls_bundle *bundle, size_t index);

/*
 * Encode bundle as PKCS#12 under password (NUL-terminated; "" for the auto-login form): key and
 * certificates in PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) bags, a SHA-256 MAC, the certificate's
 * friendly name "tdefs-client", trusted certificates marked for Java's keytool as trusted
 * (Oracle's trustedKeyUsage attribute). The DER goes to secure memory (secure_free).
 */
int tls_pkcs12_encode(const struct tls_bundle *bundle, const char *password, uint8_t **der,
		      size_t *len, char why[TLS_WHY_SIZE]);
/* Decode and verify: -EACCES when the MAC fails under password, -EBADMSG when not PKCS#12. */
int tls_pkcs12_decode(const uint8_t *der, size_t len, const char *password,
		      struct tls_bundle *bundle, char why[TLS_WHY_SIZE]);

/*
 * A TLS client connection to a key server (crypto/tls_connection.c): TCP to host:port, TLS 1.2
 * or later, the identity's key and certificate presented, the server's chain verified against
 * the identity's trusted certificates only (never the system store) and its name against host
 * (a DNS name or an IP address in the certificate's subjectAltName). Every step is bounded by
 * timeout_ms. Errors: -ETIMEDOUT, -ECONNREFUSED and the other connect(2) errors, -EHOSTUNREACH
 * when host does not resolve, -EPERM when the server's certificate is not trusted or not for
 * host, -EACCES when the server refused the handshake (our certificate, most often), -EPROTO for
 * any other TLS failure, -ECONNRESET when the peer closed; why says which, in one phrase.
 */
struct tls_connection;
int tls_connect(const char *host, const char *port, const struct tls_bundle *identity,
		int timeout_ms, struct tls_connection **out, char why[TLS_WHY_SIZE]);
/* All of len bytes out, or all of len bytes in, within timeout_ms. */
int tls_send(struct tls_connection *connection, const void *buf, size_t len, int timeout_ms,
	     char why[TLS_WHY_SIZE]);
int tls_receive(struct tls_connection *connection, void *buf, size_t len, int timeout_ms,
		char why[TLS_WHY_SIZE]);
void tls_close(struct tls_connection *connection);

#endif
