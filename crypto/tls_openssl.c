/*
 * The OpenSSL side of crypto/tls.h: keys, certificates, requests and PKCS#12 files for the TLS
 * wallet. This is the one file besides crypto_openssl.c that includes OpenSSL headers, and it
 * is a file of its own for two reasons: crypto_openssl.c is the data path (XTS context pools,
 * AEAD) that the daemon's every I/O goes through, and X.509/PKCS#12 is another subject of about
 * the same size that the data path never needs; and a KMIP client would add
 * libssl's TLS contexts next to these functions, which should not be mixed into the data path
 * file either. Both files sit behind crypto/: nothing outside crypto/ includes OpenSSL.
 *
 * Everything ASN.1 is OpenSSL's. The one piece of text parsing here is the DN of the command
 * line ("CN=a,O=b"), which libcrypto has no function for: it is split on unescaped commas and
 * each "TYPE=value" handed to X509_NAME_add_entry_by_txt, which decides whether TYPE exists
 * (tests/keystore/fuzz_tls_dn.c fuzzes it).
 *
 * Private keys are generated in OpenSSL's secure heap when it can be set up (locked, not
 * dumped): CRYPTO_secure_malloc_init below, once per process.
 */
#include "crypto/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/crypto.h"
#include "crypto/tls_handles.h"

#define PKCS12_ITERATIONS 100000
#define CLIENT_FRIENDLY_NAME "tdefs-client"
/* Oracle's trustedKeyUsage: what makes keytool list a certificate bag as a trusted entry. */
#define JDK_TRUSTED_KEY_USAGE_OID "2.16.840.1.113894.746875.1.1"
#define MAX_DN_LENGTH 1024

static pthread_once_t secure_heap_once = PTHREAD_ONCE_INIT;

static void secure_heap_init(void)
{
	/* 64 KiB is room for a few RSA-3072 keys; without it OpenSSL uses its ordinary heap. */
	if (!CRYPTO_secure_malloc_initialized())
		(void)CRYPTO_secure_malloc_init(64 * 1024, 32);
}

static void set_why(char why[TLS_WHY_SIZE], const char *text)
{
	if (why)
		snprintf(why, TLS_WHY_SIZE, "%s", text);
}

/* The reason of OpenSSL's last error, for messages, and the queue cleared. */
static void set_why_openssl(char why[TLS_WHY_SIZE], const char *what)
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;

	if (why)
		snprintf(why, TLS_WHY_SIZE, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
	ERR_clear_error();
}

int tls_key_type_parse(const char *text, enum tls_key_type *type)
{
	if (strcmp(text, "ec-p256") == 0)
		*type = TLS_KEY_EC_P256;
	else if (strcmp(text, "rsa-3072") == 0)
		*type = TLS_KEY_RSA_3072;
	else
		return -EINVAL;
	return 0;
}

static struct tls_key *key_wrap(EVP_PKEY *pkey)
{
	struct tls_key *key = calloc(1, sizeof(*key));

	if (!key) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	key->pkey = pkey;
	return key;
}

static struct tls_cert *cert_wrap(X509 *x509)
{
	struct tls_cert *cert = calloc(1, sizeof(*cert));

	if (!cert) {
		X509_free(x509);
		return NULL;
	}
	cert->x509 = x509;
	return cert;
}

int tls_key_generate(enum tls_key_type type, struct tls_key **out)
{
	EVP_PKEY *pkey;

	pthread_once(&secure_heap_once, secure_heap_init);
	pkey = type == TLS_KEY_EC_P256 ? EVP_EC_gen("P-256")
				       : EVP_RSA_gen(3072);
	if (!pkey) {
		ERR_clear_error();
		return -EIO;
	}
	*out = key_wrap(pkey);
	return *out ? 0 : -ENOMEM;
}

void tls_key_free(struct tls_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

void tls_cert_free(struct tls_cert *cert)
{
	if (!cert)
		return;
	X509_free(cert->x509);
	free(cert);
}

struct tls_cert *tls_cert_dup(const struct tls_cert *cert)
{
	X509 *copy = X509_dup(cert->x509);

	return copy ? cert_wrap(copy) : NULL;
}

/*
 * "CN=a,O=b\,c" into an X509_NAME, attributes in the order written (RFC 4514 writes the most
 * significant last; Oracle's orapki and most people write CN first, and so does this).
 */
static int dn_parse(const char *dn, X509_NAME **out, char why[TLS_WHY_SIZE])
{
	size_t len = strlen(dn), pos = 0;
	X509_NAME *name;
	char *part;
	int ret = 0;

	if (len == 0 || len > MAX_DN_LENGTH) {
		set_why(why, len ? "the DN is longer than 1024 characters" : "the DN is empty");
		return -EINVAL;
	}
	name = X509_NAME_new();
	part = malloc(len + 1);
	if (!name || !part) {
		ret = -ENOMEM;
		goto out;
	}
	while (pos <= len && ret == 0) {
		size_t n = 0;
		char *eq, *type, *value, *end;

		/* One attribute: up to an unescaped ',' (a '\' takes the next character as it is). */
		for (; pos < len && dn[pos] != ','; pos++) {
			if (dn[pos] == '\\' && pos + 1 < len)
				pos++;
			else if (dn[pos] == '\\') {
				set_why(why, "the DN ends in a lone '\\'");
				ret = -EINVAL;
				goto out;
			}
			/* '=' escaped as '\=' must not split type from value: mark it. */
			part[n++] = (dn[pos] == '=' && pos > 0 && dn[pos - 1] == '\\') ? '\x01' : dn[pos];
		}
		pos++; /* past the ',' (or the end) */
		part[n] = '\0';
		eq = strchr(part, '=');
		if (!eq) {
			if (why)
				snprintf(why, TLS_WHY_SIZE, "'%.40s' in the DN is not TYPE=value", part);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		type = part;
		value = eq + 1;
		while (*type == ' ')
			type++;
		for (end = eq; end > type && end[-1] == ' ';)
			*--end = '\0';
		while (*value == ' ')
			value++;
		for (char *p = value; *p; p++)
			if (*p == '\x01')
				*p = '=';
		if (!*type || !*value) {
			set_why(why, !*type ? "an attribute of the DN has no type"
					    : "an attribute of the DN has an empty value");
			ret = -EINVAL;
			goto out;
		}
		if (OBJ_txt2nid(type) == NID_undef) {
			if (why)
				snprintf(why, TLS_WHY_SIZE, "unknown DN attribute type '%.40s'", type);
			ret = -EINVAL;
			goto out;
		}
		if (!X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8, (const unsigned char *)value,
						-1, -1, 0)) {
			if (why)
				snprintf(why, TLS_WHY_SIZE, "DN attribute %.40s: value not accepted",
					 type);
			ERR_clear_error();
			ret = -EINVAL;
		}
	}
out:
	free(part);
	if (ret == 0) {
		*out = name;
		return 0;
	}
	X509_NAME_free(name);
	return ret;
}

int tls_dn_check(const char *dn, char why[TLS_WHY_SIZE])
{
	X509_NAME *name = NULL;
	int ret = dn_parse(dn, &name, why);

	X509_NAME_free(name);
	return ret;
}

static int add_extension(X509 *x509, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x509, x509, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EIO;
	ok = X509_add_ext(x509, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

int tls_cert_self_signed(const struct tls_key *key, const char *dn, unsigned days,
			 struct tls_cert **out, char why[TLS_WHY_SIZE])
{
	X509_NAME *name = NULL;
	BIGNUM *serial = NULL;
	X509 *x509 = NULL;
	int ret = dn_parse(dn, &name, why);

	if (ret < 0)
		return ret;
	ret = -EIO;
	x509 = X509_new();
	serial = BN_new();
	if (!x509 || !serial)
		goto out;
	/* A positive serial of at most 127 bits, as RFC 5280 asks (20 octets at most). */
	if (!BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x509)))
		goto out;
	if (!X509_set_version(x509, X509_VERSION_3) || !X509_set_subject_name(x509, name) ||
	    !X509_set_issuer_name(x509, name) || !X509_gmtime_adj(X509_getm_notBefore(x509), 0) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x509), (int)days, 0, NULL) ||
	    !X509_set_pubkey(x509, key->pkey))
		goto out;
	if (add_extension(x509, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_extension(x509, NID_key_usage,
			  EVP_PKEY_is_a(key->pkey, "RSA") ? "critical,digitalSignature,keyEncipherment"
							  : "critical,digitalSignature") < 0 ||
	    add_extension(x509, NID_ext_key_usage, "clientAuth,serverAuth") < 0 ||
	    add_extension(x509, NID_subject_key_identifier, "hash") < 0)
		goto out;
	if (!X509_sign(x509, key->pkey, EVP_sha256()))
		goto out;
	*out = cert_wrap(x509);
	x509 = NULL;
	ret = *out ? 0 : -ENOMEM;
out:
	if (ret == -EIO)
		set_why_openssl(why, "cannot make the certificate");
	X509_free(x509);
	BN_free(serial);
	X509_NAME_free(name);
	return ret;
}

/* The contents of a memory BIO as a malloc'd NUL-terminated string. */
static int bio_to_string(BIO *bio, char **text, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	if (n <= 0)
		return -EIO;
	*text = malloc((size_t)n + 1);
	if (!*text)
		return -ENOMEM;
	memcpy(*text, data, (size_t)n);
	(*text)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

int tls_csr_pem(const struct tls_key *key, const char *dn, char **pem, size_t *len,
		char why[TLS_WHY_SIZE])
{
	X509_NAME *name = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	int ret = dn_parse(dn, &name, why);

	if (ret < 0)
		return ret;
	ret = -EIO;
	req = X509_REQ_new();
	bio = BIO_new(BIO_s_mem());
	if (!req || !bio || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key->pkey) ||
	    !X509_REQ_sign(req, key->pkey, EVP_sha256()) || !PEM_write_bio_X509_REQ(bio, req))
		goto out;
	ret = bio_to_string(bio, pem, len);
out:
	if (ret == -EIO)
		set_why_openssl(why, "cannot make the request");
	BIO_free(bio);
	X509_REQ_free(req);
	X509_NAME_free(name);
	return ret;
}

void tls_certs_free(struct tls_cert **certs, size_t count)
{
	if (!certs)
		return;
	for (size_t i = 0; i < count; i++)
		tls_cert_free(certs[i]);
	free(certs);
}

static int certs_append(struct tls_cert ***certs, size_t *count, X509 *x509)
{
	struct tls_cert **grown = realloc(*certs, (*count + 1) * sizeof(**certs));
	struct tls_cert *cert;

	if (!grown) {
		X509_free(x509);
		return -ENOMEM;
	}
	*certs = grown;
	cert = cert_wrap(x509);
	if (!cert)
		return -ENOMEM;
	grown[(*count)++] = cert;
	return 0;
}

int tls_certs_parse(const uint8_t *data, size_t len, struct tls_cert ***certs, size_t *count,
		    char why[TLS_WHY_SIZE])
{
	BIO *bio;
	X509 *x509;
	int ret = 0;

	*certs = NULL;
	*count = 0;
	if (len > INT32_MAX)
		return -EFBIG;
	bio = BIO_new_mem_buf(data, (int)len);
	if (!bio)
		return -ENOMEM;
	while (ret == 0 && (x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		ret = certs_append(certs, count, x509);
	BIO_free(bio);
	ERR_clear_error();
	if (ret == 0 && *count == 0) {
		const unsigned char *p = data;

		/* Not PEM: one DER certificate, all of the buffer. */
		x509 = d2i_X509(NULL, &p, (long)len);
		if (x509 && p == data + len)
			ret = certs_append(certs, count, x509);
		else
			X509_free(x509);
		ERR_clear_error();
	}
	if (ret == 0 && *count == 0) {
		set_why(why, "no certificate in it (PEM or DER X.509 expected)");
		ret = -EINVAL;
	}
	if (ret < 0) {
		tls_certs_free(*certs, *count);
		*certs = NULL;
		*count = 0;
	}
	return ret;
}

int tls_cert_pem(const struct tls_cert *cert, char **pem, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ret = -EIO;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_X509(bio, cert->x509))
		ret = bio_to_string(bio, pem, len);
	BIO_free(bio);
	return ret;
}

bool tls_cert_matches_key(const struct tls_cert *cert, const struct tls_key *key)
{
	EVP_PKEY *public_key = X509_get0_pubkey(cert->x509);
	bool match = public_key && EVP_PKEY_eq(public_key, key->pkey) == 1;

	ERR_clear_error();
	return match;
}

static void name_text(const X509_NAME *name, char out[TLS_NAME_SIZE])
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	out[0] = '\0';
	if (!bio)
		return;
	/* RFC 2253 order reversed to the order written, UTF-8 kept: what --dn took. */
	if (X509_NAME_print_ex(bio, name, 0,
			       (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~XN_FLAG_DN_REV)) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		if (n > 0)
			snprintf(out, TLS_NAME_SIZE, "%.*s", (int)n, data);
	}
	BIO_free(bio);
}

static int64_t asn1_time_seconds(const ASN1_TIME *when)
{
	struct tm tm;

	if (!when || !ASN1_TIME_to_tm(when, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void describe_pkey(EVP_PKEY *pkey, char out[32])
{
	char group[64] = "";
	size_t group_len = 0;

	if (!pkey)
		snprintf(out, 32, "-");
	else if (EVP_PKEY_is_a(pkey, "EC") &&
		 EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &group_len))
		snprintf(out, 32, "EC %.28s",
			 strcmp(group, "prime256v1") == 0 ? "P-256" : group);
	else if (EVP_PKEY_is_a(pkey, "RSA"))
		snprintf(out, 32, "RSA %d", EVP_PKEY_get_bits(pkey));
	else
		snprintf(out, 32, "%s", EVP_PKEY_get0_type_name(pkey));
	ERR_clear_error();
}

void tls_key_describe(const struct tls_key *key, char out[32])
{
	describe_pkey(key ? key->pkey : NULL, out);
}

int tls_cert_info(const struct tls_cert *cert, struct tls_cert_info *info)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert->x509);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	BIGNUM *bn;
	char *hex;

	memset(info, 0, sizeof(*info));
	name_text(X509_get_subject_name(cert->x509), info->subject);
	name_text(X509_get_issuer_name(cert->x509), info->issuer);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(info->serial, sizeof(info->serial), "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	info->not_before = asn1_time_seconds(X509_get0_notBefore(cert->x509));
	info->not_after = asn1_time_seconds(X509_get0_notAfter(cert->x509));
	if (!X509_digest(cert->x509, EVP_sha256(), digest, &digest_len)) {
		ERR_clear_error();
		return -EIO;
	}
	for (unsigned i = 0; i < digest_len && 3 * i + 4 <= sizeof(info->fingerprint); i++)
		snprintf(info->fingerprint + 3 * i, 4, i + 1 < digest_len ? "%02X:" : "%02X",
			 digest[i]);
	describe_pkey(X509_get0_pubkey(cert->x509), info->key_type);
	/* Self-signed: its own issuer, and its signature verifies under its own key. */
	info->self_signed = X509_NAME_cmp(X509_get_subject_name(cert->x509),
					  X509_get_issuer_name(cert->x509)) == 0 &&
			    X509_verify(cert->x509, X509_get0_pubkey(cert->x509)) == 1;
	ERR_clear_error();
	return 0;
}

void tls_bundle_release(struct tls_bundle *bundle)
{
	tls_key_free(bundle->key);
	tls_cert_free(bundle->cert);
	tls_certs_free(bundle->trusted, bundle->trusted_count);
	memset(bundle, 0, sizeof(*bundle));
}

int tls_bundle_add_trusted(struct tls_bundle *bundle, const struct tls_cert *cert)
{
	X509 *copy = X509_dup(cert->x509);

	if (!copy)
		return -ENOMEM;
	return certs_append(&bundle->trusted, &bundle->trusted_count, copy);
}

void tls_bundle_remove_trusted(struct tls_bundle *bundle, size_t index)
{
	if (index >= bundle->trusted_count)
		return;
	tls_cert_free(bundle->trusted[index]);
	memmove(bundle->trusted + index, bundle->trusted + index + 1,
		(bundle->trusted_count - index - 1) * sizeof(*bundle->trusted));
	bundle->trusted_count--;
}

/* A certificate bag in bags; the client's gets the local key ID that ties it to the key. */
static int add_cert_bag(STACK_OF(PKCS12_SAFEBAG) **bags, X509 *x509, const unsigned char *key_id,
			int key_id_len, const char *friendly_name)
{
	PKCS12_SAFEBAG *bag = PKCS12_add_cert(bags, x509);
	ASN1_OBJECT *any_usage;
	int ok;

	if (!bag)
		return -EIO;
	if (friendly_name && !PKCS12_add_friendlyname(bag, friendly_name, -1))
		return -EIO;
	if (key_id)
		return PKCS12_add_localkeyid(bag, (unsigned char *)key_id, key_id_len) ? 0 : -EIO;
	/* A trust anchor: keytool lists a certificate bag only with this attribute. */
	any_usage = OBJ_nid2obj(NID_anyExtendedKeyUsage);
	ok = any_usage && PKCS12_add1_attr_by_txt(bag, JDK_TRUSTED_KEY_USAGE_OID, V_ASN1_OBJECT,
						  (const unsigned char *)any_usage, -1);
	return ok ? 0 : -EIO;
}

int tls_pkcs12_encode(const struct tls_bundle *bundle, const char *password, uint8_t **der,
		      size_t *len, char why[TLS_WHY_SIZE])
{
	STACK_OF(PKCS12_SAFEBAG) *cert_bags = NULL, *key_bags = NULL;
	STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
	unsigned char key_id[EVP_MAX_MD_SIZE];
	unsigned int key_id_len = 0;
	unsigned char *out = NULL;
	PKCS12 *p12 = NULL;
	int ret = -EIO, n = 0;

	if (!safes)
		return -ENOMEM;
	/* The local key ID is the certificate's SHA-1, as openssl pkcs12 -export sets it. */
	if (bundle->cert && (!X509_digest(bundle->cert->x509, EVP_sha1(), key_id, &key_id_len) ||
			     add_cert_bag(&cert_bags, bundle->cert->x509, key_id, (int)key_id_len,
					  CLIENT_FRIENDLY_NAME) < 0))
		goto out;
	for (size_t i = 0; i < bundle->trusted_count; i++) {
		char alias[48];

		snprintf(alias, sizeof(alias), "tdefs-trusted-%zu", i + 1);
		if (add_cert_bag(&cert_bags, bundle->trusted[i]->x509, NULL, 0, alias) < 0)
			goto out;
	}
	if (cert_bags && !PKCS12_add_safe(&safes, cert_bags, NID_aes_256_cbc, PKCS12_ITERATIONS,
					  password))
		goto out;
	if (bundle->key) {
		PKCS12_SAFEBAG *bag = PKCS12_add_key(&key_bags, bundle->key->pkey, 0,
						     PKCS12_ITERATIONS, NID_aes_256_cbc, password);

		if (!bag || (bundle->cert && !PKCS12_add_localkeyid(bag, key_id, (int)key_id_len)) ||
		    (bundle->cert && !PKCS12_add_friendlyname(bag, CLIENT_FRIENDLY_NAME, -1)))
			goto out;
		/* The key bag is shrouded (encrypted) itself; its safe needs no second layer. */
		if (!PKCS12_add_safe(&safes, key_bags, -1, 0, NULL))
			goto out;
	}
	p12 = PKCS12_add_safes(safes, 0);
	if (!p12 || !PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_ITERATIONS, EVP_sha256()))
		goto out;
	n = i2d_PKCS12(p12, &out);
	if (n <= 0)
		goto out;
	*der = secure_alloc((size_t)n);
	if (!*der) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(*der, out, (size_t)n);
	*len = (size_t)n;
	ret = 0;
out:
	if (ret == -EIO)
		set_why_openssl(why, "cannot encode PKCS#12");
	if (out) {
		OPENSSL_cleanse(out, (size_t)(n > 0 ? n : 0));
		OPENSSL_free(out);
	}
	PKCS12_free(p12);
	sk_PKCS12_SAFEBAG_pop_free(cert_bags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(key_bags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	return ret;
}

int tls_pkcs12_decode(const uint8_t *der, size_t len, const char *password,
		      struct tls_bundle *bundle, char why[TLS_WHY_SIZE])
{
	const unsigned char *p = der;
	STACK_OF(X509) *ca = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	PKCS12 *p12;
	int ret = 0;

	memset(bundle, 0, sizeof(*bundle));
	pthread_once(&secure_heap_once, secure_heap_init);
	if (len > INT32_MAX)
		return -EFBIG;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (!p12 || p != der + len) {
		set_why(why, p12 ? "bytes after the PKCS#12 structure" : "not a PKCS#12 file");
		PKCS12_free(p12);
		ERR_clear_error();
		return -EBADMSG;
	}
	if (!PKCS12_mac_present(p12)) {
		set_why(why, "the PKCS#12 file has no MAC");
		ret = -EBADMSG;
	} else if (!PKCS12_verify_mac(p12, password, -1) &&
		   !(*password == '\0' && PKCS12_verify_mac(p12, NULL, 0))) {
		set_why(why, "the PKCS#12 MAC does not verify");
		ret = -EACCES;
	} else if (!PKCS12_parse(p12, password, &pkey, &cert, &ca)) {
		set_why_openssl(why, "cannot decode the PKCS#12 contents");
		ret = -EBADMSG;
	}
	PKCS12_free(p12);
	ERR_clear_error();
	if (ret < 0)
		return ret;
	/*
	 * PKCS12_parse keeps each bag's friendlyName and localKeyID on the X509 it returns, and
	 * PKCS12_add_cert would copy them back next to the ones encode sets: drop them here.
	 */
	if (cert) {
		X509_alias_set1(cert, NULL, 0);
		X509_keyid_set1(cert, NULL, 0);
	}
	for (int i = 0; ca && i < sk_X509_num(ca); i++) {
		X509_alias_set1(sk_X509_value(ca, i), NULL, 0);
		X509_keyid_set1(sk_X509_value(ca, i), NULL, 0);
	}
	if (pkey && !(bundle->key = key_wrap(pkey)))
		ret = -ENOMEM;
	if (cert && ret == 0 && !(bundle->cert = cert_wrap(cert)))
		ret = -ENOMEM;
	else if (ret < 0)
		X509_free(cert);
	while (ret == 0 && ca && sk_X509_num(ca) > 0)
		ret = certs_append(&bundle->trusted, &bundle->trusted_count, sk_X509_shift(ca));
	sk_X509_pop_free(ca, X509_free);
	if (ret < 0)
		tls_bundle_release(bundle);
	return ret;
}
