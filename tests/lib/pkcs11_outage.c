/*
 * A PKCS#11 module for tests only (never installed): it forwards every call to a real module
 * (SoftHSM2; $TDEFS_PKCS11_TARGET, loaded with dlopen, which is fine in test code) and plays an
 * HSM that went away while the file $TDEFS_PKCS11_OUTAGE_FILE exists: every call that touches
 * the token then fails with CKR_DEVICE_REMOVED, and the sessions opened through it are closed
 * in the real module at the first such call, as a token pulled out loses them. When the file
 * is gone, calls are forwarded again and a client has to open sessions and log in anew.
 * test_hsm_outage.sh mounts on it to check -o hsm_heartbeat.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MAX_SLOTS 8

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST proxy;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_SLOT_ID slots[MAX_SLOTS];
static size_t slot_count;
static bool sessions_dropped;

/* In an outage: the first call drops the sessions the real module has for us. */
static bool out(void)
{
	const char *file = getenv("TDEFS_PKCS11_OUTAGE_FILE");
	bool outage = file && access(file, F_OK) == 0;

	pthread_mutex_lock(&lock);
	if (outage && !sessions_dropped) {
		for (size_t i = 0; i < slot_count; i++)
			real->C_CloseAllSessions(slots[i]);
		sessions_dropped = true;
	} else if (!outage) {
		sessions_dropped = false;
	}
	pthread_mutex_unlock(&lock);
	return outage;
}

static void remember_slot(CK_SLOT_ID slot)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < slot_count; i++)
		if (slots[i] == slot)
			goto done;
	if (slot_count < MAX_SLOTS)
		slots[slot_count++] = slot;
done:
	pthread_mutex_unlock(&lock);
}

#define FORWARD(name, params, ...)                                  \
	static CK_RV proxy_##name params                            \
	{                                                           \
		return out() ? CKR_DEVICE_REMOVED : real->name(__VA_ARGS__); \
	}

FORWARD(C_GetSlotList, (CK_BBOOL present, CK_SLOT_ID *list, CK_ULONG *count), present, list,
	count)
FORWARD(C_GetSlotInfo, (CK_SLOT_ID slot, CK_SLOT_INFO *info), slot, info)
FORWARD(C_GetTokenInfo, (CK_SLOT_ID slot, CK_TOKEN_INFO *info), slot, info)
FORWARD(C_GetMechanismList, (CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count), slot,
	list, count)
FORWARD(C_GetMechanismInfo, (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info),
	slot, type, info)
FORWARD(C_CloseSession, (CK_SESSION_HANDLE session), session)
FORWARD(C_CloseAllSessions, (CK_SLOT_ID slot), slot)
FORWARD(C_GetSessionInfo, (CK_SESSION_HANDLE session, CK_SESSION_INFO *info), session, info)
FORWARD(C_Login, (CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG len),
	session, user, pin, len)
FORWARD(C_Logout, (CK_SESSION_HANDLE session), session)
FORWARD(C_GetAttributeValue, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
			      CK_ATTRIBUTE *template, CK_ULONG count), session, object, template,
	count)
FORWARD(C_FindObjectsInit, (CK_SESSION_HANDLE session, CK_ATTRIBUTE *template, CK_ULONG count),
	session, template, count)
FORWARD(C_FindObjects, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *found, CK_ULONG max,
			CK_ULONG *count), session, found, max, count)
FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE session), session)
FORWARD(C_EncryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),
	session, mechanism, key)
FORWARD(C_Encrypt, (CK_SESSION_HANDLE session, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out_data,
		    CK_ULONG *out_len), session, in, in_len, out_data, out_len)
FORWARD(C_DecryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),
	session, mechanism, key)
FORWARD(C_Decrypt, (CK_SESSION_HANDLE session, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out_data,
		    CK_ULONG *out_len), session, in, in_len, out_data, out_len)
FORWARD(C_GenerateKey, (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			CK_ATTRIBUTE *template, CK_ULONG count, CK_OBJECT_HANDLE *key),
	session, mechanism, template, count, key)
FORWARD(C_DestroyObject, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object), session, object)

static CK_RV proxy_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *application,
				 CK_NOTIFY notify, CK_SESSION_HANDLE *session)
{
	CK_RV rv;

	if (out())
		return CKR_DEVICE_REMOVED;
	rv = real->C_OpenSession(slot, flags, application, notify, session);
	if (rv == CKR_OK)
		remember_slot(slot);
	return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
	const char *target = getenv("TDEFS_PKCS11_TARGET");
	CK_RV (*get)(CK_FUNCTION_LIST **);
	void *library, *symbol;

	if (!list)
		return CKR_ARGUMENTS_BAD;
	if (!real) {
		library = dlopen(target ? target : "/usr/lib/softhsm/libsofthsm2.so",
				 RTLD_NOW | RTLD_LOCAL);
		symbol = library ? dlsym(library, "C_GetFunctionList") : NULL;
		/* POSIX's way from dlsym's object pointer to a function (ISO C has none). */
		if (symbol)
			memcpy(&get, &symbol, sizeof(get));
		if (!symbol || get(&real) != CKR_OK || !real)
			return CKR_GENERAL_ERROR;
		/* Whatever is not wrapped (C_Initialize, C_GetInfo, ...) is the real module's. */
		proxy = *real;
		proxy.C_GetFunctionList = C_GetFunctionList;
#define USE(name) proxy.name = proxy_##name
		USE(C_GetSlotList);
		USE(C_GetSlotInfo);
		USE(C_GetTokenInfo);
		USE(C_GetMechanismList);
		USE(C_GetMechanismInfo);
		USE(C_OpenSession);
		USE(C_CloseSession);
		USE(C_CloseAllSessions);
		USE(C_GetSessionInfo);
		USE(C_Login);
		USE(C_Logout);
		USE(C_GetAttributeValue);
		USE(C_FindObjectsInit);
		USE(C_FindObjects);
		USE(C_FindObjectsFinal);
		USE(C_EncryptInit);
		USE(C_Encrypt);
		USE(C_DecryptInit);
		USE(C_Decrypt);
		USE(C_GenerateKey);
		USE(C_DestroyObject);
#undef USE
	}
	*list = &proxy;
	return CKR_OK;
}
