/*
 * control_protocol: what the daemon's control channel (fs/control.c) and its client, tderekey
 * (tools/tderekey/control_client.c), agree on: where the socket lives, its name, the line limit
 * and the requests. It is no part of the disk format, and neither side needs fs/format.h for it.
 */
#ifndef TDEFS_CONTROL_PROTOCOL_H
#define TDEFS_CONTROL_PROTOCOL_H

/*
 * Each mounted daemon listens on a Unix socket file named after the device number of its mount,
 * so a tool that is given any path on the mount finds it from stat(2) and the mount table. The
 * directory is writable only by the mount's owner (FUSE's user_id= in the mount table): root's
 * mounts use /run/tdefs, another user's /run/user/UID/tdefs (or $XDG_RUNTIME_DIR/tdefs); the
 * socket is 0600. Only root and the user who mounted may use it (SO_PEERCRED, both ways: a tool
 * talks only to a server run by root or the mount's owner). On connecting the daemon sends
 * "device MAJOR:MINOR" and "mount_point PATH" of the mount it serves (the tool compares the
 * device with the path's before it sends anything). Requests are one line; replies are
 * "key value" lines ending with "ok" or "error MESSAGE".
 *   status                       backing, wallet, active key, both jobs' state and counters
 *   reload                       re-read the wallet now
 *   metrics                      the Prometheus text exposition (fs/metrics.c), then "ok"
 *   rewrap-start RATE            rewrap every header under the active key (RATE headers/s)
 *   rewrap-stop                  stop the rewrap (starting it again resumes: done files skip)
 *   data-start RATE [PATH]       re-encrypt every file (below PATH, relative to the backing
 *                                directory) under a fresh DEK (RATE bytes/s)
 *   data-resume-interrupted RATE finish only the files whose data rekey was interrupted
 *   data-pause, data-resume      hold and continue the data rekey between chunks
 *   data-stop                    stop it; an interrupted file finishes at the next
 *                                data-resume-interrupted (run at every mount) or data-start
 *   keystore-close [force]       wipe the master keys (fs/keystore_close.c); refused while
 *                                files are open or a job runs, unless force
 *   keystore-open [password]     read the wallet again; with "password" the password follows
 *                                as the next line, read by the keystore's password reader
 * RATE 0 means no limit. A failure a tool must tell apart comes with "exit_code N" (the code
 * of tools/cli/cli.h) before its "error" line.
 */
#define CONTROL_DIRECTORY_ROOT "/run/tdefs"
#define CONTROL_DIRECTORY_USER "/run/user/%u/tdefs"
#define CONTROL_SOCKET_FORMAT "control-%u:%u.sock"
#define CONTROL_LINE_MAX 4096
/* The longest reply, greeting included (the metrics are the longest). */
#define CONTROL_REPLY_MAX 32768

#endif
