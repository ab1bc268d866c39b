/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_process.c: a profile's credential_process: run the command and read the
 * credentials it prints (the JSON document of the AWS CLI's "process" format, Version 1).
 * `aws configure export-credentials --profile X --format process` makes SSO profiles, and
 * every other helper (vaults, password managers, aws-vault), usable this way.
 *
 * DESIGN
 * The command line is split into words the way a POSIX shell would (quotes and
 * backslashes) and run with execvp, without a shell, as the AWS CLI does; whoever wants a
 * shell writes `sh -c '...'`. It is started with posix_spawnp. stdin is /dev/null (a daemon has no
 * terminal to prompt on), stdout is read up to 64 KiB, stderr is left as it is (the helper's own
 * error messages belong to the operator). The child runs in its own process group, so a helper that
 * hangs is killed with everything it started after $TIERFS_CREDENTIAL_PROCESS_TIMEOUT
 * seconds (60 by default). Its output holds secrets: it is never logged, and is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

extern char **environ;

#define OS3_PROC_OUT_MAX 65536
#define OS3_PROC_ARGV_MAX 64
#define OS3_PROC_TIMEOUT_DEFAULT_S 60

int os3_split_cmdline(const char *cmdline, char *buf, size_t cap, char **argv, int max)
{
    const char *p = cmdline;
    size_t o = 0;
    int n = 0;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        if (n >= max - 1)
            return -EINVAL;
        argv[n++] = buf + o;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            char c = *p++;
            if (c == '\'') {
                while (*p && *p != '\'') {
                    if (o + 1 >= cap)
                        return -EINVAL;
                    buf[o++] = *p++;
                }
                if (*p++ != '\'')
                    return -EINVAL;
                continue;
            }
            if (c == '"') {
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1] && strchr("\\\"$`", p[1]))
                        p++;
                    if (o + 1 >= cap)
                        return -EINVAL;
                    buf[o++] = *p++;
                }
                if (*p++ != '"')
                    return -EINVAL;
                continue;
            }
            if (c == '\\') {
                if (!*p)
                    return -EINVAL;
                c = *p++;
            }
            if (o + 1 >= cap)
                return -EINVAL;
            buf[o++] = c;
        }
        if (o + 1 >= cap)
            return -EINVAL;
        buf[o++] = '\0';
    }
    argv[n] = NULL;
    return n ? n : -EINVAL;
}

static int os3_proc_timeout_s(void)
{
    const char *v = getenv("TIERFS_CREDENTIAL_PROCESS_TIMEOUT");
    int t = v && v[0] ? atoi(v) : 0;
    return t > 0 ? t : OS3_PROC_TIMEOUT_DEFAULT_S;
}

/* Read the child's stdout until EOF or @deadline_ns. @return bytes, -ETIMEDOUT, -E2BIG. */
static ssize_t os3_proc_read(int fd, char *out, size_t cap, uint64_t deadline_ns)
{
    size_t len = 0;

    for (;;) {
        uint64_t now = cmn_now_ns();
        if (now >= deadline_ns)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ms = (int)CMN_MIN((deadline_ns - now) / 1000000 + 1, 1000);
        int pr = poll(&pfd, 1, ms);
        if (pr < 0 && errno != EINTR)
            return -errno;
        if (pr <= 0)
            continue;
        if (len + 1 >= cap)
            return -E2BIG;
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    return (ssize_t)len;
}

/* Wait for @pid until @deadline_ns, then kill its group. @return its wait status, or -1
 * when it had to be killed. */
static int os3_proc_reap(pid_t pid, uint64_t deadline_ns)
{
    int st = 0;

    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        if (w < 0 && errno != EINTR)
            return -1;
        if (cmn_now_ns() >= deadline_ns)
            break;
        usleep(10000);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

/* Parse the process format. @return 0 or -EINVAL (logged without any value). */
static int os3_proc_parse(const char *json, const char *prog, struct objstore_credentials *out)
{
    char ak[sizeof(out->access_key)], sk[sizeof(out->secret_key)], exp[64];
    char *tok = malloc(sizeof(out->session_token));
    long long version = 0;
    int64_t expiration = 0;
    int rc = -EINVAL;

    if (!tok)
        return -ENOMEM;
    if (os3_json_get_int(json, "Version", &version) != 0 || version != 1) {
        TLOG_E("credentials: credential_process %s: the output is not JSON with \"Version\": 1",
               prog);
        goto out;
    }
    if (os3_json_get(json, "AccessKeyId", ak, sizeof(ak)) != 0 ||
        os3_json_get(json, "SecretAccessKey", sk, sizeof(sk)) != 0 || !ak[0] || !sk[0]) {
        TLOG_E("credentials: credential_process %s: AccessKeyId or SecretAccessKey missing", prog);
        goto out;
    }
    int trc = os3_json_get(json, "SessionToken", tok, sizeof(out->session_token));
    if (trc == -ENOENT)
        tok[0] = '\0';
    else if (trc) {
        TLOG_E("credentials: credential_process %s: SessionToken is not a usable string", prog);
        goto out;
    }
    int erc = os3_json_get(json, "Expiration", exp, sizeof(exp));
    if (erc == 0 && os3_parse_iso8601(exp, &expiration) != 0) {
        TLOG_E("credentials: credential_process %s: Expiration is not an ISO 8601 time", prog);
        goto out;
    }
    if (erc && erc != -ENOENT) {
        TLOG_E("credentials: credential_process %s: Expiration is not a string", prog);
        goto out;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
    snprintf(out->secret_key, sizeof(out->secret_key), "%s", sk);
    snprintf(out->session_token, sizeof(out->session_token), "%s", tok);
    out->expiration = expiration;
    rc = 0;
out:
    OPENSSL_cleanse(ak, sizeof(ak));
    OPENSSL_cleanse(sk, sizeof(sk));
    OPENSSL_cleanse(tok, sizeof(out->session_token));
    free(tok);
    return rc;
}

int os3_creds_from_process(const char *cmdline, struct objstore_credentials *out)
{
    char words[4096], *argv[OS3_PROC_ARGV_MAX];
    int pipefd[2], rc, timeout_s = os3_proc_timeout_s();
    char *buf = NULL;

    if (os3_split_cmdline(cmdline, words, sizeof(words), argv, OS3_PROC_ARGV_MAX) < 0) {
        TLOG_E("credentials: credential_process is not a command line (an unclosed quote, "
               "nothing, or over %d words)",
               OS3_PROC_ARGV_MAX - 1);
        return -EINVAL;
    }
    const char *prog = argv[0];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    /* posix_spawn, not fork: a daemon with gigabytes of cache must not copy its page
     * tables to run a helper. Its own process group (killed whole on a timeout), stdin
     * /dev/null, stdout the pipe, default signal dispositions and an empty mask. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, def;
    pid_t pid = -1;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    rc = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc) {
        TLOG_E("credentials: credential_process %s could not be run: %s", prog, strerror(-rc));
        close(pipefd[0]);
        close(pipefd[1]);
        OPENSSL_cleanse(words, sizeof(words));
        return -EIO;
    }
    close(pipefd[1]);
    uint64_t deadline = cmn_now_ns() + (uint64_t)timeout_s * 1000000000ull;
    buf = malloc(OS3_PROC_OUT_MAX);
    ssize_t n = buf ? os3_proc_read(pipefd[0], buf, OS3_PROC_OUT_MAX, deadline) : -ENOMEM;
    close(pipefd[0]);
    int st = os3_proc_reap(pid, n == -ETIMEDOUT ? 0 : deadline);
    if (n == -ETIMEDOUT || st == -1) {
        TLOG_E("credentials: credential_process %s did not finish within %d s (killed; "
               "TIERFS_CREDENTIAL_PROCESS_TIMEOUT sets the limit)",
               prog, timeout_s);
        rc = -ETIMEDOUT;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        TLOG_E("credentials: credential_process %s could not be run (not found or not "
               "executable)",
               prog);
        rc = -EIO;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        TLOG_E("credentials: credential_process %s failed (%s %d)", prog,
               WIFEXITED(st) ? "exit status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        rc = -EIO;
    } else if (n < 0) {
        TLOG_E("credentials: credential_process %s: %s", prog,
               n == -E2BIG ? "over 64 KiB of output" : strerror((int)-n));
        rc = n == -E2BIG ? -EINVAL : (int)n;
    } else {
        rc = os3_proc_parse(buf, prog, out);
    }
    if (buf) {
        OPENSSL_cleanse(buf, OS3_PROC_OUT_MAX);
        free(buf);
    }
    OPENSSL_cleanse(words, sizeof(words));
    return rc;
}
