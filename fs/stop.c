/*
 * Stopping on a signal without pulling the mount from under open files. libfuse's own handlers
 * end the session loop on SIGTERM, SIGINT and SIGHUP, and the unmount that follows is lazy: a
 * database with files open then gets ENOTCONN ("Transport endpoint is not connected") on its
 * next I/O, and PostgreSQL PANICs. systemd sends SIGTERM when an ExecStop unmount failed.
 *
 * Here one thread takes those signals (sigwait; every other thread blocks them) and asks for a
 * normal unmount, which the kernel refuses while files are open: fusermount3 -u, which checks
 * the mount point as carefully as a setuid tool must (the daemon is root, and the mount point's
 * parent may belong to someone else). When the unmount succeeds the kernel ends the session
 * and the daemon exits as after any unmount. While the mount is busy the daemon logs once why,
 * keeps serving, and tries again every second for stop_timeout seconds; then it logs that it
 * gave up and serves on until the next signal. Nothing is ever detached.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#ifndef FUSERMOUNT_PROGRAM
#define FUSERMOUNT_PROGRAM "/usr/bin/fusermount3"
#endif

/* SIGUSR2 only ends the thread (stop_handler_end): the loop is over. */
#define STOP_SIGNAL_END SIGUSR2

extern char **environ;

static pthread_t stop_thread;
static bool stop_thread_running;
static char stop_mount_point[4096];
static unsigned stop_timeout_seconds;

static void stop_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, STOP_SIGNAL_END);
}

/* A normal (not lazy) unmount: 0 done, 1 refused (busy), -errno when it cannot be tried. */
static int try_unmount(void)
{
	char *const argv[] = { "fusermount3", "-u", "-q", stop_mount_point, NULL };
	posix_spawn_file_actions_t actions;
	int status, ret;
	pid_t pid;

	posix_spawn_file_actions_init(&actions);
	/* Its "Device or resource busy" would only repeat what the log line below says. */
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	ret = posix_spawn(&pid, FUSERMOUNT_PROGRAM, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (ret != 0)
		return -ret;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static const char *signal_word(int number)
{
	return number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : "SIGHUP";
}

static void *stop_loop(void *unused)
{
	sigset_t set;

	(void)unused;
	stop_signal_set(&set);
	for (;;) {
		int number, ret;

		if (sigwait(&set, &number) != 0 || number == STOP_SIGNAL_END)
			return NULL;
		log_info("%s: unmounting %s", signal_word(number), stop_mount_point);
		for (unsigned waited = 0;; waited++) {
			struct timespec second = { 1, 0 };
			siginfo_t info;

			ret = try_unmount();
			if (ret == 0)
				break; /* the kernel ends the session: the loop returns */
			if (ret < 0) {
				log_error("cannot run %s to unmount %s: %s; still serving",
					  FUSERMOUNT_PROGRAM, stop_mount_point, strerror(-ret));
				break;
			}
			if (waited == 0)
				log_warning("%s: %s is busy (files are open); still serving it and "
					    "trying again for %u s: stop the database first (a forced "
					    "detach would fail its I/O with 'Transport endpoint is not "
					    "connected')",
					    signal_word(number), stop_mount_point, stop_timeout_seconds);
			if (waited >= stop_timeout_seconds) {
				log_warning("%s: %s still busy after %u s; not unmounting, still "
					    "serving (send the signal again, or unmount once the "
					    "database has stopped)",
					    signal_word(number), stop_mount_point, stop_timeout_seconds);
				break;
			}
			/* Wait a second, or less if told to end. */
			if (sigtimedwait(&set, &info, &second) == STOP_SIGNAL_END)
				return NULL;
		}
	}
}

int stop_handler_start(const char *mount_point, unsigned timeout_seconds)
{
	sigset_t set;
	int ret;

	snprintf(stop_mount_point, sizeof(stop_mount_point), "%s", mount_point);
	stop_timeout_seconds = timeout_seconds;
	/* Blocked here, in the thread that goes on to start every other one: they inherit it. */
	stop_signal_set(&set);
	ret = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (ret == 0)
		ret = pthread_create(&stop_thread, NULL, stop_loop, NULL);
	if (ret == 0)
		stop_thread_running = true;
	return -ret;
}

void stop_handler_end(void)
{
	if (!stop_thread_running)
		return;
	pthread_kill(stop_thread, STOP_SIGNAL_END);
	pthread_join(stop_thread, NULL);
	stop_thread_running = false;
}
