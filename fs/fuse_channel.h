/*
 * The daemon's own reads and writes on /dev/fuse (fs/fuse_channel.c): they let the mount answer
 * INIT with FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 cannot negotiate, and carry the
 * kill-suid/sgid flags of each request, which libfuse drops, to the handler that runs it; and
 * it drops the cached pages of files whose write-back failed, from a thread of its own.
 */
#ifndef TDEFS_FUSE_CHANNEL_H
#define TDEFS_FUSE_CHANNEL_H

#include "fs/daemon.h"

/* Once mounted, before the loop: the session's I/O goes through fs/fuse_channel.c. 0 or -errno. */
int fuse_channel_attach(struct fuse_session *session);
/* After the loop, before the session is destroyed: the invalidation thread stops. */
void fuse_channel_detach(void);

/*
 * From a worker whose write-back WRITE failed: the kernel drops the inode's cached pages and
 * attributes from another thread, as soon as that WRITE is answered (a worker must not wait
 * for it).
 */
void fuse_channel_invalidate_later(fuse_ino_t ino);

/*
 * True while the calling worker thread runs a WRITE, SETATTR, OPEN or CREATE that the kernel
 * (with FUSE_HANDLE_KILLPRIV_V2 in force) flagged "kill suid/sgid" (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID):
 * the caller has no CAP_FSETID, so the file loses its set-id bits as ext4 would drop them.
 */
bool fuse_channel_request_kills_suidgid(void);

#endif
