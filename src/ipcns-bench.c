// SPDX-License-Identifier: GPL-2.0
/*
 * ipcns-bench - measure ipc namespace churn.
 *
 * Every unshare(CLONE_NEWIPC) creates a new ipc namespace and drops the
 * previous one.  A dropped namespace is freed asynchronously and, on
 * kernels without synchronous accounting, keeps counting against the
 * per-user ucount limit /proc/sys/user/max_ipc_namespaces until it is
 * actually freed, so a fast loop can hit ENOSPC even though only one
 * namespace is alive.
 *
 * Until it is freed, a dead namespace also holds memory: its mqueue
 * superblock's root inode (slab cache mqueue_inode_cache), its internal
 * mount (mnt_cache) and any System V shared memory segment left in it.
 * The churn scenario measures the drain by those slab objects (and by the
 * ucount), the jail scenario by Shmem from /proc/meminfo.
 *
 * Prints exactly one "RESULT key=value ..." line on stdout.  Must run as
 * root; it may modify max_ipc_namespaces and restores it before exiting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIMIT_PATH		"/proc/sys/user/max_ipc_namespaces"
#define SLABINFO_PATH		"/proc/slabinfo"
#define SLAB_SYSFS		"/sys/kernel/slab"
#define RETRY_NSEC		1000000L	/* 1 ms */
#define SAMPLE_NSEC		1000000L	/* 1 ms */
#define DEFAULT_DRAIN_TIMEOUT	600.0
#define PROBE_GRACE		1.0	/* s, ucount probe after a slow drain */
#define SETTLE_TIMEOUT		60.0
#define DEFAULT_SEGMENT_KB	4096L
#define MAX_SEGMENT_KB		1048576L	/* 1 GiB */
#define JAIL_EXIT_ENOSPC	3	/* jail child: unshare hit the limit */
#define MAX_WORKERS		2

static const char *prog = "ipcns-bench";
static pid_t main_pid;
static int saved_valid;
static long saved_limit;

struct loop_stats {
	long done;
	long enospc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s SCENARIO [options]\n"
		"\n"
		"Measure ipc namespace churn (repeated unshare(CLONE_NEWIPC)).\n"
		"ENOSPC from the ucount limit is retried after 1 ms.\n"
		"\n"
		"scenarios:\n"
		"  limit -l LIMIT -n COUNT [-t MAX_SECONDS]\n"
		"      set %s to LIMIT (>= 2)\n"
		"      for the run and do COUNT unshares\n"
		"  churn -n COUNT [-t MAX_SECONDS] [-d DRAIN_TIMEOUT]\n"
		"      COUNT unshares at the default limit, then measure the\n"
		"      time until all dead namespaces are freed: first by the\n"
		"      mqueue_inode_cache and mnt_cache objects in %s\n"
		"      (flushed via %s/CACHE/shrink if present),\n"
		"      then by probing the ucount limit\n"
		"      (DRAIN_TIMEOUT defaults to %.0f s)\n"
		"  parallel -n COUNT [-t MAX_SECONDS]\n"
		"      COUNT unshares in one child, then in two concurrent\n"
		"      children (COUNT each)\n"
		"  jail -n COUNT [-s SEGMENT_KB] [-t MAX_SECONDS]\n"
		"      COUNT times, one after the other: fork a child that\n"
		"      unshares its ipc namespace, fills a System V shared\n"
		"      memory segment and exits without removing it; measure\n"
		"      Shmem in /proc/meminfo held by the dead namespaces\n"
		"\n"
		"options:\n"
		"  -l LIMIT        max_ipc_namespaces value (limit only)\n"
		"  -n COUNT        number of unshares or jails (>= 1)\n"
		"  -t MAX_SECONDS  stop the loop (each phase) early after this\n"
		"                  much wall time\n"
		"  -d SECONDS      give up waiting for the drain (churn only)\n"
		"  -s SEGMENT_KB   shared memory segment size per jail, a\n"
		"                  multiple of the page size, at most %ld\n"
		"                  (jail only, default %ld)\n"
		"\n"
		"Output: one line \"RESULT key=value ...\" on stdout.\n"
		"Must run as root; changes sysctls (restored on exit).\n",
		prog, LIMIT_PATH, SLABINFO_PATH, SLAB_SYSFS,
		DEFAULT_DRAIN_TIMEOUT, MAX_SEGMENT_KB, DEFAULT_SEGMENT_KB);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_err(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "%s: ", prog);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs("\n\n", stderr);
	}
	usage(stderr);
	exit(2);
}

/* Children must not run the atexit handler that restores the sysctl. */
static void __attribute__((noreturn)) fail_exit(void)
{
	if (getpid() != main_pid)
		_exit(1);
	exit(1);
}

static void __attribute__((noreturn)) die_errno(const char *step, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, step, strerror(err));
	fail_exit();
}

static void __attribute__((noreturn)) die_msg(const char *msg)
{
	fprintf(stderr, "%s: %s\n", prog, msg);
	fail_exit();
}

/* A child process @who ended with wait status @status, not exit(0). */
static void __attribute__((noreturn)) die_status(const char *who, int status)
{
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: %s killed by signal %d\n", prog, who,
			WTERMSIG(status));
	else
		fprintf(stderr, "%s: %s failed (exit status %d)\n", prog, who,
			WEXITSTATUS(status));
	fail_exit();
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_1ms(void)
{
	struct timespec ts = { 0, RETRY_NSEC };

	/* No signal handlers are installed, so EINTR is not a concern. */
	nanosleep(&ts, NULL);
}

static double rate(long n, double secs)
{
	return secs > 0 ? n / secs : 0.0;
}

static int read_limit(long *val)
{
	FILE *f;
	int err = 0;

	f = fopen(LIMIT_PATH, "re");
	if (!f)
		return errno;
	if (fscanf(f, "%ld", val) != 1)
		err = ferror(f) ? errno : EINVAL;
	fclose(f);
	return err;
}

/* Write the string @buf to the existing file @path; 0 or an errno. */
static int write_file(const char *path, const char *buf)
{
	size_t len = strlen(buf);
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = write(fd, buf, len);
	if (n < 0)
		err = errno;
	else if ((size_t)n != len)
		err = EIO;
	if (close(fd) && !err)
		err = errno;
	return err;
}

static int write_limit(long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", val);
	return write_file(LIMIT_PATH, buf);
}

/* Remember the original value once, so every exit path can put it back. */
static void set_limit(long val)
{
	int err;

	if (!saved_valid) {
		err = read_limit(&saved_limit);
		if (err)
			die_errno("read " LIMIT_PATH, err);
		saved_valid = 1;
	}
	err = write_limit(val);
	if (err)
		die_errno("write " LIMIT_PATH, err);
}

/* Put the saved limit back, once; 0 or an errno. */
static int put_back_limit(void)
{
	if (!saved_valid)
		return 0;
	saved_valid = 0;
	return write_limit(saved_limit);
}

static void restore_limit(void)
{
	int err = put_back_limit();

	if (err)
		die_errno("restore " LIMIT_PATH, err);
}

/* atexit handler: covers the die_*() paths of the main process. */
static void restore_limit_atexit(void)
{
	int err;

	if (getpid() != main_pid)
		return;
	err = put_back_limit();
	if (err)
		fprintf(stderr, "%s: restore %s to %ld: %s\n", prog,
			LIMIT_PATH, saved_limit, strerror(err));
}

/*
 * Do up to @count unshare(CLONE_NEWIPC).  ENOSPC means the ucount is full
 * of namespaces that are not freed yet, so wait 1 ms and retry the same
 * iteration.  Stop early once @deadline (0: none) has passed.
 * Returns 0 or the errno of a failure other than ENOSPC.
 */
static int run_unshares(long count, double deadline, struct loop_stats *st)
{
	st->done = 0;
	st->enospc = 0;
	while (st->done < count) {
		if (deadline > 0 && now() >= deadline)
			break;
		if (unshare(CLONE_NEWIPC) == 0) {
			st->done++;
			continue;
		}
		if (errno != ENOSPC)
			return errno;
		st->enospc++;
		sleep_1ms();
	}
	return 0;
}

/* The "@key:" value from /proc/meminfo, in kB. */
static long read_meminfo_kb(const char *key)
{
	size_t klen = strlen(key);
	char *line = NULL;
	size_t cap = 0;
	long val = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		die_errno("open /proc/meminfo", errno);
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, key, klen) && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%ld", &val) == 1)
			break;
	}
	free(line);
	fclose(f);
	if (val < 0) {
		fprintf(stderr, "%s: no %s: line in /proc/meminfo\n", prog, key);
		fail_exit();
	}
	return val;
}

/* active_objs of slab cache @cache in /proc/slabinfo; -1 if not listed. */
static long read_slab_active(const char *cache)
{
	char *line = NULL;
	size_t cap = 0;
	long active, val = -1;
	char name[64];
	FILE *f;

	f = fopen(SLABINFO_PATH, "re");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%63s %ld", name, &active) == 2 &&
		    !strcmp(name, cache)) {
			val = active;
			break;
		}
	}
	free(line);
	fclose(f);
	return val;
}

/*
 * kmem_cache_shrink() @cache.  It flushes the per-CPU slabs (and sheaves),
 * whose free objects /proc/slabinfo would count as active.  0 or an errno;
 * ENOENT if the kernel has no such sysfs file.
 */
static int shrink_slab_cache(const char *cache)
{
	char path[128];

	snprintf(path, sizeof(path), SLAB_SYSFS "/%s/shrink", cache);
	return write_file(path, "1");
}

/*
 * A slab cache of which every ipc namespace holds one object until it is
 * freed: the mqueue superblock's root inode, the internal mount.
 */
struct slab_track {
	const char *name;
	int shrink;			/* shrink before each count */
	long before, end, after;	/* active objects; -1: not counted */
};

#define SLAB_TRACK(n) { .name = (n), .before = -1, .end = -1, .after = -1 }

/*
 * Take the pre-loop count.  The first shrink decides the method: if it
 * fails, count from /proc/slabinfo alone.  Returns 0 if the cache is not
 * listed in /proc/slabinfo (or that does not exist).
 */
static int slab_track_start(struct slab_track *t)
{
	int err;

	err = shrink_slab_cache(t->name);
	t->shrink = !err;
	t->before = read_slab_active(t->name);
	if (t->before < 0)
		return 0;
	if (err && err != ENOENT)
		fprintf(stderr, "%s: shrink %s: %s; counting without it\n",
			prog, t->name, strerror(err));
	return 1;
}

/* Count the active objects of a cache that slab_track_start() found. */
static long slab_track_count(const struct slab_track *t)
{
	long val;
	int err;

	if (t->shrink) {
		err = shrink_slab_cache(t->name);
		if (err) {
			fprintf(stderr, "%s: shrink %s: %s\n", prog, t->name,
				strerror(err));
			fail_exit();
		}
	}
	val = read_slab_active(t->name);
	if (val < 0) {
		fprintf(stderr, "%s: %s vanished from %s\n", prog, t->name,
			SLABINFO_PATH);
		fail_exit();
	}
	return val;
}

static const char *slab_method(const struct slab_track *t, int n)
{
	int i;

	if (!n)
		return "none";
	for (i = 0; i < n; i++) {
		if (!t[i].shrink)
			return "slabinfo";
	}
	return "shrink";
}

/*
 * Poll the @n tracked caches every 1 ms until each is back at its pre-loop
 * count plus the @live namespaces we still hold, or @deadline has passed.
 * Leaves the last counts in ->after.  Returns 1 if drained.
 */
static int slab_drain(struct slab_track *t, int n, long live, double deadline)
{
	int i, drained;

	for (;;) {
		drained = 1;
		for (i = 0; i < n; i++) {
			t[i].after = slab_track_count(&t[i]);
			if (t[i].after > t[i].before + live)
				drained = 0;
		}
		if (drained)
			return 1;
		if (now() >= deadline)
			return 0;
		sleep_1ms();
	}
}

enum probe_result { PROBE_OK, PROBE_FULL, PROBE_TIMEOUT };

/*
 * Fork a child that tries one unshare(CLONE_NEWIPC).  Waits with
 * sigtimedwait() on the (blocked) SIGCHLD so that a probe which blocks in
 * the kernel is noticed as soon as it returns, yet cannot outlive
 * @deadline.
 */
static enum probe_result drain_probe(double deadline, const sigset_t *chld)
{
	struct timespec ts;
	int status, killed = 0;
	double left;
	pid_t pid, r;

	pid = fork();
	if (pid < 0)
		die_errno("fork drain probe", errno);
	if (pid == 0) {
		if (unshare(CLONE_NEWIPC) == 0)
			_exit(0);
		if (errno == ENOSPC)
			_exit(1);
		fprintf(stderr, "%s: drain probe unshare: %s\n", prog,
			strerror(errno));
		_exit(2);
	}

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r < 0)
			die_errno("waitpid drain probe", errno);
		if (r == pid)
			break;
		left = deadline - now();
		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			if (waitpid(pid, &status, 0) < 0)
				die_errno("waitpid drain probe", errno);
			break;
		}
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
		/* Timeout or a stale SIGCHLD just loops back to waitpid(). */
		sigtimedwait(chld, NULL, &ts);
	}

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return PROBE_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return PROBE_FULL;
	if (killed && WIFSIGNALED(status))
		return PROBE_TIMEOUT;
	die_msg("drain probe failed");
}

static void scenario_limit(long limit, long count, double max_s)
{
	struct loop_stats st;
	double t0, secs;
	long orig;
	int err;

	set_limit(limit);
	orig = saved_limit;

	t0 = now();
	err = run_unshares(count, max_s > 0 ? t0 + max_s : 0, &st);
	secs = now() - t0;
	if (err)
		die_errno("unshare(CLONE_NEWIPC)", err);

	restore_limit();
	printf("RESULT scenario=limit limit=%ld count=%ld done=%ld seconds=%.3f rate=%.1f enospc=%ld complete=%d orig_limit=%ld\n",
	       limit, count, st.done, secs, rate(st.done, secs), st.enospc,
	       st.done == count, orig);
}

/*
 * Two drain measurements, both timed from the loop's end.  After the loop
 * we hold one live namespace (the one we are in); every other namespace
 * the loop created is dead but maybe not freed yet.
 *
 * Slab drain (the main one): each namespace not freed yet holds one
 * mqueue_inode_cache object (its mqueue root inode) and one mnt_cache
 * object (its internal mount).  Poll both counts every 1 ms until they are
 * back at the pre-loop level plus the live namespace.  mqueue_inode_cache
 * is required; without it there is no slab drain measurement
 * (drain_method=none, drain_seconds=-1); mnt_cache is used when listed.
 *
 * Ucount drain: set max_ipc_namespaces to live + 1 and repeatedly fork a
 * probe child that tries to unshare one more namespace.  It can only
 * succeed once the ucount is back at the live count.  A kernel that waits
 * for pending frees at the limit instead blocks the probe until then,
 * which marks the same moment.  A kernel that uncharges namespaces at
 * death passes at once, so only the slab drain measures it.  The
 * successful probe's own namespace dies when it exits; the measurement is
 * already taken by then.
 */
static void scenario_churn(long count, double max_s, double drain_max)
{
	struct slab_track slabs[] = {
		SLAB_TRACK("mqueue_inode_cache"),
		SLAB_TRACK("mnt_cache"),
	};
	long slab_before, slab_end, slab_drained = -1;
	double t0, t_end, deadline, drain_secs = -1, udrain_secs = 0;
	long limit, live, probes = 0;
	int i, nslabs = 0, err, drain_done = 0, udrain_done = 0;
	struct loop_stats st;
	enum probe_result pr;
	sigset_t chld;

	err = read_limit(&limit);
	if (err)
		die_errno("read " LIMIT_PATH, err);

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL))
		die_errno("block SIGCHLD", errno);

	slab_before = read_meminfo_kb("Slab");
	if (slab_track_start(&slabs[0]))
		nslabs = slab_track_start(&slabs[1]) ? 2 : 1;
	if (!nslabs)
		fprintf(stderr, "%s: %s not in %s; no slab drain measurement\n",
			prog, slabs[0].name, SLABINFO_PATH);

	t0 = now();
	err = run_unshares(count, max_s > 0 ? t0 + max_s : 0, &st);
	t_end = now();
	if (err)
		die_errno("unshare(CLONE_NEWIPC)", err);

	slab_end = read_meminfo_kb("Slab");
	for (i = 0; i < nslabs; i++)
		slabs[i].end = slab_track_count(&slabs[i]);

	/* With no successful unshare we may still be in the uncounted init ns. */
	live = st.done > 0 ? 1 : 0;
	deadline = t_end + drain_max;
	/* Slab: is read after the slab drain, or without one after the ucount's. */
	if (nslabs) {
		drain_done = slab_drain(slabs, nslabs, live, deadline);
		drain_secs = now() - t_end;
		slab_drained = read_meminfo_kb("Slab");
	}

	/* A drain that used up the timeout still leaves one real probe. */
	if (deadline < now() + PROBE_GRACE)
		deadline = now() + PROBE_GRACE;
	set_limit(live + 1);
	for (;;) {
		probes++;
		pr = drain_probe(deadline, &chld);
		udrain_secs = now() - t_end;
		if (pr == PROBE_OK) {
			udrain_done = 1;
			break;
		}
		if (pr == PROBE_TIMEOUT || now() >= deadline)
			break;
		sleep_1ms();
	}
	if (!nslabs)
		slab_drained = read_meminfo_kb("Slab");
	restore_limit();

	printf("RESULT scenario=churn limit=%ld count=%ld done=%ld complete=%d seconds=%.3f rate=%.1f enospc=%ld drain_method=%s drain_seconds=%.3f drain_complete=%d mq_inodes_before=%ld mq_inodes_end=%ld mq_inodes_after=%ld mnt_before=%ld mnt_end=%ld mnt_after=%ld ucount_drain_seconds=%.3f ucount_drain_complete=%d ucount_drain_probes=%ld slab_before_kb=%ld slab_end_kb=%ld slab_drained_kb=%ld held_kb=%ld\n",
	       limit, count, st.done, st.done == count, t_end - t0,
	       rate(st.done, t_end - t0), st.enospc,
	       slab_method(slabs, nslabs), drain_secs, drain_done,
	       slabs[0].before, slabs[0].end, slabs[0].after,
	       slabs[1].before, slabs[1].end, slabs[1].after,
	       udrain_secs, udrain_done, probes,
	       slab_before, slab_end, slab_drained, slab_end - slab_drained);
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Run @nworkers children doing @count unshares each, timed from the first
 * fork to the last reap.  Children send their loop_stats through a pipe;
 * records are far below PIPE_BUF, so writes from both never interleave.
 */
static double run_phase(int nworkers, long count, double max_s,
			struct loop_stats *sum)
{
	pid_t pids[MAX_WORKERS];
	int status[MAX_WORKERS];
	struct loop_stats st;
	double t0, secs, deadline;
	int pfd[2], i, err;

	if (pipe2(pfd, O_CLOEXEC))
		die_errno("pipe", errno);
	fflush(NULL);

	t0 = now();
	deadline = max_s > 0 ? t0 + max_s : 0;
	for (i = 0; i < nworkers; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die_errno("fork worker", errno);
		if (pids[i] == 0) {
			close(pfd[0]);
			err = run_unshares(count, deadline, &st);
			if (err)
				die_errno("worker unshare(CLONE_NEWIPC)", err);
			if (write(pfd[1], &st, sizeof(st)) != (ssize_t)sizeof(st))
				die_errno("worker write pipe", errno);
			_exit(0);
		}
	}
	close(pfd[1]);

	/* Reap everyone before judging, so no worker is left behind. */
	for (i = 0; i < nworkers; i++) {
		if (waitpid(pids[i], &status[i], 0) < 0)
			die_errno("waitpid worker", errno);
	}
	secs = now() - t0;
	for (i = 0; i < nworkers; i++) {
		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]))
			die_msg("worker failed");
	}

	sum->done = 0;
	sum->enospc = 0;
	for (i = 0; i < nworkers; i++) {
		err = read_full(pfd[0], &st, sizeof(st));
		if (err)
			die_errno("read worker result", err);
		sum->done += st.done;
		sum->enospc += st.enospc;
	}
	close(pfd[0]);
	return secs;
}

static void scenario_parallel(long count, double max_s)
{
	struct loop_stats one, two;
	double s1, s2, r1, r2;

	s1 = run_phase(1, count, max_s, &one);
	s2 = run_phase(2, count, max_s, &two);
	r1 = rate(one.done, s1);
	r2 = rate(two.done, s2);

	printf("RESULT scenario=parallel count=%ld done_one=%ld seconds_one=%.3f rate_one=%.1f enospc_one=%ld done_two=%ld seconds_two=%.3f rate_two_aggregate=%.1f enospc_two=%ld ratio=%.3f complete=%d\n",
	       count, one.done, s1, r1, one.enospc, two.done, s2, r2,
	       two.enospc, r1 > 0 ? r2 / r1 : 0.0,
	       one.done == count && two.done == 2 * count);
}

/*
 * One jail: a child in its own ipc namespace fills a System V shared memory
 * segment and exits without IPC_RMID.  The segment belongs to the
 * namespace and is destroyed only when the namespace is freed.
 */
static void __attribute__((noreturn)) jail_child(size_t size)
{
	void *p;
	int id;

	if (unshare(CLONE_NEWIPC)) {
		if (errno == ENOSPC)
			_exit(JAIL_EXIT_ENOSPC);
		die_errno("jail unshare(CLONE_NEWIPC)", errno);
	}
	id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
	if (id < 0)
		die_errno("jail shmget", errno);
	p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		die_errno("jail shmat", errno);
	memset(p, 0x5a, size);
	if (shmdt(p))
		die_errno("jail shmdt", errno);
	_exit(0);
}

/* Shared (MAP_SHARED) between the main process and the Shmem sampler. */
struct shmem_samples {
	int stop;		/* set by the main process */
	long baseline_kb;	/* first sample, taken before the loop */
	long peak_kb;
	long samples;
};

/*
 * Sampler process: read Shmem every 1 ms until told to stop.  Its first
 * sample is the baseline; only then does it signal @ready_fd, so the
 * loop starts after it.
 */
static void __attribute__((noreturn))
shmem_sampler(struct shmem_samples *s, int ready_fd)
{
	struct timespec ts = { 0, SAMPLE_NSEC };
	char c = 0;
	long kb;

	/* Do not outlive a main process that dies on an error. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		die_errno("sampler prctl(PR_SET_PDEATHSIG)", errno);
	if (getppid() != main_pid)
		_exit(1);

	s->baseline_kb = read_meminfo_kb("Shmem");
	s->peak_kb = s->baseline_kb;
	s->samples = 1;
	if (write(ready_fd, &c, 1) != 1)
		die_errno("sampler write pipe", errno);
	close(ready_fd);

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		kb = read_meminfo_kb("Shmem");
		if (kb > s->peak_kb)
			s->peak_kb = kb;
		s->samples++;
	}
	_exit(0);
}

/* Fork the sampler and wait until it has taken the baseline. */
static pid_t start_sampler(struct shmem_samples *s)
{
	int pfd[2], err;
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC))
		die_errno("pipe", errno);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die_errno("fork sampler", errno);
	if (pid == 0) {
		close(pfd[0]);
		shmem_sampler(s, pfd[1]);
	}
	close(pfd[1]);
	err = read_full(pfd[0], &c, 1);
	close(pfd[0]);
	if (err)
		die_errno("wait for sampler", err);
	return pid;
}

static void stop_sampler(struct shmem_samples *s, pid_t pid)
{
	int status;

	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	if (waitpid(pid, &status, 0) < 0)
		die_errno("waitpid sampler", errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die_status("sampler", status);
}

/*
 * What sandbox launchers do: jails one after the other, each in a new ipc
 * namespace with a filled shared memory segment it never removes.  At most
 * one jail is alive at any time and it holds at most one segment, so
 * peak - baseline - segment is an upper bound of the Shmem held by dead
 * jails at the worst moment; after the last jail is reaped, all of
 * Shmem - baseline is held by dead ones.
 */
static void scenario_jail(long count, long seg_kb, double max_s)
{
	size_t size = (size_t)seg_kb * 1024;
	double t0, t_end, deadline, settle_secs;
	long final_kb, settled_kb, dead_peak_kb;
	struct shmem_samples *s;
	struct loop_stats st = { 0, 0 };
	int status, settled = 0;
	pid_t sampler, pid;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		die_errno("mmap", errno);
	/* The mapping is Shmem itself: fault it in before the baseline. */
	memset(s, 0, sizeof(*s));
	sampler = start_sampler(s);

	t0 = now();
	deadline = max_s > 0 ? t0 + max_s : 0;
	while (st.done < count) {
		if (deadline > 0 && now() >= deadline)
			break;
		pid = fork();
		if (pid < 0)
			die_errno("fork jail", errno);
		if (pid == 0)
			jail_child(size);
		if (waitpid(pid, &status, 0) < 0)
			die_errno("waitpid jail", errno);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			st.done++;
			continue;
		}
		if (!WIFEXITED(status) ||
		    WEXITSTATUS(status) != JAIL_EXIT_ENOSPC)
			die_status("jail child", status);
		st.enospc++;
		sleep_1ms();
	}
	t_end = now();
	final_kb = read_meminfo_kb("Shmem") - s->baseline_kb;
	stop_sampler(s, sampler);

	/* Wait for the dead jails' segments to go. */
	for (;;) {
		settled_kb = read_meminfo_kb("Shmem") - s->baseline_kb;
		settle_secs = now() - t_end;
		if (settled_kb <= seg_kb) {
			settled = 1;
			break;
		}
		if (settle_secs >= SETTLE_TIMEOUT)
			break;
		sleep_1ms();
	}

	dead_peak_kb = s->peak_kb - s->baseline_kb - seg_kb;
	if (dead_peak_kb < 0)
		dead_peak_kb = 0;
	printf("RESULT scenario=jail count=%ld done=%ld complete=%d seconds=%.3f rate=%.1f enospc=%ld segment_kb=%ld baseline_kb=%ld peak_kb=%ld dead_peak_kb=%ld final_kb=%ld settled_kb=%ld settle_seconds=%.3f settle_complete=%d samples=%ld\n",
	       count, st.done, st.done == count, t_end - t0,
	       rate(st.done, t_end - t0), st.enospc, seg_kb, s->baseline_kb,
	       s->peak_kb, dead_peak_kb, final_kb, settled_kb, settle_secs,
	       settled, s->samples);
	munmap(s, sizeof(*s));
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	double max_s = 0, drain_max = DEFAULT_DRAIN_TIMEOUT;
	long limit = -1, count = -1, seg_kb = DEFAULT_SEGMENT_KB, page_kb;
	int c, is_limit, is_churn, is_jail;
	const char *scen;

	main_pid = getpid();
	if (argc < 2)
		usage_err(NULL);
	scen = argv[1];
	if (!strcmp(scen, "-h") || !strcmp(scen, "--help")) {
		usage(stdout);
		return 0;
	}
	is_limit = !strcmp(scen, "limit");
	is_churn = !strcmp(scen, "churn");
	is_jail = !strcmp(scen, "jail");
	if (!is_limit && !is_churn && !is_jail && strcmp(scen, "parallel"))
		usage_err("unknown scenario '%s'", scen);
	page_kb = sysconf(_SC_PAGESIZE) / 1024;

	/* Parse options after the scenario word; it acts as argv[0] here. */
	opterr = 0;
	while ((c = getopt(argc - 1, argv + 1, "+:l:n:t:d:s:")) != -1) {
		switch (c) {
		case 'l':
			if (!is_limit)
				usage_err("-l is only valid for 'limit'");
			if (parse_long(optarg, 2, 0x7fffffff, &limit))
				usage_err("bad LIMIT '%s' (need 2..2147483647)",
					  optarg);
			break;
		case 'n':
			if (parse_long(optarg, 1, 0x3fffffffffffffffL, &count))
				usage_err("bad COUNT '%s' (need >= 1)", optarg);
			break;
		case 't':
			if (parse_secs(optarg, &max_s))
				usage_err("bad MAX_SECONDS '%s' (need > 0)",
					  optarg);
			break;
		case 'd':
			if (!is_churn)
				usage_err("-d is only valid for 'churn'");
			if (parse_secs(optarg, &drain_max))
				usage_err("bad DRAIN_TIMEOUT '%s' (need > 0)",
					  optarg);
			break;
		case 's':
			if (!is_jail)
				usage_err("-s is only valid for 'jail'");
			if (parse_long(optarg, 1, MAX_SEGMENT_KB, &seg_kb))
				usage_err("bad SEGMENT_KB '%s' (need 1..%ld)",
					  optarg, MAX_SEGMENT_KB);
			if (page_kb > 0 && seg_kb % page_kb)
				usage_err("bad SEGMENT_KB '%s' (need a multiple of the page size, %ld KB)",
					  optarg, page_kb);
			break;
		case ':':
			usage_err("option -%c needs an argument", optopt);
		default:
			usage_err("unknown option -%c", optopt);
		}
	}
	if (optind != argc - 1)
		usage_err("unexpected argument '%s'", argv[optind + 1]);
	if (count < 0)
		usage_err("missing -n COUNT");
	if (is_limit && limit < 0)
		usage_err("missing -l LIMIT");

	if (atexit(restore_limit_atexit))
		die_msg("atexit failed");

	if (is_limit)
		scenario_limit(limit, count, max_s);
	else if (is_churn)
		scenario_churn(count, max_s, drain_max);
	else if (is_jail)
		scenario_jail(count, seg_kb, max_s);
	else
		scenario_parallel(count, max_s);

	if (fflush(stdout) || ferror(stdout))
		die_errno("write result", errno ? errno : EIO);
	return 0;
}
