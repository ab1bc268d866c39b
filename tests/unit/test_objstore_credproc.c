/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_credproc.c: unit tests for objstore/creds_process.c: the command line
 * split, a good helper, bad JSON, a failing, a missing and a hanging helper (killed with
 * its children at the timeout), a profile's credential_process through the chain with
 * refresh before Expiration, and no output of the helper in the log at debug level.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

static char tmpdir[4096];
static char logbuf[65536];
static size_t loglen;

static void log_sink(int level, const char *msg, void *arg)
{
    (void)level, (void)arg;
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
    if (n > 0)
        loglen = loglen + (size_t)n < sizeof(logbuf) ? loglen + (size_t)n : sizeof(logbuf) - 1;
}

/* Write an executable script @name printing @json (or doing @body); its path in @path. */
static void script(const char *name, const char *body, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
}

static int setup(void **state)
{
    (void)state;
    const char *vars[] = {"AWS_ACCESS_KEY_ID",
                          "AWS_SECRET_ACCESS_KEY",
                          "AWS_PROFILE",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "AWS_CONFIG_FILE",
                          "AWS_WEB_IDENTITY_TOKEN_FILE",
                          "AWS_ROLE_ARN",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "TIERFS_CREDENTIAL_PROCESS_TIMEOUT"};
    for (size_t i = 0; i < CMN_ARRAY_SIZE(vars); i++)
        unsetenv(vars[i]);
    const char *base = getenv("TIERFS_TEST_TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/credproc-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
    loglen = 0;
    logbuf[0] = '\0';
    tlog_set_level(TLOG_DEBUG);
    tlog_set_sink(log_sink, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tlog_set_sink(NULL, NULL);
    /* nothing the helpers printed reached the log */
    assert_null(strstr(logbuf, "SECRETPROC"));
    assert_null(strstr(logbuf, "TOKENPROC"));
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return 0;
}

static void expect_split(const char *line, int n, const char *const *words)
{
    char buf[512], *argv[8];
    assert_int_equal(os3_split_cmdline(line, buf, sizeof(buf), argv, 8), n);
    for (int i = 0; i < n; i++)
        assert_string_equal(argv[i], words[i]);
    if (n > 0)
        assert_null(argv[n]);
}

static void test_split(void **state)
{
    (void)state;
    expect_split("aws configure export-credentials --profile x --format process", 7,
                 (const char *const[]){"aws", "configure", "export-credentials", "--profile", "x",
                                       "--format", "process"});
    expect_split("  /bin/helper   'a b'  \"c \\\"d\\\" $e\"  f\\ g 'h'\"i\" ", 5,
                 (const char *const[]){"/bin/helper", "a b", "c \"d\" $e", "f g", "hi"});
    expect_split("", -EINVAL, NULL);
    expect_split("   ", -EINVAL, NULL);
    expect_split("helper 'unclosed", -EINVAL, NULL);
    expect_split("helper \"unclosed", -EINVAL, NULL);
    expect_split("a b c d e f g h i", -EINVAL, NULL); /* more words than the room */
}

static void test_process(void **state)
{
    (void)state;
    struct objstore_credentials cr;
    char path[4200], cmd[8800];

    script("good",
           "printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", "
           "\"SecretAccessKey\": \"SECRETPROC\", \"SessionToken\": \"TOKENPROC\", "
           "\"Expiration\": \"2030-01-02T03:04:05Z\"}'",
           path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "'%s' --ignored-arg", path);
    assert_int_equal(os3_creds_from_process(cmd, &cr), 0);
    assert_string_equal(cr.access_key, "AKPROC");
    assert_string_equal(cr.secret_key, "SECRETPROC");
    assert_string_equal(cr.session_token, "TOKENPROC");
    assert_int_equal(cr.expiration, 1893553445);

    /* no token, no expiry: long-term keys */
    script("longterm",
           "echo '{\"Version\":1,\"AccessKeyId\":\"AKLONG\","
           "\"SecretAccessKey\":\"SECRETPROC2\"}'",
           path, sizeof(path));
    assert_int_equal(os3_creds_from_process(path, &cr), 0);
    assert_string_equal(cr.session_token, "");
    assert_int_equal(cr.expiration, 0);

    /* bad output: not JSON, another version, a key missing, a bad time */
    const char *bad[] = {
        "echo 'AccessKeyId=AKX SecretAccessKey=SECRETPROC'",
        "echo '{\"Version\": 2, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SECRETPROC\"}'",
        "echo '{\"Version\": 1, \"AccessKeyId\": \"AK\"}'",
        "echo '{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SECRETPROC\", "
        "\"Expiration\": \"tomorrow\"}'",
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        script("bad", bad[i], path, sizeof(path));
        assert_int_equal(os3_creds_from_process(path, &cr), -EINVAL);
    }
    assert_non_null(strstr(logbuf, "\"Version\": 1"));

    /* a failing helper: its exit status; a missing one */
    script("fails", "echo '{\"SecretAccessKey\": \"SECRETPROC\"}'; exit 3", path, sizeof(path));
    assert_int_equal(os3_creds_from_process(path, &cr), -EIO);
    assert_non_null(strstr(logbuf, "exit status 3"));
    assert_int_equal(os3_creds_from_process("/nonexistent/helper --x", &cr), -EIO);
    assert_non_null(strstr(logbuf, "/nonexistent/helper"));
    /* no shell: a shell's syntax is just words */
    snprintf(cmd, sizeof(cmd), "'%s' ; touch %s/ran", path, tmpdir);
    assert_int_equal(os3_creds_from_process(cmd, &cr), -EIO);
    snprintf(cmd, sizeof(cmd), "%s/ran", tmpdir);
    assert_int_not_equal(access(cmd, F_OK), 0);
}

static void test_hang(void **state)
{
    (void)state;
    struct objstore_credentials cr;
    char path[4200], pidfile[4200];

    /* a helper that hangs, with a child that hangs too: both killed at the timeout */
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", tmpdir);
    char body[8600];
    snprintf(body, sizeof(body), "sleep 60 & echo $! > '%s'; wait", pidfile);
    script("hangs", body, path, sizeof(path));
    setenv("TIERFS_CREDENTIAL_PROCESS_TIMEOUT", "1", 1);
    uint64_t t0 = cmn_now_ns();
    assert_int_equal(os3_creds_from_process(path, &cr), -ETIMEDOUT);
    uint64_t took = cmn_now_ns() - t0;
    assert_true(took >= 900000000ull && took < 5000000000ull);
    assert_non_null(strstr(logbuf, "did not finish within 1 s"));
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int child = 0;
    assert_int_equal(fscanf(f, "%d", &child), 1);
    fclose(f);
    /* its child is gone too (killed with the group): no process, or a zombie left to a
     * container's init that does not reap */
    bool gone = false;
    for (int i = 0; i < 50 && !gone; i++) {
        char stat[64], line[256] = "";
        snprintf(stat, sizeof(stat), "/proc/%d/stat", child);
        FILE *sf = fopen(stat, "r");
        gone = !sf || !fgets(line, sizeof(line), sf) || strstr(line, ") Z ");
        if (sf)
            fclose(sf);
        if (!gone)
            usleep(20000);
    }
    assert_true(gone);
}

/* A profile's credential_process through the chain, refreshed before Expiration. */
static void test_profile_chain(void **state)
{
    (void)state;
    struct objstore_credentials cr;
    struct objstore_creds *c;
    char path[4200], counter[4200], cfg[4200], body[12000];

    snprintf(counter, sizeof(counter), "%s/runs", tmpdir);
    /* prints keys that live 4 s, counting its runs */
    snprintf(body, sizeof(body),
             "echo x >> '%s'\n"
             "n=$(wc -l < '%s')\n"
             "exp=$(date -u -d '+4 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
             "printf '{\"Version\":1,\"AccessKeyId\":\"AKRUN%%s\",\"SecretAccessKey\":"
             "\"SECRETPROC\",\"SessionToken\":\"TOKENPROC\",\"Expiration\":\"%%s\"}' $n $exp",
             counter, counter);
    script("rotating", body, path, sizeof(path));
    snprintf(cfg, sizeof(cfg), "%s/config", tmpdir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "[profile helper]\ncredential_process = \"%s\" --profile helper\n", path);
    fclose(f);
    setenv("AWS_CONFIG_FILE", cfg, 1);
    assert_int_equal(objstore_creds_default("helper", &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKRUN1");
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKRUN1"); /* cached */
    sleep(3);                                     /* past half its life */
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKRUN2");
    objstore_creds_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_chain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
