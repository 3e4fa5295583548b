// SPDX-License-Identifier: GPL-2.0
/*
 * ipcns-bench - measure ipc namespace churn.
 *
 * Every unshare(CLONE_NEWIPC) creates a new ipc namespace and drops the
 * previous one.  A dropped namespace is freed asynchronously and keeps
 * counting against the per-user ucount limit
 * /proc/sys/user/max_ipc_namespaces until it is actually freed, so a fast
 * loop can hit ENOSPC even though only one namespace is alive.
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
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIMIT_PATH		"/proc/sys/user/max_ipc_namespaces"
#define RETRY_NSEC		1000000L	/* 1 ms */
#define DEFAULT_DRAIN_TIMEOUT	600.0
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
		"      time until all dead namespaces are freed\n"
		"      (DRAIN_TIMEOUT defaults to %.0f s)\n"
		"  parallel -n COUNT [-t MAX_SECONDS]\n"
		"      COUNT unshares in one child, then in two concurrent\n"
		"      children (COUNT each)\n"
		"\n"
		"options:\n"
		"  -l LIMIT        max_ipc_namespaces value (limit only)\n"
		"  -n COUNT        number of unshares (>= 1)\n"
		"  -t MAX_SECONDS  stop the loop (each phase) early after this\n"
		"                  much wall time\n"
		"  -d SECONDS      give up waiting for the drain (churn only)\n"
		"\n"
		"Output: one line \"RESULT key=value ...\" on stdout.\n"
		"Must run as root; changes sysctls (restored on exit).\n",
		prog, LIMIT_PATH, DEFAULT_DRAIN_TIMEOUT);
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

static int write_limit(long val)
{
	char buf[32];
	ssize_t n;
	int fd, len, err = 0;

	len = snprintf(buf, sizeof(buf), "%ld\n", val);
	fd = open(LIMIT_PATH, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = write(fd, buf, len);
	if (n < 0)
		err = errno;
	else if (n != len)
		err = EIO;
	if (close(fd) && !err)
		err = errno;
	return err;
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

static long read_slab_kb(void)
{
	char *line = NULL;
	size_t cap = 0;
	long val = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		die_errno("open /proc/meminfo", errno);
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "Slab: %ld", &val) == 1)
			break;
	}
	free(line);
	fclose(f);
	if (val < 0)
		die_msg("no Slab: line in /proc/meminfo");
	return val;
}

/*
 * Active objects in mqueue_inode_cache: every ipc namespace that is not
 * freed yet still holds its mqueue root inode, so this is a backlog
 * estimate independent of the ucount.  -1 when unavailable.
 */
static long read_mq_inodes(void)
{
	char *line = NULL;
	size_t cap = 0;
	long active, val = -1;
	char name[64];
	FILE *f;

	f = fopen("/proc/slabinfo", "re");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%63s %ld", name, &active) == 2 &&
		    !strcmp(name, "mqueue_inode_cache")) {
			val = active;
			break;
		}
	}
	free(line);
	fclose(f);
	return val;
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
 * Drain measurement: after the loop we hold one live namespace (the one we
 * are in); everything else counted by the ucount is dead but not freed.
 * Set max_ipc_namespaces to live + 1 and repeatedly fork a probe child that
 * tries to unshare one more namespace.  It can only succeed once the ucount
 * is back at the live count, i.e. every dead namespace has been freed.  A
 * kernel that waits for pending frees at the limit instead blocks the probe
 * until then, which marks the same moment.  The successful probe's own
 * namespace dies when it exits; the measurement is already taken by then.
 */
static void scenario_churn(long count, double max_s, double drain_max)
{
	long slab_before, slab_end, slab_drained;
	long mq_before, mq_end, mq_drained;
	double t0, t_end, deadline, drain_secs = 0;
	long limit, live, probes = 0;
	int err, drain_done = 0;
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

	slab_before = read_slab_kb();
	mq_before = read_mq_inodes();

	t0 = now();
	err = run_unshares(count, max_s > 0 ? t0 + max_s : 0, &st);
	t_end = now();
	if (err)
		die_errno("unshare(CLONE_NEWIPC)", err);

	slab_end = read_slab_kb();
	mq_end = read_mq_inodes();

	/* With no successful unshare we may still be in the uncounted init ns. */
	live = st.done > 0 ? 1 : 0;
	set_limit(live + 1);
	deadline = t_end + drain_max;
	for (;;) {
		probes++;
		pr = drain_probe(deadline, &chld);
		drain_secs = now() - t_end;
		if (pr == PROBE_OK) {
			drain_done = 1;
			break;
		}
		if (pr == PROBE_TIMEOUT || now() >= deadline)
			break;
		sleep_1ms();
	}

	slab_drained = read_slab_kb();
	mq_drained = read_mq_inodes();
	restore_limit();

	printf("RESULT scenario=churn limit=%ld count=%ld done=%ld complete=%d seconds=%.3f rate=%.1f enospc=%ld drain_seconds=%.3f drain_complete=%d drain_probes=%ld slab_before_kb=%ld slab_end_kb=%ld slab_drained_kb=%ld held_kb=%ld mq_inodes_before=%ld mq_inodes_end=%ld mq_inodes_drained=%ld\n",
	       limit, count, st.done, st.done == count, t_end - t0,
	       rate(st.done, t_end - t0), st.enospc, drain_secs, drain_done,
	       probes, slab_before, slab_end, slab_drained,
	       slab_end - slab_drained, mq_before, mq_end, mq_drained);
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
	long limit = -1, count = -1;
	int c, is_limit, is_churn;
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
	if (!is_limit && !is_churn && strcmp(scen, "parallel"))
		usage_err("unknown scenario '%s'", scen);

	/* Parse options after the scenario word; it acts as argv[0] here. */
	opterr = 0;
	while ((c = getopt(argc - 1, argv + 1, "+:l:n:t:d:")) != -1) {
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
	else
		scenario_parallel(count, max_s);

	if (fflush(stdout) || ferror(stdout))
		die_errno("write result", errno ? errno : EIO);
	return 0;
}
