/*
 * tdekey tls: the TLS wallet that a key server client presents, in the manner of
 * Oracle's orapki wallet: create, add a self-signed certificate or request one, add the signed
 * certificate, trust a CA, display, export the certificate, remove. One command with
 * subcommands; each subcommand names the options it takes below, and a misplaced one is a usage
 * error. The wallet logic is keystore/tls_wallet.h, the X.509 and PKCS#12 work crypto/tls.h.
 */
#include "tools/tdekey/tdekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/tls.h"
#include "keystore/tls_wallet.h"
#include "util/util.h"

#define CERT_FILE_MAX (1024 * 1024)
#define DEFAULT_DAYS 365

enum tls_option {
	T_PASSWORD = 1u << 0,
	T_AUTO_LOGIN = 1u << 1,
	T_DN = 1u << 2,
	T_DAYS = 1u << 3,
	T_KEY_TYPE = 1u << 4,
	T_CERT = 1u << 5,
	T_TRUSTED = 1u << 6,
	T_USER_CERT = 1u << 7,
	T_JSON = 1u << 8,
};

struct subcommand {
	const char *name;
	unsigned options; /* enum tls_option */
	int (*run)(const struct options *options);
};

static int usage(const char *subcommand, const char *message)
{
	fprintf(stderr, "tdekey tls %s: %s\nTry 'tdekey tls --help'.\n", subcommand, message);
	return EXIT_USAGE;
}

static int check_options(const struct subcommand *sub, const struct options *o)
{
	const struct {
		bool given;
		unsigned bit;
		const char *name;
	} all[] = {
		{ o->password_given, T_PASSWORD, "a password source" },
		{ o->auto_login, T_AUTO_LOGIN, "--auto-login" },
		{ o->tls_dn != NULL, T_DN, "--dn" },
		{ o->tls_days != 0, T_DAYS, "--days" },
		{ o->tls_key_type != NULL, T_KEY_TYPE, "--key-type" },
		{ o->tls_cert != NULL, T_CERT, "--cert" },
		{ o->tls_trusted != NULL, T_TRUSTED, "--trusted" },
		{ o->tls_user_cert, T_USER_CERT, "--user-cert" },
		{ o->json, T_JSON, "--json" },
	};
	char message[96];

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if (all[i].given && !(sub->options & all[i].bit)) {
			snprintf(message, sizeof(message), "this subcommand takes no %s",
				 all[i].name);
			return usage(sub->name, message);
		}
	}
	return 0;
}

static int open_wallet(const struct options *options, bool for_change, struct tls_wallet **wallet)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	int ret = tls_wallet_open(options->wallet, for_change, &options->password, wallet, error);

	return ret < 0 ? report_failure(ret, error) : EXIT_OK;
}

static int commit(struct tls_wallet *wallet, const char *what)
{
	char error[KEYSTORE_ERROR_SIZE] = "", backup[PATH_MAX];
	int ret = tls_wallet_commit(wallet, backup, error);

	if (ret < 0)
		return report_failure(ret, error);
	fprintf(stderr, "%s: TLS wallet %s%s written, backup %s\n", what, tls_wallet_path(wallet),
		tls_wallet_has_autologin(wallet) ? " and its auto-login copy" : "", backup);
	return EXIT_OK;
}

static int read_certs(const char *path, struct tls_cert ***certs, size_t *count)
{
	char why[TLS_WHY_SIZE] = "";
	uint8_t *data = NULL;
	size_t len = 0;
	int ret = read_small_file(path, CERT_FILE_MAX, &data, &len);

	if (ret < 0) {
		fprintf(stderr, "tdekey: cannot read certificate file %s: %s\n", path,
			keystore_error_message(ret));
		return exit_code_for(ret);
	}
	ret = tls_certs_parse(data, len, certs, count, why);
	free(data);
	if (ret < 0) {
		fprintf(stderr, "tdekey: --cert %s: %s\n", path, why);
		return ret == -EINVAL ? EXIT_USAGE : EXIT_ERROR;
	}
	return EXIT_OK;
}

static int run_create(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct secret *password = NULL;
	int ret = 0;

	/* As tdekey create: --auto-login without a password source makes a password-less one. */
	if (!options->auto_login || options->password_given)
		ret = password_read(&options->password, "New TLS wallet password: ", true,
				    &password, error);
	if (ret == 0)
		ret = tls_wallet_create(options->wallet, password, options->auto_login, error);
	secret_free(password);
	if (ret < 0)
		return report_failure(ret, error);
	printf("created TLS wallet %s (%s%s)\n", options->wallet,
	       password || !options->auto_login ? TLS_WALLET_FILE : "",
	       options->auto_login ? (password ? ", " TLS_WALLET_AUTOLOGIN_FILE
					       : TLS_WALLET_AUTOLOGIN_FILE)
				   : "");
	return EXIT_OK;
}

static int check_dn(const char *dn)
{
	char why[TLS_WHY_SIZE] = "";

	if (!dn)
		return usage("add-self-signed/request", "--dn DN is required");
	if (tls_dn_check(dn, why) < 0) {
		fprintf(stderr, "tdekey: --dn '%.200s': %s\n", dn, why);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int new_key(const struct options *options, struct tls_key **key)
{
	enum tls_key_type type = TLS_KEY_EC_P256;
	int ret;

	if (options->tls_key_type)
		(void)tls_key_type_parse(options->tls_key_type, &type); /* options.c checked it */
	ret = tls_key_generate(type, key);
	if (ret < 0)
		fprintf(stderr, "tdekey: cannot generate a %s key: %s\n",
			options->tls_key_type ? options->tls_key_type : "ec-p256",
			keystore_error_message(ret));
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}

static int run_add_self_signed(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", why[TLS_WHY_SIZE] = "";
	struct tls_wallet *wallet = NULL;
	struct tls_cert *cert = NULL;
	struct tls_key *key = NULL;
	int ret;

	ret = check_dn(options->tls_dn);
	if (ret)
		return ret;
	ret = open_wallet(options, true, &wallet);
	if (ret)
		return ret;
	ret = new_key(options, &key);
	if (ret)
		goto out;
	if (tls_cert_self_signed(key, options->tls_dn,
				 options->tls_days ? options->tls_days : DEFAULT_DAYS, &cert,
				 why) < 0) {
		fprintf(stderr, "tdekey: --dn '%.200s': %s\n", options->tls_dn, why);
		ret = EXIT_ERROR;
		goto out;
	}
	ret = tls_wallet_set_key(wallet, key, cert, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	key = NULL;
	cert = NULL;
	ret = commit(wallet, "added a self-signed certificate");
out:
	tls_key_free(key);
	tls_cert_free(cert);
	tls_wallet_close(wallet);
	return ret;
}

static int run_request(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "", why[TLS_WHY_SIZE] = "";
	struct tls_wallet *wallet = NULL;
	struct tls_key *key = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	int ret;

	ret = check_dn(options->tls_dn);
	if (ret)
		return ret;
	ret = open_wallet(options, true, &wallet);
	if (ret)
		return ret;
	ret = new_key(options, &key);
	if (ret)
		goto out;
	if (tls_csr_pem(key, options->tls_dn, &pem, &pem_len, why) < 0) {
		fprintf(stderr, "tdekey: --dn '%.200s': %s\n", options->tls_dn, why);
		ret = EXIT_ERROR;
		goto out;
	}
	ret = tls_wallet_set_key(wallet, key, NULL, error);
	if (ret < 0) {
		ret = report_failure(ret, error);
		goto out;
	}
	key = NULL;
	/* The key is kept before the request is printed: a request whose key is lost is useless. */
	ret = commit(wallet, "kept a new client key");
	if (ret == EXIT_OK && (fwrite(pem, 1, pem_len, stdout) != pem_len || fflush(stdout) != 0)) {
		fprintf(stderr, "tdekey: cannot write the request to standard output\n");
		ret = EXIT_ERROR;
	}
out:
	free(pem);
	tls_key_free(key);
	tls_wallet_close(wallet);
	return ret;
}

static int run_add_cert(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct tls_wallet *wallet = NULL;
	struct tls_cert **certs = NULL;
	size_t count = 0;
	int ret;

	if (!options->tls_cert)
		return usage("add-cert", "--cert FILE is required");
	ret = read_certs(options->tls_cert, &certs, &count);
	if (ret)
		return ret;
	if (count != 1) {
		fprintf(stderr, "tdekey: --cert %s holds %zu certificates; give the client "
				"certificate alone (trust its CA with tdekey tls trust)\n",
			options->tls_cert, count);
		ret = EXIT_USAGE;
		goto out;
	}
	ret = open_wallet(options, true, &wallet);
	if (ret)
		goto out;
	ret = tls_wallet_set_cert(wallet, certs[0], options->tls_cert, error);
	ret = ret < 0 ? report_failure(ret, error) : commit(wallet, "added the client certificate");
out:
	tls_certs_free(certs, count);
	tls_wallet_close(wallet);
	return ret;
}

static int run_trust(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct tls_wallet *wallet = NULL;
	struct tls_cert **certs = NULL;
	size_t count = 0;
	int ret;

	if (!options->tls_cert)
		return usage("trust", "--cert FILE is required");
	ret = read_certs(options->tls_cert, &certs, &count);
	if (ret)
		return ret;
	ret = open_wallet(options, true, &wallet);
	if (ret)
		goto out;
	for (size_t i = 0; i < count && ret == 0; i++) {
		int r = tls_wallet_trust(wallet, certs[i], error);

		if (r < 0)
			ret = report_failure(r, error);
	}
	if (ret == 0)
		ret = commit(wallet, "trusted the certificates");
out:
	tls_certs_free(certs, count);
	tls_wallet_close(wallet);
	return ret;
}

static const char *validity(const struct tls_cert_info *info, int64_t now)
{
	if (now < info->not_before)
		return "NOT_YET_VALID";
	return now > info->not_after ? "EXPIRED" : "VALID";
}

static void warn_validity(const char *entry, const struct tls_cert_info *info, int64_t now)
{
	char when[32];

	if (now > info->not_after) {
		format_time(info->not_after, when);
		fprintf(stderr, "tdekey: warning: the %s certificate %s expired at %s\n", entry,
			info->subject, when);
	} else if (now < info->not_before) {
		format_time(info->not_before, when);
		fprintf(stderr, "tdekey: warning: the %s certificate %s is valid only from %s\n",
			entry, info->subject, when);
	}
}

static void json_cert(struct json *json, const char *key, const struct tls_cert_info *info,
		      int64_t now)
{
	json_object_begin(json, key);
	json_string(json, "subject", info->subject);
	json_string(json, "issuer", info->issuer);
	json_string(json, "serial", info->serial);
	json_time(json, "not_before", info->not_before);
	json_time(json, "not_after", info->not_after);
	json_string(json, "fingerprint_sha256", info->fingerprint);
	json_string(json, "key_type", info->key_type);
	json_bool(json, "self_signed", info->self_signed);
	json_string(json, "status", validity(info, now));
	json_object_end(json);
}

static int run_display(const struct options *options)
{
	static const char *const headers[] = { "ENTRY",	    "SUBJECT",	 "ISSUER",
						"SERIAL",    "NOT_AFTER", "STATUS",
						"KEY",	     "FINGERPRINT_SHA256" };
	const struct tls_bundle *content;
	struct tls_cert_info user = { 0 }, *trusted = NULL;
	struct tls_wallet *wallet = NULL;
	int64_t now = (int64_t)time(NULL);
	char key_type[32];
	struct table table;
	struct json json;
	int ret;

	ret = open_wallet(options, false, &wallet);
	if (ret)
		return ret;
	content = tls_wallet_content(wallet);
	tls_key_describe(content->key, key_type);
	trusted = calloc(content->trusted_count + 1, sizeof(*trusted));
	if (!trusted || (content->cert && tls_cert_info(content->cert, &user) < 0)) {
		ret = report_failure(-ENOMEM, "cannot describe the certificates");
		goto out;
	}
	for (size_t i = 0; i < content->trusted_count; i++)
		if (tls_cert_info(content->trusted[i], &trusted[i]) < 0) {
			ret = report_failure(-EIO, "cannot describe a trusted certificate");
			goto out;
		}
	if (content->cert)
		warn_validity("client", &user, now);
	for (size_t i = 0; i < content->trusted_count; i++)
		warn_validity("trusted", &trusted[i], now);
	if (options->json) {
		json_begin(&json, stdout);
		json_string(&json, "wallet", options->wallet);
		json_string(&json, "file", tls_wallet_path(wallet));
		json_bool(&json, "auto_login", tls_wallet_has_autologin(wallet));
		json_string(&json, "client_key", content->key ? key_type : NULL);
		if (content->cert)
			json_cert(&json, "client_certificate", &user, now);
		else
			json_string(&json, "client_certificate", NULL);
		json_array_begin(&json, "trusted");
		for (size_t i = 0; i < content->trusted_count; i++)
			json_cert(&json, NULL, &trusted[i], now);
		json_array_end(&json);
		json_end(&json);
		goto out;
	}
	printf("TLS wallet %s (read from %s%s)\n", options->wallet, tls_wallet_path(wallet),
	       tls_wallet_has_autologin(wallet) ? "; auto-login copy kept" : "");
	if (content->key && !content->cert)
		printf("client key: %s, no certificate yet (tdekey tls add-cert)\n", key_type);
	table_init(&table, ARRAY_SIZE(headers), headers);
	for (size_t i = 0; i <= content->trusted_count; i++) {
		const struct tls_cert_info *info = i == 0 ? &user : &trusted[i - 1];
		char not_after[32];

		if (i == 0 && !content->cert)
			continue;
		format_time(info->not_after, not_after);
		const char *cells[] = { i == 0 ? "USER" : "TRUSTED", info->subject, info->issuer,
					info->serial, not_after, validity(info, now),
					info->key_type, info->fingerprint };
		if (table_add_row(&table, cells) < 0) {
			ret = report_failure(-ENOMEM, "cannot build the table");
			break;
		}
	}
	if (ret == 0) {
		if (table.rows)
			table_print(&table, stdout);
		else
			printf("no certificates\n");
	}
	table_free(&table);
out:
	free(trusted);
	tls_wallet_close(wallet);
	return ret;
}

static int run_export_cert(const struct options *options)
{
	struct tls_wallet *wallet = NULL;
	const struct tls_bundle *content;
	char *pem = NULL;
	size_t len = 0;
	int ret;

	ret = open_wallet(options, false, &wallet);
	if (ret)
		return ret;
	content = tls_wallet_content(wallet);
	if (!content->cert) {
		fprintf(stderr, "tdekey: TLS wallet %s holds no client certificate\n",
			options->wallet);
		ret = EXIT_NO_SUCH_KEY;
	} else if (tls_cert_pem(content->cert, &pem, &len) < 0 ||
		   fwrite(pem, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "tdekey: cannot write the certificate to standard output\n");
		ret = EXIT_ERROR;
	}
	free(pem);
	tls_wallet_close(wallet);
	return ret;
}

static int run_remove(const struct options *options)
{
	char error[KEYSTORE_ERROR_SIZE] = "";
	struct tls_wallet *wallet = NULL;
	size_t removed = 0;
	int ret;

	if (!options->tls_trusted == !options->tls_user_cert)
		return usage("remove", "give one of --trusted SUBJECT|FINGERPRINT and --user-cert");
	ret = open_wallet(options, true, &wallet);
	if (ret)
		return ret;
	if (options->tls_user_cert)
		ret = tls_wallet_remove_identity(wallet, error);
	else
		ret = tls_wallet_remove_trusted(wallet, options->tls_trusted, &removed, error);
	if (ret < 0)
		ret = report_failure(ret, error);
	else
		ret = commit(wallet, options->tls_user_cert ? "removed the client certificate and key"
							    : "removed the trusted certificate");
	tls_wallet_close(wallet);
	return ret;
}

static const struct subcommand subcommands[] = {
	{ "create", T_PASSWORD | T_AUTO_LOGIN, run_create },
	{ "add-self-signed", T_PASSWORD | T_DN | T_DAYS | T_KEY_TYPE, run_add_self_signed },
	{ "request", T_PASSWORD | T_DN | T_KEY_TYPE, run_request },
	{ "add-cert", T_PASSWORD | T_CERT, run_add_cert },
	{ "trust", T_PASSWORD | T_CERT, run_trust },
	{ "display", T_PASSWORD | T_JSON, run_display },
	{ "export-cert", T_PASSWORD, run_export_cert },
	{ "remove", T_PASSWORD | T_TRUSTED | T_USER_CERT, run_remove },
};

static int run(const struct options *options)
{
	const char *name = options->argv[0];

	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
		int ret;

		if (strcmp(subcommands[i].name, name) != 0)
			continue;
		ret = check_options(&subcommands[i], options);
		return ret ? ret : subcommands[i].run(options);
	}
	fprintf(stderr, "tdekey tls: no subcommand '%s'; tdekey tls --help lists them\n", name);
	return EXIT_USAGE;
}

const struct command command_tls = {
	.name = "tls",
	.summary = "the TLS wallet (PKCS#12) for a key server: certificates and keys",
	.synopsis =
		"tdekey tls create --wallet DIR [--auto-login] [PASSWORD SOURCE]\n"
		"       tdekey tls add-self-signed --wallet DIR --dn DN [--days N]\n"
		"                  [--key-type ec-p256|rsa-3072] [PASSWORD SOURCE]\n"
		"       tdekey tls request --wallet DIR --dn DN [--key-type ec-p256|rsa-3072] > CSR\n"
		"       tdekey tls add-cert --wallet DIR --cert FILE\n"
		"       tdekey tls trust --wallet DIR --cert FILE\n"
		"       tdekey tls display --wallet DIR [--json]\n"
		"       tdekey tls export-cert --wallet DIR > CERT\n"
		"       tdekey tls remove --wallet DIR (--trusted SUBJECT|FINGERPRINT | --user-cert)\n"
		"       PASSWORD SOURCE: --password-file FILE | --password-fd N | --password-prompt",
	.description =
		"DESCRIPTION\n"
		"       A TLS wallet holds the client key and certificate that tdefs presents to a\n"
		"       key server, and the CA certificates it trusts, like a wallet made with\n"
		"       Oracle's orapki. It is a standard PKCS#12 file, DIR/tls.p12, under its\n"
		"       password (PBKDF2-HMAC-SHA256, AES-256-CBC, SHA-256 MAC), which openssl\n"
		"       pkcs12 and keytool read; with --auto-login, DIR/tls-autologin.p12 holds\n"
		"       the same content under the empty password and opens without one: like\n"
		"       autologin.wallet it is protected by its mode 0600 alone. Every change\n"
		"       rewrites both files after a backup of each in DIR/backup.\n"
		"\n"
		"       Subcommands: create (an empty wallet); add-self-signed (a new key and a\n"
		"       self-signed certificate); request (a new key, kept in the wallet, and a\n"
		"       PKCS#10 request in PEM on standard output); add-cert (the certificate a CA\n"
		"       signed for the wallet's key: refused when it is another key's); trust (each\n"
		"       certificate of a PEM file becomes a trusted CA); display (subject, issuer,\n"
		"       serial, validity, key and SHA-256 fingerprint; a warning for an expired\n"
		"       one); export-cert (the client certificate in PEM on standard output);\n"
		"       remove (a trusted certificate, or the client certificate with its key).\n"
		"\n"
		"       Changes need the password when tls.p12 exists; display and export-cert read\n"
		"       the auto-login file when there is one and no password source is named.\n"
		"\n"
		"OPTIONS\n"
		"       -w, --wallet DIR\n"
		"              The TLS wallet directory (created 0700 by create).\n"
		"\n"
		"       --auto-login\n"
		"              create: also write tls-autologin.p12; without a password source, only\n"
		"              that file (a wallet with no password).\n"
		"\n"
		"       --dn DN\n"
		"              The subject, as \"CN=db17.example,O=Example,C=DE\" (',' inside a value\n"
		"              as '\\,'); every attribute type must be one OpenSSL knows.\n"
		"\n"
		"       --days N\n"
		"              add-self-signed: validity from now, 1 to 36500 days (default 365).\n"
		"\n"
		"       --key-type ec-p256|rsa-3072\n"
		"              The new key's type (default ec-p256).\n"
		"\n"
		"       --cert FILE\n"
		"              add-cert, trust: a PEM (or DER) certificate file.\n"
		"\n"
		"       --trusted SUBJECT|FINGERPRINT\n"
		"              remove: the trusted certificates with this subject (as display shows\n"
		"              it) or SHA-256 fingerprint (colons optional).\n"
		"\n"
		"       --user-cert\n"
		"              remove: the client certificate and its key.\n"
		"\n"
		"       --password-file FILE, --password-fd N, --password-prompt\n"
		"              Where the TLS wallet password comes from (PASSWORD SOURCES).\n"
		"\n"
		"       --json\n"
		"              display: print wallet, file, auto_login, client_key,\n"
		"              client_certificate and trusted as JSON.\n"
		"\n"
		"EXAMPLES\n"
		"       tdekey tls create --wallet /etc/tdefs/tls --auto-login --password-prompt\n"
		"       tdekey tls request --wallet /etc/tdefs/tls --dn CN=db17.example > db17.csr\n"
		"       tdekey tls add-cert --wallet /etc/tdefs/tls --cert db17.pem\n"
		"       tdekey tls trust --wallet /etc/tdefs/tls --cert kms-ca.pem\n"
		"       openssl pkcs12 -in /etc/tdefs/tls/tls.p12 -info -nokeys\n"
		"\n",
	.min_arguments = 1,
	.max_arguments = 1,
	.run = run,
};
