/*
 * The OpenSSL 3 backend: the only file in tdefs that includes an OpenSSL header.
 *
 * Cipher objects are fetched once per process (EVP_CIPHER_fetch is a locked lookup that has no
 * place on the I/O path). XTS contexts are expensive to set up (two AES key schedules) and are
 * not safe for concurrent use, so each xts_key keeps a template context with the key set and a
 * small pool of copies that threads borrow per call.
 */
#include "crypto/crypto.h"
#include "crypto/crypto_testing.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>
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

/*
 * The per-unit cost. Every 4 KiB block is its own XTS data unit, so the tweak changes 256 times
 * per MiB. Through EVP that means one EVP_CipherInit_ex2(ctx, NULL, NULL, tweak, ...) per block,
 * and in OpenSSL 3.0 that call asks the provider for the IV length through an OSSL_PARAM query
 * every time (EVP_CIPHER_CTX_get_iv_length: OSSL_PARAM_locate and strcmp chains). Measured with
 * callgrind it costs about 780 instructions per block against about 8,100 for the AES work
 * itself, which is the 10-18% gap to `openssl speed` that docs/PERFORMANCE.md records.
 *
 * OpenSSL's documented provider interface (provider-cipher(7)) lets a caller reach the very
 * same implementation without the EVP wrapper: EVP_CIPHER_get0_provider() names the provider
 * the cipher came from, OSSL_PROVIDER_query_operation() lists its algorithms with their
 * dispatch tables, and the cipher's own newctx/einit/update functions then run the provider's
 * AES-NI XTS code directly. Setting a tweak becomes einit(ctx, NULL, 0, tweak, 16, NULL): a
 * 16-byte copy. No cipher code is ours; the EVP path stays as the fallback when the lookup
 * fails (an engine, a provider without dupctx) or when the start-up cross-check below finds
 * that the two paths disagree.
 */
struct xts_dispatch {
	void *provider_context;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_dupctx_fn *dupctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init;
	OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init;
	OSSL_FUNC_cipher_update_fn *update;
};

static struct xts_dispatch xts_direct; /* written once under xts_direct_once, then read-only */
static bool xts_direct_ready;
static pthread_once_t xts_direct_once = PTHREAD_ONCE_INIT;

/* True when names (OpenSSL's colon-separated alias list) contains name exactly. */
static bool algorithm_has_name(const char *names, const char *name)
{
	size_t name_len = strlen(name);

	for (const char *p = names; p && *p;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		if (len == name_len && strncasecmp(p, name, len) == 0)
			return true;
		p = colon ? colon + 1 : NULL;
	}
	return false;
}

static void dispatch_collect(const OSSL_DISPATCH *fns, struct xts_dispatch *d)
{
	for (; fns->function_id != 0; fns++) {
		switch (fns->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX:
			d->newctx = OSSL_FUNC_cipher_newctx(fns);
			break;
		case OSSL_FUNC_CIPHER_DUPCTX:
			d->dupctx = OSSL_FUNC_cipher_dupctx(fns);
			break;
		case OSSL_FUNC_CIPHER_FREECTX:
			d->freectx = OSSL_FUNC_cipher_freectx(fns);
			break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
			d->encrypt_init = OSSL_FUNC_cipher_encrypt_init(fns);
			break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT:
			d->decrypt_init = OSSL_FUNC_cipher_decrypt_init(fns);
			break;
		case OSSL_FUNC_CIPHER_UPDATE:
			d->update = OSSL_FUNC_cipher_update(fns);
			break;
		default:
			break;
		}
	}
}

/*
 * Known-answer cross-check at start-up: the provider functions we found must produce exactly
 * what EVP produces for the same key, tweak and data (two units, both directions), or we do
 * not use them. This guards against picking a different implementation of the same name.
 */
static bool dispatch_matches_evp(const struct xts_dispatch *d)
{
	uint8_t key[XTS_KEY_SIZE], tweak[16] = { 0x5a, 0x01 }, data[64], direct[64], evp[64];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	void *algctx = d->newctx(d->provider_context);
	size_t direct_len = 0;
	int evp_len = 0;
	bool same = false;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 7);
	if (!ctx || !algctx)
		goto out;
	if (EVP_CipherInit_ex2(ctx, cipher_xts, key, tweak, 1, NULL) != 1 ||
	    EVP_CipherUpdate(ctx, evp, &evp_len, data, (int)sizeof(data)) != 1)
		goto out;
	if (d->encrypt_init(algctx, key, sizeof(key), tweak, sizeof(tweak), NULL) != 1 ||
	    d->update(algctx, direct, &direct_len, sizeof(direct), data, sizeof(data)) != 1)
		goto out;
	if (direct_len != sizeof(data) || memcmp(direct, evp, sizeof(direct)) != 0)
		goto out;
	/* And back: the decrypt direction through the provider restores the plaintext. */
	if (d->decrypt_init(algctx, key, sizeof(key), tweak, sizeof(tweak), NULL) != 1 ||
	    d->update(algctx, direct, &direct_len, sizeof(direct), evp, sizeof(evp)) != 1)
		goto out;
	same = direct_len == sizeof(data) && memcmp(direct, data, sizeof(data)) == 0;
out:
	if (algctx)
		d->freectx(algctx);
	EVP_CIPHER_CTX_free(ctx);
	secure_wipe(key, sizeof(key));
	return same;
}

static void xts_direct_lookup(void)
{
	const OSSL_PROVIDER *provider = EVP_CIPHER_get0_provider(cipher_xts);
	const OSSL_ALGORITHM *algorithms;
	struct xts_dispatch found = { 0 };
	int no_cache = 0;

	/* An operator can force the EVP path, e.g. to measure what the direct path buys. */
	if (getenv("TDEFS_XTS_EVP_ONLY") || !provider)
		return;
	algorithms = OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &no_cache);
	for (const OSSL_ALGORITHM *a = algorithms; a && a->algorithm_names; a++) {
		if (algorithm_has_name(a->algorithm_names, "AES-256-XTS")) {
			dispatch_collect(a->implementation, &found);
			break;
		}
	}
	OSSL_PROVIDER_unquery_operation(provider, OSSL_OP_CIPHER, algorithms);
	/* The function pointers stay valid: cipher_xts holds a reference on the provider. */
	found.provider_context = OSSL_PROVIDER_get0_provider_ctx(provider);
	if (!found.newctx || !found.dupctx || !found.freectx || !found.encrypt_init ||
	    !found.decrypt_init || !found.update)
		return;
	if (!dispatch_matches_evp(&found))
		return;
	xts_direct = found;
	xts_direct_ready = true;
}

static bool crypto_xts_direct_dispatch(void)
{
	if (algorithms_ready() < 0)
		return false;
	pthread_once(&xts_direct_once, xts_direct_lookup);
	return xts_direct_ready;
}

/*
 * A unit context is either a provider algorithm context (direct path) or an EVP_CIPHER_CTX
 * (fallback); which one is decided once per process, so one pointer type serves both.
 */
typedef void unit_context;

/*
 * The context pool. A request borrows one context per call (the daemon's worker threads share a
 * file's key), so the borrow and return are on the path of every 4 KiB request. A mutex there
 * cost about 110 instructions per request and, worse, bounced its cache line between cores on
 * every request: with two threads at 4 KiB that held decryption at 0.84 of the bare loop. The
 * pool is therefore a set of single-pointer slots, each on its own cache line, taken with one
 * atomic exchange and refilled with one compare-and-swap; each thread starts at its own slot,
 * so in the steady state a thread keeps reusing one context on one line no other core touches.
 * Contexts are only borrowed for the duration of a cipher call (never across I/O), so the
 * number in use at once is about the number of CPUs; 16 slots cover that, and when more are in
 * use the extra contexts are copied from the template and freed instead of pooled.
 */
#define XTS_POOL_SIZE 16
#define CACHE_LINE 64

struct pool_slot {
	_Alignas(CACHE_LINE) _Atomic(unit_context *) ctx;
};

struct xts_context_pool {
	struct pool_slot slots[XTS_POOL_SIZE];
	unit_context *template_context; /* never used for data, only copied */
};

struct xts_key {
	struct xts_context_pool pool[2]; /* [0] decrypt, [1] encrypt */
	bool direct; /* xts_direct_ready when the key was made; fixed for the key's life */
};

/* This thread's first slot to try; threads are spread over the slots as they first arrive. */
static unsigned thread_slot(void)
{
	static atomic_uint next_slot;
	static _Thread_local unsigned slot_plus_one;

	if (!slot_plus_one)
		slot_plus_one = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) %
					XTS_POOL_SIZE +
				1;
	return slot_plus_one - 1;
}

static void unit_context_free(bool direct, unit_context *ctx)
{
	if (!ctx)
		return;
	/* Both free functions cleanse the key schedule before releasing it. */
	if (direct)
		xts_direct.freectx(ctx);
	else
		EVP_CIPHER_CTX_free(ctx);
}

static unit_context *keyed_context(bool direct, const uint8_t *key, bool encrypt)
{
	static const uint8_t zero_iv[16];
	EVP_CIPHER_CTX *evp;

	if (direct) {
		void *algctx = xts_direct.newctx(xts_direct.provider_context);
		int ok;

		if (!algctx)
			return NULL;
		ok = encrypt ? xts_direct.encrypt_init(algctx, key, XTS_KEY_SIZE, zero_iv,
						       sizeof(zero_iv), NULL)
			     : xts_direct.decrypt_init(algctx, key, XTS_KEY_SIZE, zero_iv,
						       sizeof(zero_iv), NULL);
		if (ok == 1)
			return algctx;
		xts_direct.freectx(algctx);
		return NULL;
	}
	evp = EVP_CIPHER_CTX_new();
	if (evp && EVP_CipherInit_ex2(evp, cipher_xts, key, zero_iv, encrypt, NULL) == 1)
		return evp;
	EVP_CIPHER_CTX_free(evp);
	return NULL;
}

static unit_context *copy_context(bool direct, unit_context *template_context)
{
	EVP_CIPHER_CTX *evp;

	if (direct)
		return xts_direct.dupctx(template_context);
	evp = EVP_CIPHER_CTX_new();
	if (evp && EVP_CIPHER_CTX_copy(evp, template_context) == 1)
		return evp;
	EVP_CIPHER_CTX_free(evp);
	return NULL;
}

int xts_key_new(const uint8_t key[XTS_KEY_SIZE], struct xts_key **out)
{
	struct xts_key *xts;

	if (algorithms_ready() < 0)
		return -ENOTSUP;
	/* Aligned so that each pool slot really has a cache line of its own. */
	xts = aligned_alloc(CACHE_LINE, sizeof(*xts));
	if (!xts)
		return -ENOMEM;
	memset(xts, 0, sizeof(*xts));
	xts->direct = crypto_xts_direct_dispatch();
	for (int encrypt = 0; encrypt < 2; encrypt++) {
		xts->pool[encrypt].template_context = keyed_context(xts->direct, key, encrypt);
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
	/* The caller guarantees no call is in flight, so every pooled context is in a slot. */
	for (int encrypt = 0; encrypt < 2; encrypt++) {
		struct xts_context_pool *pool = &xts->pool[encrypt];

		for (unsigned i = 0; i < XTS_POOL_SIZE; i++)
			unit_context_free(xts->direct, atomic_load(&pool->slots[i].ctx));
		unit_context_free(xts->direct, pool->template_context);
	}
	free(xts);
}

static unit_context *borrow_context(struct xts_key *xts, bool encrypt)
{
	struct xts_context_pool *pool = &xts->pool[encrypt];
	unsigned first = thread_slot();

	for (unsigned n = 0; n < XTS_POOL_SIZE; n++) {
		struct pool_slot *slot = &pool->slots[(first + n) % XTS_POOL_SIZE];
		unit_context *ctx;

		/* A plain load first: an empty slot costs no locked instruction, no line steal. */
		if (!atomic_load_explicit(&slot->ctx, memory_order_relaxed))
			continue;
		ctx = atomic_exchange_explicit(&slot->ctx, NULL, memory_order_acquire);
		if (ctx)
			return ctx;
	}
	return copy_context(xts->direct, pool->template_context);
}

static void return_context(struct xts_key *xts, bool encrypt, unit_context *ctx)
{
	struct xts_context_pool *pool = &xts->pool[encrypt];
	unsigned first = thread_slot();

	for (unsigned n = 0; n < XTS_POOL_SIZE; n++) {
		struct pool_slot *slot = &pool->slots[(first + n) % XTS_POOL_SIZE];
		unit_context *empty = NULL;

		if (atomic_load_explicit(&slot->ctx, memory_order_relaxed))
			continue;
		if (atomic_compare_exchange_strong_explicit(&slot->ctx, &empty, ctx,
							    memory_order_release,
							    memory_order_relaxed))
			return;
	}
	unit_context_free(xts->direct, ctx);
}

static inline void tweak_for_unit(uint8_t tweak[16], uint64_t unit_number)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Two stores instead of a byte loop (58 instructions per unit at -O2 with GCC 12). */
	memcpy(tweak, &unit_number, 8);
#else
	for (int i = 0; i < 8; i++)
		tweak[i] = (uint8_t)(unit_number >> (8 * i));
#endif
	memset(tweak + 8, 0, 8);
}

/*
 * One data unit. Only the tweak changes between units: with no key, the init call keeps the
 * key schedules and just loads the new IV (the provider copies 16 bytes; EVP adds its
 * parameter queries on top, which is why the direct path exists).
 */
static inline int run_unit(bool direct, unit_context *ctx, bool encrypt, uint64_t unit_number,
			   const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t tweak[16];

	tweak_for_unit(tweak, unit_number);
	if (direct) {
		size_t out_len = 0;
		int ok = encrypt ? xts_direct.encrypt_init(ctx, NULL, 0, tweak, sizeof(tweak), NULL)
				 : xts_direct.decrypt_init(ctx, NULL, 0, tweak, sizeof(tweak), NULL);

		if (ok != 1 || xts_direct.update(ctx, out, &out_len, len, in, len) != 1 ||
		    out_len != len)
			return -EIO;
		return 0;
	} else {
		int out_len;

		if (EVP_CipherInit_ex2(ctx, NULL, NULL, tweak, encrypt, NULL) != 1)
			return -EIO;
		if (EVP_CipherUpdate(ctx, out, &out_len, in, (int)len) != 1 ||
		    (size_t)out_len != len)
			return -EIO;
		return 0;
	}
}

static int xts_run_units(struct xts_key *xts, bool encrypt, uint64_t first_unit, size_t unit_size,
			 const uint8_t *in, uint8_t *out, size_t len)
{
	unit_context *ctx;
	int ret = 0;

	if (unit_size < XTS_MIN_UNIT || unit_size > (1u << 24) || len % unit_size != 0)
		return -EINVAL;
	ctx = borrow_context(xts, encrypt);
	if (!ctx)
		return -ENOMEM;
	for (size_t done = 0; done < len && ret == 0; done += unit_size)
		ret = run_unit(xts->direct, ctx, encrypt, first_unit++, in + done, out + done,
			       unit_size);
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
