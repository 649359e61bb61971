/*
 * The OpenSSL 3 backend: the only file in tdefs that includes an OpenSSL header.
 *
 * Cipher objects are fetched once per process (EVP_CIPHER_fetch is a locked lookup that has no
 * place on the I/O path). XTS contexts are expensive to set up (two AES key schedules) and are
 * not safe for concurrent use, so each xts_key keeps a template context with the key set and a
 * small pool of copies that threads borrow per call.
 */
#include "crypto/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/rand.h>

static EVP_CIPHER *cipher_xts;
static EVP_CIPHER *cipher_gcm;
static EVP_MD *digest_sha256;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_algorithms(void)
{
	cipher_xts = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
	cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	digest_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int algorithms_ready(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return (cipher_xts && cipher_gcm && digest_sha256) ? 0 : -ENOTSUP;
}

const char *crypto_backend_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

int crypto_random_bytes(void *buf, size_t len)
{
	if (len > INT32_MAX)
		return -EINVAL;
	return RAND_priv_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_SIZE])
{
	unsigned int out_len = 0;

	if (algorithms_ready() < 0)
		return -ENOTSUP;
	if (EVP_Digest(data, len, out, &out_len, digest_sha256, NULL) != 1 || out_len != SHA256_SIZE)
		return -EIO;
	return 0;
}

static int derive(const char *kdf_name, OSSL_PARAM *params, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, kdf_name, NULL);
	EVP_KDF_CTX *ctx;
	int ret = -EIO;

	if (!kdf)
		return -ENOTSUP;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out_free_kdf;
	if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
		ret = 0;
	EVP_KDF_CTX_free(ctx);
out_free_kdf:
	EVP_KDF_free(kdf);
	return ret;
}

int crypto_hkdf_sha256(const uint8_t *key, size_t key_len, const uint8_t *salt, size_t salt_len,
		       const char *info, uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[5];
	size_t n = 0;

	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
	if (salt && salt_len)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
								salt_len);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
							strlen(info));
	params[n] = OSSL_PARAM_construct_end();
	return derive("HKDF", params, out, out_len);
}

int crypto_scrypt(const void *password, size_t password_len, const uint8_t *salt,
		  size_t salt_len, unsigned log2_n, uint32_t r, uint32_t p, uint8_t *out,
		  size_t out_len)
{
	uint64_t n_cost;
	OSSL_PARAM params[6];
	size_t n = 0;

	if (log2_n < 1 || log2_n > 30 || r == 0 || p == 0)
		return -EINVAL;
	n_cost = UINT64_C(1) << log2_n;
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
							password_len);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							salt_len);
	params[n++] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n_cost);
	params[n++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[n++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[n] = OSSL_PARAM_construct_end();
	/* OpenSSL's default scrypt memory cap is 1 GiB; N=2^20,r=8 needs exactly that. */
	return derive("SCRYPT", params, out, out_len);
}

static int gcm_run(bool encrypt, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
		   size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	int out_len, ret = -EIO;

	if (algorithms_ready() < 0)
		return -ENOTSUP;
	if (len > INT32_MAX || aad_len > INT32_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_CipherInit_ex2(ctx, cipher_gcm, key, nonce, encrypt, NULL) != 1)
		goto out_free_ctx;
	if (aad_len && EVP_CipherUpdate(ctx, NULL, &out_len, aad, (int)aad_len) != 1)
		goto out_free_ctx;
	if (len && EVP_CipherUpdate(ctx, out, &out_len, in, (int)len) != 1)
		goto out_free_ctx;
	if (!encrypt &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_SIZE, (void *)tag) != 1)
		goto out_free_ctx;
	if (EVP_CipherFinal_ex(ctx, out + len, &out_len) != 1) {
		ret = encrypt ? -EIO : -EBADMSG;
		goto out_free_ctx;
	}
	if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_SIZE, tag) != 1)
		goto out_free_ctx;
	ret = 0;
out_free_ctx:
	EVP_CIPHER_CTX_free(ctx);
	if (ret == -EBADMSG)
		secure_wipe(out, len);
	return ret;
}

int crypto_gcm_seal(const uint8_t key[AES256_KEY_SIZE], const uint8_t nonce[GCM_NONCE_SIZE],
		    const uint8_t *aad, size_t aad_len, const uint8_t *plaintext, size_t len,
		    uint8_t *ciphertext, uint8_t tag[GCM_TAG_SIZE])
{
	return gcm_run(true, key, nonce, aad, aad_len, plaintext, len, ciphertext, tag);
}

int crypto_gcm_open(const uint8_t key[AES256_KEY_SIZE], const uint8_t nonce[GCM_NONCE_SIZE],
		    const uint8_t *aad, size_t aad_len, const uint8_t *ciphertext, size_t len,
		    const uint8_t tag[GCM_TAG_SIZE], uint8_t *plaintext)
{
	return gcm_run(false, key, nonce, aad, aad_len, ciphertext, len, plaintext, (uint8_t *)tag);
}

/* --- XTS ------------------------------------------------------------------------------- */

/* Enough for the daemon's worker threads; beyond it contexts are freed instead of pooled. */
#define XTS_POOL_SIZE 32

struct xts_context_pool {
	EVP_CIPHER_CTX *template_context;
	EVP_CIPHER_CTX *idle[XTS_POOL_SIZE]; /* guarded by xts_key.lock */
	unsigned idle_count;                 /* guarded by xts_key.lock */
};

struct xts_key {
	pthread_mutex_t lock;
	struct xts_context_pool pool[2]; /* [0] decrypt, [1] encrypt */
};

static EVP_CIPHER_CTX *keyed_context(const uint8_t *key, bool encrypt)
{
	static const uint8_t zero_iv[16];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx && EVP_CipherInit_ex2(ctx, cipher_xts, key, zero_iv, encrypt, NULL) == 1)
		return ctx;
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

int xts_key_new(const uint8_t key[XTS_KEY_SIZE], struct xts_key **out)
{
	struct xts_key *xts;

	if (algorithms_ready() < 0)
		return -ENOTSUP;
	xts = calloc(1, sizeof(*xts));
	if (!xts)
		return -ENOMEM;
	pthread_mutex_init(&xts->lock, NULL);
	for (int encrypt = 0; encrypt < 2; encrypt++) {
		xts->pool[encrypt].template_context = keyed_context(key, encrypt);
		if (!xts->pool[encrypt].template_context) {
			xts_key_free(xts);
			/* OpenSSL refuses XTS keys whose two halves are equal. */
			return -EINVAL;
		}
	}
	*out = xts;
	return 0;
}

void xts_key_free(struct xts_key *xts)
{
	if (!xts)
		return;
	for (int encrypt = 0; encrypt < 2; encrypt++) {
		struct xts_context_pool *pool = &xts->pool[encrypt];

		/* EVP_CIPHER_CTX_free cleanses the key schedule before releasing it. */
		for (unsigned i = 0; i < pool->idle_count; i++)
			EVP_CIPHER_CTX_free(pool->idle[i]);
		EVP_CIPHER_CTX_free(pool->template_context);
	}
	pthread_mutex_destroy(&xts->lock);
	free(xts);
}

static EVP_CIPHER_CTX *borrow_context(struct xts_key *xts, bool encrypt)
{
	struct xts_context_pool *pool = &xts->pool[encrypt];
	EVP_CIPHER_CTX *ctx = NULL;

	pthread_mutex_lock(&xts->lock);
	if (pool->idle_count > 0)
		ctx = pool->idle[--pool->idle_count];
	pthread_mutex_unlock(&xts->lock);
	if (ctx)
		return ctx;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx && EVP_CIPHER_CTX_copy(ctx, pool->template_context) == 1)
		return ctx;
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

static void return_context(struct xts_key *xts, bool encrypt, EVP_CIPHER_CTX *ctx)
{
	struct xts_context_pool *pool = &xts->pool[encrypt];

	pthread_mutex_lock(&xts->lock);
	if (pool->idle_count < XTS_POOL_SIZE) {
		pool->idle[pool->idle_count++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&xts->lock);
	EVP_CIPHER_CTX_free(ctx);
}

static inline void tweak_for_unit(uint8_t tweak[16], uint64_t unit_number)
{
	for (int i = 0; i < 8; i++)
		tweak[i] = (uint8_t)(unit_number >> (8 * i));
	memset(tweak + 8, 0, 8);
}

/*
 * Set only the tweak: passing no cipher and no key makes OpenSSL keep the key schedule and
 * just load the new IV, which is what makes a per-4-KiB-unit tweak affordable.
 */
static inline int run_unit(EVP_CIPHER_CTX *ctx, bool encrypt, uint64_t unit_number,
			   const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t tweak[16];
	int out_len;

	tweak_for_unit(tweak, unit_number);
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, tweak, encrypt, NULL) != 1)
		return -EIO;
	if (EVP_CipherUpdate(ctx, out, &out_len, in, (int)len) != 1 || (size_t)out_len != len)
		return -EIO;
	return 0;
}

static int xts_run_units(struct xts_key *xts, bool encrypt, uint64_t first_unit, size_t unit_size,
			 const uint8_t *in, uint8_t *out, size_t len)
{
	EVP_CIPHER_CTX *ctx;
	int ret = 0;

	if (unit_size < XTS_MIN_UNIT || unit_size > (1u << 24) || len % unit_size != 0)
		return -EINVAL;
	ctx = borrow_context(xts, encrypt);
	if (!ctx)
		return -ENOMEM;
	for (size_t done = 0; done < len && ret == 0; done += unit_size)
		ret = run_unit(ctx, encrypt, first_unit++, in + done, out + done, unit_size);
	return_context(xts, encrypt, ctx);
	return ret;
}

int xts_encrypt(struct xts_key *key, uint64_t unit_number, const uint8_t *in, uint8_t *out,
		size_t len)
{
	return xts_run_units(key, true, unit_number, len, in, out, len);
}

int xts_decrypt(struct xts_key *key, uint64_t unit_number, const uint8_t *in, uint8_t *out,
		size_t len)
{
	return xts_run_units(key, false, unit_number, len, in, out, len);
}

int xts_encrypt_units(struct xts_key *key, uint64_t first_unit, size_t unit_size,
		      const uint8_t *in, uint8_t *out, size_t len)
{
	return xts_run_units(key, true, first_unit, unit_size, in, out, len);
}

int xts_decrypt_units(struct xts_key *key, uint64_t first_unit, size_t unit_size,
		      const uint8_t *in, uint8_t *out, size_t len)
{
	return xts_run_units(key, false, first_unit, unit_size, in, out, len);
}

int crypto_reference_xts_loop(const uint8_t key[XTS_KEY_SIZE], size_t unit_size, uint8_t *buf,
			      size_t len, bool encrypt, bool steady_state)
{
	uint8_t tweak[16] = { 0 };
	EVP_CIPHER_CTX *ctx;
	int out_len, ret = -EIO;

	if (algorithms_ready() < 0)
		return -ENOTSUP;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_CipherInit_ex(ctx, cipher_xts, NULL, key, tweak, encrypt) != 1)
		goto out_free_ctx;
	for (size_t done = 0, unit = 0; done + unit_size <= len; done += unit_size, unit++) {
		if (!steady_state) {
			tweak_for_unit(tweak, unit);
			if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, tweak, encrypt) != 1)
				goto out_free_ctx;
		}
		if (EVP_CipherUpdate(ctx, buf + done, &out_len, buf + done, (int)unit_size) != 1)
			goto out_free_ctx;
	}
	ret = 0;
out_free_ctx:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}
