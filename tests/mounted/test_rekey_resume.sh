#!/usr/bin/env bash
# A data rekey that is stopped, or cut short by an unmount or a SIGKILL of the daemon, goes on
# where it was instead of starting over (docs/REKEY.md, "Progress across files"):
#  1. tderekey stop after some files: the job's record (.tdefs.rekey.job) stays, marked stopped;
#     each file it finished carries the job's ID; the next mount does not start it by itself,
#     and its pass over the files the stop left with two keys finishes them as that job's;
#     tderekey data of the same path rekeys exactly the files left (its own counters: skipped =
#     the files finished before, changed = the rest) and leaves the headers of the files
#     finished before untouched, byte for byte; then the record is gone.
#  2. An unmount in the middle, then a SIGKILL in the middle: the next mount goes on with the
#     same job by itself, skipping the files that carry its ID, and finishes it.
#     tderekey status names the unfinished job (data_unfinished) and whether it was stopped.
#  3. Every file reads back as its reference throughout. A record others could write and a
#     damaged one are refused with one log line (a new job or the usual pass runs instead);
#     the record and the marks cannot be seen or set through the mount, by root or uid 65534.
. "$(dirname "$0")/lib.sh"
is_plain && skip "needs the real mount"
need_cmd getfattr attr
need_cmd setfattr attr
tderekey=$TDEFS_BUILD/tools/tderekey/tderekey
need_build "$tderekey"
tdefs_setup
nfiles=14
reference=$TDEFS_WORK/reference
mkdir -p "$reference" "$TDEFS_MNT/db"
for i in $(seq 1 "$nfiles"); do
	head -c $((786432 + i * 4099)) /dev/urandom >"$reference/f$i"
	cp "$reference/f$i" "$TDEFS_MNT/db/f$i"
done
sync

json_value() { # KEY
	"$tderekey" status "$TDEFS_MNT" --json | sed -n "s/.*\"$1\": \"\\{0,1\\}\\([a-z0-9]*\\)\"\\{0,1\\}[,}].*/\\1/p" | head -n 1
}
wait_changed() { # N: until the job has rekeyed at least N files
	for _ in $(seq 1 600); do
		(($(json_value data_changed) >= $1)) && return 0
		[[ $(json_value data_state) == running ]] || fail "the data rekey ended before $1 files"
		sleep 0.05
	done
	fail "the data rekey did not reach $1 files"
}
wait_state() { # STATE...
	local state
	for _ in $(seq 1 600); do
		state=$(json_value data_state)
		[[ " $* " == *" $state "* ]] && return 0
		sleep 0.1
	done
	fail "the data rekey is $state, not $*"
}
record=$TDEFS_BACKING/.tdefs.rekey.job
record_id() { sed -n 's/^id //p' "$record"; }
marked_with() { # ID: how many files carry the job's mark with this ID
	local f n=0
	for f in "$TDEFS_BACKING"/db/f*; do
		[[ $(getfattr --absolute-names -e hex -n trusted.tdefs.rekeyed "$f" 2>/dev/null |
			sed -n 's/^trusted.tdefs.rekeyed=//p') == "0x$1" ]] && n=$((n + 1))
	done
	echo "$n"
}
verify() { # WHEN
	local i
	for i in $(seq 1 "$nfiles"); do
		cmp -s "$reference/f$i" "$TDEFS_MNT/db/f$i" || fail "$1: db/f$i does not read back"
	done
}

# ---- 1. a stop on request ---------------------------------------------------------------------
"$tderekey" data "$TDEFS_MNT" --rate 3M --no-wait >/dev/null || fail "tderekey data did not start"
wait_changed 4
"$tderekey" stop "$TDEFS_MNT" >/dev/null || fail "tderekey stop failed"
wait_state stopped
done1=$(json_value data_changed)
[[ -f $record ]] || fail "the stopped data rekey left no record"
grep -qx "stopped 1" "$record" || fail "the record of the stopped job does not say so: $(cat "$record")"
"$tderekey" status "$TDEFS_MNT" --json | grep -q '"data_unfinished": "/", "data_unfinished_stopped": true' ||
	fail "tderekey status does not name the stopped data rekey: $("$tderekey" status "$TDEFS_MNT" --json)"
id1=$(record_id)
marked=$(marked_with "$id1")
((marked == done1)) || fail "$marked files carry the job's mark, but it rekeyed $done1"
verify "after the stop"
# A remount does not take up a job that was stopped on request; its pass over the files left
# with two keys finishes them for that job (they get its mark).
tdefs_remount
grep -q "was stopped before its end" "$(tdefs_daemon_log)" || fail "the mount does not report the stopped data rekey"
[[ $(json_value data_resume_only) == true ]] || fail "the mount took up the stopped data rekey by itself"
wait_state done
finished_by_pass=$(json_value data_changed)
done1=$((done1 + finished_by_pass))
(($(marked_with "$id1") == done1)) || fail "$(marked_with "$id1") files marked after the mount's pass, expected $done1"
for i in $(seq 1 "$nfiles"); do head -c 4096 "$TDEFS_BACKING/db/f$i" >"$TDEFS_WORK/header-$i"; done
"$tderekey" data "$TDEFS_MNT" >"$TDEFS_WORK/data2.out" 2>&1 || fail "the second tderekey data failed: $(cat "$TDEFS_WORK/data2.out")"
changed2=$(json_value data_changed) skipped2=$(json_value data_skipped)
log "stopped with $done1 of $nfiles files done ($finished_by_pass of them finished by the mount's pass); the next tderekey data rekeyed $changed2 and skipped $skipped2"
((skipped2 == done1 && changed2 == nfiles - done1)) ||
	fail "the resumed rekey changed $changed2 and skipped $skipped2 files; expected $((nfiles - done1)) and $done1"
grep -q "goes on where it was stopped" "$(tdefs_daemon_log)" || fail "the daemon log does not say the job went on"
untouched=0
for i in $(seq 1 "$nfiles"); do
	if cmp -s "$TDEFS_WORK/header-$i" <(head -c 4096 "$TDEFS_BACKING/db/f$i"); then
		untouched=$((untouched + 1))
	fi
done
((untouched == done1)) || fail "$untouched headers unchanged by the resumed job, but $done1 files were done before it"
[[ ! -e $record ]] || fail "the finished data rekey left its record"
"$tderekey" status "$TDEFS_MNT" --json | grep -q data_unfinished && fail "tderekey status names a finished data rekey"
(($(marked_with "$id1") == nfiles)) || fail "not every file carries the finished job's mark"
verify "after the resumed rekey"

# ---- 2. an unmount, then a SIGKILL, in the middle ---------------------------------------------
"$tderekey" data "$TDEFS_MNT" --rate 3M --no-wait >/dev/null || fail "the third tderekey data did not start"
wait_changed 3
id2=$(record_id)
[[ -n $id2 && $id2 != "$id1" ]] || fail "a new data rekey did not get a new ID"
tdefs_umount "$TDEFS_MNT"
grep -qx "stopped 0" "$record" || fail "after an unmount the record does not say the job was running"
marked=$(marked_with "$id2")
((marked >= 3 && marked < nfiles)) || fail "$marked files marked by the unmounted job"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
grep -q "the interrupted data rekey of / goes on" "$(tdefs_daemon_log)" ||
	fail "the mount did not go on with the data rekey cut short by the unmount"
[[ $(json_value data_resume_only) == false ]] || fail "the mount ran only the pass over interrupted files"
wait_changed 2
# SIGKILL: the daemon dies in the middle of the job it took up.
pid=$(tdefs_daemon_pid)
kill -KILL "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
fusermount3 -uz "$TDEFS_MNT" 2>/dev/null || umount -l "$TDEFS_MNT" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
unset "tdefs__pid[$TDEFS_MNT]"
[[ $(record_id) == "$id2" ]] || fail "the record changed its job across the restart"
marked=$(marked_with "$id2")
((marked < nfiles)) || fail "the job was over before the kill: the test proves nothing"
tdefs_mount "$TDEFS_WALLET" "$TDEFS_BACKING" "$TDEFS_MNT"
grep -q "the interrupted data rekey of / goes on" "$(tdefs_daemon_log)" ||
	fail "the mount did not go on with the data rekey cut short by the kill"
wait_state done failed stopped
[[ $(json_value data_state) == done ]] || fail "the resumed data rekey ended $(json_value data_state)"
changed3=$(json_value data_changed) skipped3=$(json_value data_skipped)
((skipped3 == marked && changed3 == nfiles - marked)) ||
	fail "after the kill the job changed $changed3 and skipped $skipped3 files; expected $((nfiles - marked)) and $marked"
[[ ! -e $record ]] || fail "the finished data rekey left its record"
verify "after the resumed rekey, killed once"
log "cut short by an unmount and a SIGKILL: the job went on by itself, the last run skipped $skipped3 files it had done and rekeyed $changed3"

# ---- 3. records the daemon must not trust; the marks are out of reach of the mount ----------
printf 'tdefs-rekey-job 1\nid %s\nstopped 0\nrate 0\npath db\n' "$id2" >"$record"
chmod 0666 "$record"
tdefs_remount
grep -q "rekey.job is not the daemon's own record" "$(tdefs_daemon_log)" || fail "a record others could write was not refused"
[[ $(json_value data_resume_only) == true ]] || fail "a record others could write started a data rekey"
wait_state done
head -c 40 /dev/urandom >"$record"
chmod 0600 "$record"
tdefs_remount
grep -q "rekey.job is damaged" "$(tdefs_daemon_log)" || fail "a damaged record was not reported"
wait_state done
rm -f "$record"
ls -a "$TDEFS_MNT" | grep -q rekey && fail "the record shows through the mount"
getfattr -n trusted.tdefs.rekeyed "$TDEFS_MNT/db/f1" >/dev/null 2>&1 && fail "the job's mark reads through the mount"
setfattr -n trusted.tdefs.rekeyed -v "0x$id2" "$TDEFS_MNT/db/f1" 2>/dev/null && fail "root set the job's mark through the mount"
as_nobody setfattr -n trusted.tdefs.rekeyed -v "0x$id2" "$TDEFS_MNT/db/f1" 2>/dev/null && fail "uid 65534 set the job's mark through the mount"
verify "at the end"
tdefs_umount "$TDEFS_MNT"
pass "data rekey resumed without redoing finished files: stopped after $done1 of $nfiles, the rerun rekeyed $changed2 and skipped $skipped2 (their headers untouched); after an unmount and a SIGKILL the mount went on by itself (last run: $changed3 rekeyed, $skipped3 skipped); forged records refused, marks out of reach of the mount"
