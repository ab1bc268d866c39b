/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_creds.c: unit tests for objstore/creds.c: each credential source against
 * a local fake (environment, temp credentials/config files, an in-test HTTP server on
 * 127.0.0.1 playing the container endpoint and IMDSv2), the chain's order, caching and
 * refresh before expiry.
 *
 * Every test starts from a scrubbed environment (all AWS_* variables the providers read
 * are unset, HOME points at a temp dir, instance metadata is disabled unless a test
 * points it at the fake), so the machine's own AWS setup never leaks in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "objstore/objstore_i.h"

/* ---- environment and temp files ---- */

/* The variables the providers read, unset before each test (space-separated). */
static const char aws_vars[] =
    "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE "
    "AWS_DEFAULT_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE "
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI "
    "AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
    "AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE "
    "AWS_EC2_METADATA_V1_DISABLED AWS_EC2_METADATA_DISABLED AWS_ROLE_ARN "
    "AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_SESSION_NAME AWS_STS_REGIONAL_ENDPOINTS "
    "AWS_ENDPOINT_URL_STS AWS_REGION AWS_DEFAULT_REGION "
    "TIERFS_CREDENTIAL_PROCESS_TIMEOUT";

static char tmpdir[4096];

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_tmp(const char *name, const char *text)
{
    char p[4200];
    path_in_tmp(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void setenv_tmp(const char *var, const char *name)
{
    char p[4200];
    path_in_tmp(p, sizeof(p), name);
    assert_int_equal(setenv(var, p, 1), 0);
}

static void rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int env_setup(void **state)
{
    char vars[sizeof(aws_vars)], *save = NULL;
    memcpy(vars, aws_vars, sizeof(vars));
    for (char *v = strtok_r(vars, " ", &save); v; v = strtok_r(NULL, " ", &save))
        unsetenv(v);
    const char *base = getenv("TIERFS_TEST_TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/creds-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1); /* never probe the real 169.254.169.254 */
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1); /* nor the real STS */
    return 0;
}

static int env_teardown(void **state)
{
    rm_rf(tmpdir);
    return 0;
}

/* ---- captured log lines ---- */

static char logbuf[16384];
static size_t loglen;

static void log_sink(int level, const char *msg, void *arg)
{
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
    if (n > 0)
        loglen = loglen + (size_t)n < sizeof(logbuf) ? loglen + (size_t)n : sizeof(logbuf) - 1;
}

static void log_capture(void)
{
    loglen = 0;
    logbuf[0] = '\0';
    tlog_set_sink(log_sink, NULL);
}

/* ---- a fake container endpoint + IMDSv2 on 127.0.0.1 ---- */

#define IMDS_TOKEN "AQAEAFakeImdsToken=="
#define IMDS_ROLE "tierfs-test-role"
#define CREDS_PATH "/latest/meta-data/iam/security-credentials/"

struct fake_srv {
    int lfd;
    int port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards everything below */
    /* container endpoint */
    char container_auth[256]; /* required Authorization value; "" = none needed */
    int container_status;     /* 0 = 200 */
    char container_json[4096];
    /* IMDS */
    bool imds_has_role;
    char imds_json[4096];
    /* what was seen */
    int n_container, n_token_put, n_role_list, n_role_get, n_rejected;
    char last_auth[1024];
    /* S3: requests to /bucket/..., answered 200, with what they carried */
    int n_s3;
    char s3_token[256], s3_auth[1024];
};

static void srv_reply(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     strlen(body));
    if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) < 0)
        fprintf(stderr, "fake server: short write\n");
}

/* Value of header @name in the raw request (case-insensitive name), or "" */
static void srv_header(const char *req, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)len, v);
            return;
        }
    }
}

static void srv_handle(struct fake_srv *s, int fd)
{
    char req[8192];
    size_t len = 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (len < sizeof(req) - 1) {
        ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    char method[16] = "", path[1024] = "", auth[1024], ttl[64], tok[256];
    if (sscanf(req, "%15s %1023s", method, path) != 2)
        return;
    srv_header(req, "Authorization", auth, sizeof(auth));
    srv_header(req, "X-aws-ec2-metadata-token-ttl-seconds", ttl, sizeof(ttl));
    srv_header(req, "X-aws-ec2-metadata-token", tok, sizeof(tok));
    bool tok_ok = strcmp(tok, IMDS_TOKEN) == 0;

    pthread_mutex_lock(&s->lock);
    if (strncmp(path, "/bucket/", 8) == 0) {
        s->n_s3++;
        srv_header(req, "x-amz-security-token", s->s3_token, sizeof(s->s3_token));
        snprintf(s->s3_auth, sizeof(s->s3_auth), "%s", auth);
        srv_reply(fd, 200, "");
    } else if (strcmp(path, "/creds/ecs") == 0 && strcmp(method, "GET") == 0) {
        s->n_container++;
        snprintf(s->last_auth, sizeof(s->last_auth), "%s", auth);
        if (s->container_auth[0] && strcmp(auth, s->container_auth) != 0) {
            s->n_rejected++;
            srv_reply(fd, 401, "{\"message\":\"bad token\"}");
        } else if (s->container_status) {
            srv_reply(fd, s->container_status, "oops");
        } else {
            srv_reply(fd, 200, s->container_json);
        }
    } else if (strcmp(path, "/latest/api/token") == 0) {
        if (strcmp(method, "PUT") != 0 || atoi(ttl) <= 0) {
            s->n_rejected++;
            srv_reply(fd, 400, "");
        } else {
            s->n_token_put++;
            srv_reply(fd, 200, IMDS_TOKEN);
        }
    } else if (strncmp(path, CREDS_PATH, strlen(CREDS_PATH)) == 0 && strcmp(method, "GET") == 0) {
        const char *role = path + strlen(CREDS_PATH);
        if (!tok_ok) {
            s->n_rejected++; /* IMDSv2: no token, no metadata */
            srv_reply(fd, 401, "");
        } else if (!role[0]) {
            s->n_role_list++;
            if (s->imds_has_role)
                srv_reply(fd, 200, IMDS_ROLE "\n");
            else
                srv_reply(fd, 404, "");
        } else if (strcmp(role, IMDS_ROLE) == 0) {
            s->n_role_get++;
            srv_reply(fd, 200, s->imds_json);
        } else {
            srv_reply(fd, 404, "");
        }
    } else {
        srv_reply(fd, 404, "");
    }
    pthread_mutex_unlock(&s->lock);
}

static void *srv_main(void *arg)
{
    struct fake_srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        srv_handle(s, fd);
        close(fd);
    }
    return NULL;
}

/* Wait for the wall clock's next second (expiry times are whole seconds). */
static void next_second(void)
{
    time_t t = time(NULL);
    while (time(NULL) == t)
        usleep(5000);
}

static void iso_time(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A credentials document as the endpoints send it, expiring @ttl seconds from now. */
static void creds_json(char *out, size_t cap, const char *ak, int64_t ttl)
{
    char exp[64];
    iso_time((int64_t)time(NULL) + ttl, exp, sizeof(exp));
    snprintf(out, cap,
             "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n"
             "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"%s\",\n"
             "  \"SecretAccessKey\" : \"secret\\/for+%s\",\n  \"Token\" : \"tok-%s==\",\n"
             "  \"Expiration\" : \"%s\"\n}\n",
             ak, ak, ak, exp);
}

/* What the container endpoint answers from now on. */
static void container_creds(struct fake_srv *s, const char *ak, int64_t ttl)
{
    pthread_mutex_lock(&s->lock);
    creds_json(s->container_json, sizeof(s->container_json), ak, ttl);
    pthread_mutex_unlock(&s->lock);
}
static void container_status(struct fake_srv *s, int status)
{
    pthread_mutex_lock(&s->lock);
    s->container_status = status;
    pthread_mutex_unlock(&s->lock);
}

static void srv_start(struct fake_srv *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->imds_has_role = true;
    creds_json(s->container_json, sizeof(s->container_json), "AKCONTAINER", 3600);
    creds_json(s->imds_json, sizeof(s->imds_json), "AKIMDS", 3600);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct fake_srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->lock);
}

static int srv_count(struct fake_srv *s, const int *counter)
{
    pthread_mutex_lock(&s->lock);
    int v = *counter;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void use_container(struct fake_srv *s, const char *token)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/creds/ecs", s->port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    if (token) {
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token, 1);
        pthread_mutex_lock(&s->lock);
        snprintf(s->container_auth, sizeof(s->container_auth), "%s", token);
        pthread_mutex_unlock(&s->lock);
    }
}

static void use_imds(struct fake_srv *s)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port); /* trailing '/' on purpose */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

/* ---- environment ---- */

static void test_env_source(void **state)
{
    struct objstore_credentials cr;
    assert_int_equal(os3_creds_from_env(&cr), -ENOENT);

    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    assert_int_equal(os3_creds_from_env(&cr), -EINVAL); /* half a pair is a mistake */
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    assert_int_equal(os3_creds_from_env(&cr), 0);
    assert_string_equal(cr.access_key, "AKENV");
    assert_string_equal(cr.secret_key, "SKENV");
    assert_string_equal(cr.session_token, "");
    assert_int_equal(cr.expiration, 0);

    setenv("AWS_SESSION_TOKEN", "TOKENV", 1);
    assert_int_equal(os3_creds_from_env(&cr), 0);
    assert_string_equal(cr.session_token, "TOKENV");

    char big[300];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    setenv("AWS_ACCESS_KEY_ID", big, 1);
    assert_int_equal(os3_creds_from_env(&cr), -EINVAL);
    setenv("AWS_ACCESS_KEY_ID", "", 1); /* empty counts as unset */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(os3_creds_from_env(&cr), -ENOENT);
}

/* ---- profiles ---- */

static const char creds_file[] = "# comment line\n"
                                 "; another comment\n"
                                 "[default]\n"
                                 "aws_access_key_id = AKDEFAULT\n"
                                 "aws_secret_access_key=SKDEFAULT\n"
                                 "\n"
                                 "  [ dev ]  \n"
                                 "AWS_ACCESS_KEY_ID   =   AKDEV   \n"
                                 "aws_secret_access_key: SK/DEV+x==\n"
                                 "aws_session_token = TOKDEV=\n"
                                 "\n"
                                 "[partial]\n"
                                 "aws_access_key_id = AKPARTIAL\n"
                                 "\n"
                                 "[legacy]\n"
                                 "aws_access_key_id = AKLEGACY\n"
                                 "aws_secret_access_key = SKLEGACY\n"
                                 "aws_security_token = OLDTOKEN\n";

static const char config_file[] =
    "[default]\n"
    "region = eu-west-1\n"
    "[profile dev]\n"
    "aws_access_key_id = AKDEV_FROM_CONFIG\n"
    "aws_secret_access_key = SKDEV_FROM_CONFIG\n"
    "[profile   cfgonly]\n"
    "region = us-west-2\n"
    "aws_access_key_id = AKCFG\n"
    "aws_secret_access_key = SKCFG\n"
    "[cfgbare]\n" /* not a profile in a config file: needs "profile " */
    "aws_access_key_id = AKWRONG\n"
    "aws_secret_access_key = SKWRONG\n"
    "[profile nested]\n"
    "s3 =\n"
    "    aws_access_key_id = AKNESTEDWRONG\n"
    "    addressing_style = path\n"
    "aws_access_key_id = AKNESTED\n"
    "aws_secret_access_key = SKNESTED\n"
    "[sso-session corp]\n"
    "sso_region = us-east-1\n"
    "[profile rolebased]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "source_profile = default\n";

static void profile_files(void)
{
    write_tmp("credentials", creds_file);
    write_tmp("config", config_file);
    setenv_tmp("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    setenv_tmp("AWS_CONFIG_FILE", "config");
}

static void expect_profile(const char *profile, int rc, const char *ak, const char *sk,
                           const char *tok)
{
    struct objstore_credentials cr;
    memset(&cr, 0, sizeof(cr));
    assert_int_equal(os3_creds_from_profile(profile, &cr), rc);
    if (rc)
        return;
    assert_string_equal(cr.access_key, ak);
    assert_string_equal(cr.secret_key, sk);
    assert_string_equal(cr.session_token, tok);
    assert_int_equal(cr.expiration, 0);
}

static void test_profile_source(void **state)
{
    expect_profile(NULL, -ENOENT, NULL, NULL, NULL); /* no files at all */
    profile_files();
    expect_profile(NULL, 0, "AKDEFAULT", "SKDEFAULT", "");
    expect_profile("default", 0, "AKDEFAULT", "SKDEFAULT", "");
    /* the credentials file wins over the config file */
    expect_profile("dev", 0, "AKDEV", "SK/DEV+x==", "TOKDEV=");
    expect_profile("cfgonly", 0, "AKCFG", "SKCFG", "");
    expect_profile("nested", 0, "AKNESTED", "SKNESTED", "");
    expect_profile("legacy", 0, "AKLEGACY", "SKLEGACY", "OLDTOKEN");
    expect_profile("partial", -EINVAL, NULL, NULL, NULL);
    expect_profile("cfgbare", -ENOENT, NULL, NULL, NULL);
    expect_profile("corp", -ENOENT, NULL, NULL, NULL);
    expect_profile("rolebased", -ECONNREFUSED, NULL, NULL, NULL); /* STS: test_objstore_sts */
    expect_profile("nosuch", -ENOENT, NULL, NULL, NULL);

    setenv("AWS_PROFILE", "cfgonly", 1);
    expect_profile(NULL, 0, "AKCFG", "SKCFG", "");
    expect_profile("dev", 0, "AKDEV", "SK/DEV+x==", "TOKDEV="); /* the argument wins */
    unsetenv("AWS_PROFILE");
}

/* ---- container endpoint ---- */

static void test_container_source(void **state)
{
    struct objstore_credentials cr;
    assert_int_equal(os3_creds_from_container(&cr), -ENOENT);

    struct fake_srv s;
    srv_start(&s);
    use_container(&s, "Bearer sekrit-token");
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(os3_creds_from_container(&cr), 0);
    assert_string_equal(cr.access_key, "AKCONTAINER");
    assert_string_equal(cr.secret_key, "secret/for+AKCONTAINER"); /* "\/" unescaped */
    assert_string_equal(cr.session_token, "tok-AKCONTAINER==");
    assert_true(cr.expiration >= before + 3600 - 2 && cr.expiration <= before + 3600 + 2);
    assert_string_equal(s.last_auth, "Bearer sekrit-token");

    /* a wrong token: the endpoint refuses, the source reports it (not "no credentials") */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong", 1);
    assert_int_equal(os3_creds_from_container(&cr), -EACCES);
    assert_int_equal(srv_count(&s, &s.n_rejected), 1);

    /* the token file wins over the variable; its trailing newline is not sent */
    write_tmp("token", "Bearer sekrit-token\n");
    setenv_tmp("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "token");
    assert_int_equal(os3_creds_from_container(&cr), 0);
    assert_string_equal(s.last_auth, "Bearer sekrit-token");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

    /* a token that would inject a header line is refused before any request */
    int n = srv_count(&s, &s.n_container);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "x\r\nX-Evil: 1", 1);
    assert_int_equal(os3_creds_from_container(&cr), -EINVAL);
    assert_int_equal(srv_count(&s, &s.n_container), n);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer sekrit-token", 1);

    /* server errors and bad documents are errors */
    container_status(&s, 500);
    assert_int_equal(os3_creds_from_container(&cr), -EIO);
    pthread_mutex_lock(&s.lock);
    s.container_status = 0;
    snprintf(s.container_json, sizeof(s.container_json), "{\"AccessKeyId\": \"AK\", ");
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(os3_creds_from_container(&cr), -EIO);
    pthread_mutex_lock(&s.lock);
    snprintf(s.container_json, sizeof(s.container_json), "{\"AccessKeyId\": \"AK\"}");
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(os3_creds_from_container(&cr), -EIO); /* no secret */

    /* JSON the scanner must get right: nesting, escapes, offsets, fields in any order */
    pthread_mutex_lock(&s.lock);
    snprintf(s.container_json, sizeof(s.container_json),
             "{\"RoleArn\":{\"a\":[1,2,{\"AccessKeyId\":\"NOTME\"}],\"b\":null},"
             "\"Expiration\":\"2030-01-01T01:00:00.123+01:00\",\"n\":-1.5e3,\"t\":true,"
             "\"Token\":\"t\\u00e9\\ud83d\\ude00\\\"q\\\\\",\"SecretAccessKey\":\"S\\/K\","
             "\"AccessKeyId\":\"AKJSON\"}");
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(os3_creds_from_container(&cr), 0);
    assert_string_equal(cr.access_key, "AKJSON");
    assert_string_equal(cr.secret_key, "S/K");
    assert_string_equal(cr.session_token, "t\xc3\xa9\xf0\x9f\x98\x80\"q\\");
    assert_int_equal(cr.expiration, 1893456000); /* 2030-01-01T00:00:00Z */

    /* the relative form wins over FULL_URI: it goes to 169.254.170.2 (unreachable here,
     * bounded by the ~1 s timeouts), never to the fake named by FULL_URI */
    n = srv_count(&s, &s.n_container);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
    (void)os3_creds_from_container(&cr); /* on a real ECS host this might even succeed */
    assert_int_equal(srv_count(&s, &s.n_container), n);
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

    /* plain http only to loopback / the container agents: no request is made */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
    assert_int_equal(os3_creds_from_container(&cr), -EACCES);
    srv_stop(&s);
}

/* ---- IMDSv2 ---- */

static void test_imds_source(void **state)
{
    struct fake_srv s;
    struct objstore_credentials cr;
    srv_start(&s);
    use_imds(&s);
    assert_int_equal(os3_creds_from_imds(NULL, &cr), 0);
    assert_string_equal(cr.access_key, "AKIMDS");
    assert_string_equal(cr.secret_key, "secret/for+AKIMDS");
    assert_string_equal(cr.session_token, "tok-AKIMDS==");
    assert_true(cr.expiration > (int64_t)time(NULL) + 3000);
    /* token PUT, role listing, role document; the fake refuses any GET without the token */
    assert_int_equal(srv_count(&s, &s.n_token_put), 1);
    assert_int_equal(srv_count(&s, &s.n_role_list), 1);
    assert_int_equal(srv_count(&s, &s.n_role_get), 1);
    assert_int_equal(srv_count(&s, &s.n_rejected), 0);

    /* the explicit endpoint argument wins over the variable */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    assert_int_equal(os3_creds_from_imds(url, &cr), 0);
    assert_int_equal(srv_count(&s, &s.n_token_put), 2);
    /* ... and nothing listening is "no credentials here", quickly */
    assert_int_equal(os3_creds_from_imds(NULL, &cr), -ENOENT);
    use_imds(&s);

    /* an instance without a role */
    pthread_mutex_lock(&s.lock);
    s.imds_has_role = false;
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(os3_creds_from_imds(NULL, &cr), -ENOENT);
    pthread_mutex_lock(&s.lock);
    s.imds_has_role = true;
    snprintf(s.imds_json, sizeof(s.imds_json), "{\"Code\":\"AssumeRoleUnauthorizedAccess\"}");
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(os3_creds_from_imds(NULL, &cr), -EIO);

    /* disabled: no request at all */
    int puts = srv_count(&s, &s.n_token_put);
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    assert_int_equal(os3_creds_from_imds(NULL, &cr), -ENOENT);
    assert_int_equal(srv_count(&s, &s.n_token_put), puts);
    srv_stop(&s);
}

/* ---- the chain ---- */

static void chain_expect(const char *profile, int rc, const char *ak)
{
    struct objstore_creds *c = NULL;
    struct objstore_credentials cr;
    assert_int_equal(objstore_creds_default(profile, &c), 0);
    memset(&cr, 0, sizeof(cr));
    assert_int_equal(objstore_creds_get(c, &cr), rc);
    if (!rc)
        assert_string_equal(cr.access_key, ak);
    objstore_creds_destroy(c);
}

static void test_chain_order(void **state)
{
    struct fake_srv s;
    srv_start(&s);
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    profile_files();
    use_container(&s, NULL);
    use_imds(&s);

    chain_expect(NULL, 0, "AKENV");  /* env beats everything */
    chain_expect("dev", 0, "AKDEV"); /* ... except an explicit profile, like --profile */
    setenv("AWS_PROFILE", "cfgonly", 1);
    chain_expect(NULL, 0, "AKENV"); /* AWS_PROFILE alone does not beat env */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    chain_expect(NULL, 0, "AKCFG"); /* profile beats container */
    unsetenv("AWS_PROFILE");
    chain_expect(NULL, 0, "AKDEFAULT");
    /* a named profile that exists nowhere is an error, not a fall-through to IMDS */
    log_capture();
    chain_expect("nosuch", -EACCES, NULL);
    tlog_set_sink(NULL, NULL);
    assert_non_null(strstr(logbuf, "profile 'nosuch' not found"));
    /* a broken source stops the chain instead of being skipped */
    chain_expect("partial", -EINVAL, NULL);

    setenv_tmp("AWS_SHARED_CREDENTIALS_FILE", "missing-credentials");
    setenv_tmp("AWS_CONFIG_FILE", "missing-config");
    chain_expect(NULL, 0, "AKCONTAINER"); /* container beats IMDS */
    assert_int_equal(srv_count(&s, &s.n_token_put), 0);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    chain_expect(NULL, 0, "AKIMDS");
    assert_int_equal(srv_count(&s, &s.n_token_put), 1);

    /* nothing anywhere: -EACCES and one line naming every source tried */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    log_capture();
    chain_expect(NULL, -EACCES, NULL);
    tlog_set_sink(NULL, NULL);
    assert_non_null(strstr(logbuf, "none found"));
    assert_non_null(strstr(logbuf, "environment"));
    assert_non_null(strstr(logbuf, "missing-credentials"));
    assert_non_null(strstr(logbuf, "container endpoint"));
    assert_non_null(strstr(logbuf, "EC2 instance metadata (disabled)"));
    srv_stop(&s);
}

static void test_chain_refresh(void **state)
{
    struct fake_srv s;
    struct objstore_credentials cr;
    struct objstore_creds *c;
    srv_start(&s);
    use_container(&s, "tok");

    /* long-lived: fetched once, then served from the cache */
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(objstore_creds_get(c, &cr), 0);
        assert_string_equal(cr.access_key, "AKCONTAINER");
    }
    assert_int_equal(srv_count(&s, &s.n_container), 1);
    objstore_creds_destroy(c);

    /* short-lived: refreshed half-way through its life (at most 5 minutes before the
     * expiry), not on every get; the refresh picks up rotated keys */
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    next_second(); /* the steps below each take well under a second */
    container_creds(&s, "AKSHORT1", 4);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKSHORT1");
    assert_int_equal(srv_count(&s, &s.n_container), 2);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_int_equal(srv_count(&s, &s.n_container), 2); /* 4 s to live: not yet */
    container_creds(&s, "AKSHORT2", 3600);
    next_second();
    next_second(); /* half its life is over */
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKSHORT2");
    assert_int_equal(srv_count(&s, &s.n_container), 3);
    objstore_creds_destroy(c);

    /* a failed refresh keeps the still-valid keys and does not retry at once */
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    next_second();
    container_creds(&s, "AKSHORT3", 4);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKSHORT3");
    assert_int_equal(srv_count(&s, &s.n_container), 4);
    container_status(&s, 503);
    next_second();
    next_second(); /* due for a refresh, 2 s still to live */
    log_capture();
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKSHORT3");
    assert_int_equal(srv_count(&s, &s.n_container), 5);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_int_equal(srv_count(&s, &s.n_container), 5);
    tlog_set_sink(NULL, NULL);
    assert_non_null(strstr(logbuf, "refresh from container endpoint failed"));
    objstore_creds_destroy(c);

    /* already expired credentials are not served */
    pthread_mutex_lock(&s.lock);
    s.container_status = 0;
    creds_json(s.container_json, sizeof(s.container_json), "AKOLD", -60);
    pthread_mutex_unlock(&s.lock);
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0); /* the source does not judge expiry */
    assert_string_equal(cr.access_key, "AKOLD");
    container_status(&s, 500);
    assert_int_equal(objstore_creds_get(c, &cr), -EIO);
    objstore_creds_destroy(c);
    srv_stop(&s);
}

struct chain_thread_arg {
    struct objstore_creds *c;
    int bad;
};

static void *chain_thread(void *p)
{
    struct chain_thread_arg *a = p;
    for (int i = 0; i < 20; i++) {
        struct objstore_credentials cr;
        if (objstore_creds_get(a->c, &cr) != 0 || strncmp(cr.access_key, "AKSHORT", 7) != 0)
            a->bad++;
    }
    return NULL;
}

/* Concurrent callers share one provider; every answer is whole and valid. */
static void test_chain_threads(void **state)
{
    struct fake_srv s;
    srv_start(&s);
    use_container(&s, NULL);
    creds_json(s.container_json, sizeof(s.container_json), "AKSHORT", 120);
    struct objstore_creds *c;
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    pthread_t th[4];
    struct chain_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct chain_thread_arg){.c = c};
        assert_int_equal(pthread_create(&th[i], NULL, chain_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    /* one fetch for all of them: the others waited for it, then used its keys */
    assert_int_equal(srv_count(&s, &s.n_container), 1);
    objstore_creds_destroy(c);
    srv_stop(&s);
}

static void test_static(void **state)
{
    struct objstore_creds *c;
    struct objstore_credentials cr;
    assert_int_equal(objstore_creds_static("AK", "SK", NULL, &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AK");
    assert_string_equal(cr.secret_key, "SK");
    assert_string_equal(cr.session_token, "");
    assert_int_equal(cr.expiration, 0);
    objstore_creds_destroy(c);
    assert_int_equal(objstore_creds_static("AK", "SK", "TOK", &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.session_token, "TOK");
    objstore_creds_destroy(c);
    assert_int_equal(objstore_creds_static("", "SK", NULL, &c), -EINVAL);
    assert_int_equal(objstore_creds_static("AK", NULL, NULL, &c), -EINVAL);
    assert_int_equal(objstore_creds_get(NULL, &cr), -EINVAL);
    objstore_creds_destroy(NULL);
}

/*
 * Temporary credentials (a container role here) reach the wire whole: the S3 request
 * carries x-amz-security-token with the session token and signs it. The token header
 * used to be built from a copy of the credentials that was wiped before the headers were
 * sent, so every request with a session token went out with an empty token.
 */
static void test_session_token_sent(void **state)
{
    struct fake_srv s;
    char ep[64];
    struct objstore *os;
    struct objstore_object_info info;

    srv_start(&s);
    use_container(&s, NULL);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
    struct objstore_s3_conf conf = {
        .bucket = "bucket", .endpoint = ep, .region = "us-east-1", .path_style = true};
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    assert_int_equal(objstore_head(os, "obj", &info, NULL, 0), 0);
    objstore_destroy(os);
    assert_int_equal(srv_count(&s, &s.n_s3), 1);
    assert_string_equal(s.s3_token, "tok-AKCONTAINER==");
    assert_non_null(strstr(s.s3_auth, "Credential=AKCONTAINER/"));
    assert_non_null(strstr(s.s3_auth, "x-amz-security-token"));
    srv_stop(&s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_env_source),    T(test_profile_source), T(test_container_source),
        T(test_imds_source),   T(test_chain_order),    T(test_chain_refresh),
        T(test_chain_threads), T(test_static),         T(test_session_token_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
