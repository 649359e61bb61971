/*
 * tdefs --rebind: bind a backing directory to another wallet (a copy whose keys were moved with
 * tdekey export and import), only once the new wallet is proved to open every header in it.
 */
#ifndef TDEFS_FS_REBIND_H
#define TDEFS_FS_REBIND_H

#include "keystore/keystore.h"

/*
 * root_fd: the backing root, opened and locked by the caller (the mount's flock: refused while
 * mounted). backing names it in messages, resolved is its absolute path (for the atomic rewrite
 * of .tdefs.conf). container: the container to record, or NULL to keep the recorded one.
 * Returns 0 after rewriting .tdefs.conf, 1 after saying why nothing changed.
 */
int rebind_backing(int root_fd, const char *backing, const char *resolved, struct keyring *ring,
		   const char *wallet, const char *container);

#endif
