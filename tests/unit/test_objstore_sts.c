/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_sts.c: unit tests for objstore/creds_sts.c and creds_profile.c: where
 * the profile files are looked for, web
 * identity and assumed roles against a fake STS on 127.0.0.1 (request parameters, the
 * SigV4 signature of AssumeRole, XML replies, error replies, expiry), profile chains,
 * credential_source, the chain's order, the STS endpoint, and --explain-credentials'
 * output (no secret in it or in the log).
 *
 * Each test starts from a scrubbed environment (no AWS_* variable of the machine leaks
 * in, HOME is a temp dir, instance metadata is disabled).
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

static const char *const scrub[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
};

static char tmpdir[4096];

static void tmp_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* ---- captured log lines ---- */

static char logbuf[65536];
static size_t loglen;
static pthread_mutex_t loglock = PTHREAD_MUTEX_INITIALIZER;

static void log_sink(int level, const char *msg, void *arg)
{
    (void)level, (void)arg;
    pthread_mutex_lock(&loglock);
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
    if (n > 0)
        loglen = loglen + (size_t)n < sizeof(logbuf) ? loglen + (size_t)n : sizeof(logbuf) - 1;
    pthread_mutex_unlock(&loglock);
}

/* ---- a fake STS ---- */

#define KEY_BASE "AKIDBASEEXAMPLE0001"
#define SECRET_BASE "base/secret+key0000000000000000000000000"

struct sts_req {
    char action[64], role_arn[256], session[128], token[512], external_id[128], duration[16];
    char auth[1024], sec_token[1024], amz_date[32], host[128], ctype[128], body[4096];
};

struct fake_sts {
    int lfd, port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t lock;
    int status;            /* reply status; 0 = 200 with credentials */
    bool garbage;          /* a 200 that is not an STS reply */
    int ttl;               /* seconds the credentials given live */
    int n;                 /* requests seen */
    struct sts_req req[8]; /* the first 8 */
};

static void hdr(const char *req, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
            return;
        }
    }
}

/* Form parameter @name of @body, URL-decoded. */
static void param(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            char enc[2048];
            snprintf(enc, sizeof(enc), "%.*s", (int)strcspn(p + nl + 1, "&"), p + nl + 1);
            char *dec = os3_uri_decode(enc);
            assert_non_null(dec);
            snprintf(out, cap, "%s", dec);
            free(dec);
            return;
        }
    }
}

static void reply(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, strlen(body));
    if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) < 0)
        fprintf(stderr, "fake sts: short write\n");
}

static void sts_handle(struct fake_sts *s, int fd)
{
    char raw[16384], cl[32];
    size_t len = 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) { /* the head, then Content-Length bytes of body */
        ssize_t r = read(fd, raw + len, sizeof(raw) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        raw[len] = '\0';
        char *eoh = strstr(raw, "\r\n\r\n");
        if (!eoh)
            continue;
        hdr(raw, "Content-Length", cl, sizeof(cl));
        if (strlen(eoh + 4) >= (size_t)atoi(cl))
            break;
    }
    raw[len] = '\0';
    char *eoh = strstr(raw, "\r\n\r\n");
    if (!eoh)
        return;
    pthread_mutex_lock(&s->lock);
    struct sts_req dummy, *q = s->n < 8 ? &s->req[s->n] : &dummy;
    s->n++;
    memset(q, 0, sizeof(*q));
    snprintf(q->body, sizeof(q->body), "%s", eoh + 4);
    *eoh = '\0';
    strcat(raw, "\r\n");
    hdr(raw, "Authorization", q->auth, sizeof(q->auth));
    hdr(raw, "X-Amz-Security-Token", q->sec_token, sizeof(q->sec_token));
    hdr(raw, "X-Amz-Date", q->amz_date, sizeof(q->amz_date));
    hdr(raw, "Host", q->host, sizeof(q->host));
    hdr(raw, "Content-Type", q->ctype, sizeof(q->ctype));
    param(q->body, "Action", q->action, sizeof(q->action));
    param(q->body, "RoleArn", q->role_arn, sizeof(q->role_arn));
    param(q->body, "RoleSessionName", q->session, sizeof(q->session));
    param(q->body, "WebIdentityToken", q->token, sizeof(q->token));
    param(q->body, "ExternalId", q->external_id, sizeof(q->external_id));
    param(q->body, "DurationSeconds", q->duration, sizeof(q->duration));
    int n = s->n, status = s->status, ttl = s->ttl;
    bool garbage = s->garbage;
    pthread_mutex_unlock(&s->lock);

    char body[4096], exp[32];
    if (status) {
        snprintf(body, sizeof(body),
                 "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                 "<Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to "
                 "perform sts:%s</Message></Error><RequestId>r1</RequestId></ErrorResponse>",
                 q->action);
        reply(fd, status, body);
        return;
    }
    if (garbage) {
        reply(fd, 200, "<html>captive portal</html>");
        return;
    }
    time_t t = time(NULL) + ttl;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof(body),
             "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>"
             "<Credentials><AccessKeyId>ASIATEMP%04d</AccessKeyId>"
             "<SecretAccessKey>tempsecret%04d</SecretAccessKey>"
             "<SessionToken>session-token-%04d</SessionToken>"
             "<Expiration>%s</Expiration></Credentials>"
             "<AssumedRoleUser><Arn>arn:aws:sts::123:assumed-role/x/s</Arn></AssumedRoleUser>"
             "</%sResult></%sResponse>",
             q->action, q->action, n, n, n, exp, q->action, q->action);
    reply(fd, 200, body);
}

static void *sts_main(void *arg)
{
    struct fake_sts *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        sts_handle(s, fd);
        close(fd);
    }
    return NULL;
}

static struct fake_sts sts;

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scrub) / sizeof(scrub[0]); i++)
        unsetenv(scrub[i]);
    const char *base = getenv("TIERFS_TEST_TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/sts-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    memset(&sts, 0, sizeof(sts));
    pthread_mutex_init(&sts.lock, NULL);
    sts.ttl = 3600;
    sts.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (sts.lfd < 0 || bind(sts.lfd, (struct sockaddr *)&a, sizeof(a)) || listen(sts.lfd, 16) ||
        getsockname(sts.lfd, (struct sockaddr *)&a, &al))
        return -1;
    sts.port = ntohs(a.sin_port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", sts.port);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    loglen = 0;
    logbuf[0] = '\0';
    tlog_set_level(TLOG_DEBUG);
    tlog_set_sink(log_sink, NULL);
    return pthread_create(&sts.th, NULL, sts_main, &sts);
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&sts.stop, true);
    pthread_join(sts.th, NULL);
    close(sts.lfd);
    tlog_set_sink(NULL, NULL);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return 0;
}

static int sts_count(void)
{
    pthread_mutex_lock(&sts.lock);
    int n = sts.n;
    pthread_mutex_unlock(&sts.lock);
    return n;
}

static void sts_set(int status, bool garbage)
{
    pthread_mutex_lock(&sts.lock);
    sts.status = status;
    sts.garbage = garbage;
    pthread_mutex_unlock(&sts.lock);
}

/* Nothing secret in the log: keys, tokens, web identity tokens. */
static void log_clean(void)
{
    pthread_mutex_lock(&loglock);
    assert_null(strstr(logbuf, "tempsecret"));
    assert_null(strstr(logbuf, "session-token-"));
    assert_null(strstr(logbuf, "jwt-"));
    assert_null(strstr(logbuf, SECRET_BASE));
    pthread_mutex_unlock(&loglock);
}

/* The request's Authorization is the SigV4 signature of what was sent, by @cr. */
static void check_signature(const struct sts_req *q, const struct objstore_credentials *cr,
                            const char *region)
{
    char hash[65], expect[1024];
    os3_sha256_hex(q->body, strlen(q->body), hash);
    struct os3_kv h[4] = {{"host", q->host},
                          {"content-type", q->ctype},
                          {"x-amz-date", q->amz_date},
                          {"x-amz-security-token", q->sec_token}};
    struct os3_sign_input in = {.method = "POST",
                                .canonical_uri = "/",
                                .headers = h,
                                .n_headers = q->sec_token[0] ? 4 : 3,
                                .payload_hash = hash,
                                .amz_date = q->amz_date,
                                .region = region,
                                .service = "sts"};
    char scope[64];
    assert_int_equal(os3_sigv4_authorization(&in, cr, expect, sizeof(expect)), 0);
    assert_string_equal(q->auth, expect);
    snprintf(scope, sizeof(scope), "/%s/sts/aws4_request", region);
    assert_non_null(strstr(q->auth, scope));
}

/* ---- web identity ---- */

static void test_web_identity(void **state)
{
    (void)state;
    struct objstore_credentials cr;
    char tokpath[4200];

    assert_int_equal(os3_creds_web_identity_env(&cr), -ENOENT); /* nothing set */
    tmp_file("token", "jwt-first\n", tokpath, sizeof(tokpath));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokpath, 1);
    assert_int_equal(os3_creds_web_identity_env(&cr), -EINVAL); /* no role */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod role", 1);
    setenv("AWS_ROLE_SESSION_NAME", "my-pod", 1);
    assert_int_equal(os3_creds_web_identity_env(&cr), 0);
    assert_string_equal(cr.access_key, "ASIATEMP0001");
    assert_string_equal(cr.secret_key, "tempsecret0001");
    assert_string_equal(cr.session_token, "session-token-0001");
    assert_true(cr.expiration > time(NULL) + 3500 && cr.expiration <= time(NULL) + 3600);
    struct sts_req *q = &sts.req[0];
    assert_string_equal(q->action, "AssumeRoleWithWebIdentity");
    assert_string_equal(q->role_arn, "arn:aws:iam::123456789012:role/pod role");
    assert_string_equal(q->session, "my-pod");
    assert_string_equal(q->token, "jwt-first"); /* the newline trimmed */
    assert_non_null(strstr(q->body, "Version=2011-06-15"));
    assert_string_equal(q->auth, ""); /* not signed: the token is the proof */
    assert_string_equal(q->duration, "");

    /* the token file is read again at each refresh (Kubernetes rotates it) */
    tmp_file("token", "jwt-second", tokpath, sizeof(tokpath));
    unsetenv("AWS_ROLE_SESSION_NAME");
    assert_int_equal(os3_creds_web_identity_env(&cr), 0);
    assert_string_equal(sts.req[1].token, "jwt-second");
    assert_int_equal(strncmp(sts.req[1].session, "tierfs-", 7), 0); /* a default name */

    /* STS refuses: -EACCES, its code and message logged, no token */
    sts_set(403, false);
    assert_int_equal(os3_creds_web_identity_env(&cr), -EACCES);
    assert_non_null(strstr(logbuf, "AccessDenied"));
    assert_non_null(strstr(logbuf, "Not authorized to perform sts:AssumeRoleWithWebIdentity"));
    sts_set(500, false);
    assert_int_equal(os3_creds_web_identity_env(&cr), -EIO);
    sts_set(0, false);
    sts_set(0, true); /* a 200 that is not an STS reply */
    assert_int_equal(os3_creds_web_identity_env(&cr), -EIO);
    sts_set(0, false);
    /* a missing token file: its name and errno */
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
    assert_int_equal(os3_creds_web_identity_env(&cr), -ENOENT);
    assert_non_null(strstr(logbuf, "/nonexistent/token"));
    log_clean();
}

/* The chain with web identity: its place in the order, refresh before expiry. */
static void test_web_identity_chain(void **state)
{
    (void)state;
    struct objstore_credentials cr;
    struct objstore_creds *c;
    char tokpath[4200], cfg[4200];

    tmp_file("token", "jwt-pod", tokpath, sizeof(tokpath));
    tmp_file("credentials",
             "[default]\naws_access_key_id = AKSTATIC\n"
             "aws_secret_access_key = SKSTATIC\n",
             cfg, sizeof(cfg));
    setenv("AWS_SHARED_CREDENTIALS_FILE", cfg, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokpath, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    /* the SDKs' order: a pod's web identity wins over the profile's static keys */
    pthread_mutex_lock(&sts.lock);
    sts.ttl = 4;
    pthread_mutex_unlock(&sts.lock);
    assert_int_equal(objstore_creds_default(NULL, &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "ASIATEMP0001");
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_int_equal(sts_count(), 1); /* cached */
    sleep(3);                         /* past half of its 4 s life */
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "ASIATEMP0002"); /* refreshed before expiry */
    objstore_creds_destroy(c);
    /* an explicit profile skips the environment, web identity included */
    assert_int_equal(objstore_creds_default("default", &c), 0);
    assert_int_equal(objstore_creds_get(c, &cr), 0);
    assert_string_equal(cr.access_key, "AKSTATIC");
    objstore_creds_destroy(c);
    assert_int_equal(sts_count(), 2);
    log_clean();
}

/* ---- assumed roles from profiles ---- */

static void test_assume_role_chain(void **state)
{
    (void)state;
    struct objstore_credentials cr, base;
    char cfg[4200];

    tmp_file("credentials",
             "[base]\naws_access_key_id = " KEY_BASE "\n"
             "aws_secret_access_key = " SECRET_BASE "\n",
             cfg, sizeof(cfg));
    setenv("AWS_SHARED_CREDENTIALS_FILE", cfg, 1);
    tmp_file("config",
             "[profile mid]\nrole_arn = arn:aws:iam::1:role/mid\nsource_profile = base\n"
             "[profile top]\nregion = eu-west-1\nrole_arn = arn:aws:iam::2:role/top\n"
             "source_profile = mid\nexternal_id = ext-42\nduration_seconds = 1800\n"
             "role_session_name = sess-top\n"
             "[profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n"
             "[profile loop2]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop1\n"
             "[profile fromenv]\nrole_arn = arn:aws:iam::1:role/e\n"
             "credential_source = Environment\n"
             "[profile badsrc]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Moon\n"
             "[profile baddur]\nrole_arn = arn:aws:iam::1:role/e\nsource_profile = base\n"
             "duration_seconds = 60\n"
             "[profile nosrc]\nrole_arn = arn:aws:iam::1:role/e\nsource_profile = nosuch\n"
             "[profile self]\nrole_arn = arn:aws:iam::1:role/s\nsource_profile = self\n"
             "aws_access_key_id = AKSELF\naws_secret_access_key = SKSELF\n",
             cfg, sizeof(cfg));
    setenv("AWS_CONFIG_FILE", cfg, 1);

    /* two roles chained: mid signed with base's keys, top with mid's temporary ones */
    assert_int_equal(os3_creds_from_profile("top", &cr), 0);
    assert_int_equal(sts_count(), 2);
    assert_string_equal(cr.access_key, "ASIATEMP0002");
    assert_string_equal(cr.session_token, "session-token-0002");
    struct sts_req *q1 = &sts.req[0], *q2 = &sts.req[1];
    assert_string_equal(q1->action, "AssumeRole");
    assert_string_equal(q1->role_arn, "arn:aws:iam::1:role/mid");
    assert_string_equal(q1->sec_token, "");
    assert_string_equal(q1->external_id, "");
    assert_non_null(strstr(q1->auth, "Credential=" KEY_BASE "/"));
    memset(&base, 0, sizeof(base));
    strcpy(base.access_key, KEY_BASE);
    strcpy(base.secret_key, SECRET_BASE);
    check_signature(q1, &base, "us-east-1");
    assert_string_equal(q2->action, "AssumeRole");
    assert_string_equal(q2->role_arn, "arn:aws:iam::2:role/top");
    assert_string_equal(q2->external_id, "ext-42");
    assert_string_equal(q2->duration, "1800");
    assert_string_equal(q2->session, "sess-top");
    assert_string_equal(q2->sec_token, "session-token-0001");
    struct objstore_credentials mid = {0};
    strcpy(mid.access_key, "ASIATEMP0001");
    strcpy(mid.secret_key, "tempsecret0001");
    strcpy(mid.session_token, "session-token-0001");
    check_signature(q2, &mid, "eu-west-1"); /* top's region */

    assert_int_equal(os3_creds_from_profile("loop1", &cr), -ELOOP);
    assert_int_equal(os3_creds_from_profile("badsrc", &cr), -EINVAL);
    assert_non_null(strstr(logbuf, "credential_source 'Moon'"));
    assert_int_equal(os3_creds_from_profile("baddur", &cr), -EINVAL);
    assert_int_equal(os3_creds_from_profile("nosrc", &cr), -EINVAL);
    assert_non_null(strstr(logbuf, "source_profile 'nosuch'"));
    int n = sts_count();
    assert_int_equal(os3_creds_from_profile("fromenv", &cr), -EINVAL); /* env has no keys */
    setenv("AWS_ACCESS_KEY_ID", KEY_BASE, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET_BASE, 1);
    assert_int_equal(os3_creds_from_profile("fromenv", &cr), 0);
    assert_int_equal(sts_count(), n + 1);
    check_signature(&sts.req[n], &base, "us-east-1");
    /* a profile that is its own source signs with its own keys */
    assert_int_equal(os3_creds_from_profile("self", &cr), 0);
    assert_non_null(strstr(sts.req[n + 1].auth, "Credential=AKSELF/"));
    /* STS refuses the role: the chain stops there with -EACCES */
    sts_set(403, false);
    assert_int_equal(os3_creds_from_profile("top", &cr), -EACCES);
    sts_set(0, false);
    log_clean();
}

/* ---- profile files where the SDKs look for them ---- */

static void expect_keys(const char *profile, const char *ak, const char *sk)
{
    struct objstore_credentials cr;
    assert_int_equal(os3_creds_from_profile(profile, &cr), 0);
    assert_string_equal(cr.access_key, ak);
    assert_string_equal(cr.secret_key, sk);
}

static void test_profile_default_paths(void **state)
{
    (void)state;
    char d[4200], p[4200];

    /* No AWS_SHARED_CREDENTIALS_FILE: ~/.aws/credentials, with HOME = tmpdir */
    snprintf(d, sizeof(d), "%s/.aws", tmpdir);
    assert_int_equal(mkdir(d, 0700), 0);
    tmp_file(".aws/credentials",
             "[default]\naws_access_key_id=AKHOME\naws_secret_access_key=SKHOME\n", p, sizeof(p));
    tmp_file(".aws/config",
             "[profile other]\naws_access_key_id=AKHOMECFG\naws_secret_access_key=SKHOMECFG\n", p,
             sizeof(p));
    expect_keys(NULL, "AKHOME", "SKHOME");
    expect_keys("other", "AKHOMECFG", "SKHOMECFG");
    /* "~/" in the variable expands to HOME too */
    tmp_file("elsewhere", "[default]\naws_access_key_id=AKTILDE\naws_secret_access_key=SKT\n", p,
             sizeof(p));
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere", 1);
    expect_keys(NULL, "AKTILDE", "SKT");
}

/* ---- the endpoint ---- */

static void test_endpoint(void **state)
{
    (void)state;
    char url[256], region[64];

    unsetenv("AWS_ENDPOINT_URL_STS");
    os3_sts_endpoint(NULL, NULL, url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "https://sts.amazonaws.com/");
    assert_string_equal(region, "us-east-1");
    os3_sts_endpoint("eu-west-1", NULL, url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "https://sts.eu-west-1.amazonaws.com/");
    assert_string_equal(region, "eu-west-1");
    os3_sts_endpoint("eu-west-1", "legacy", url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "https://sts.amazonaws.com/");
    assert_string_equal(region, "us-east-1");
    setenv("AWS_STS_REGIONAL_ENDPOINTS", "regional", 1); /* the environment wins */
    os3_sts_endpoint("eu-west-1", "legacy", url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "https://sts.eu-west-1.amazonaws.com/");
    setenv("AWS_REGION", "cn-north-1", 1);
    os3_sts_endpoint(NULL, NULL, url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "https://sts.cn-north-1.amazonaws.com.cn/");
    setenv("AWS_ENDPOINT_URL_STS", "http://10.0.0.1:8080", 1);
    os3_sts_endpoint(NULL, NULL, url, sizeof(url), region, sizeof(region));
    assert_string_equal(url, "http://10.0.0.1:8080/");
    assert_string_equal(region, "cn-north-1");
}

/* ---- explain ---- */

static void test_explain(void **state)
{
    (void)state;
    char tokpath[4200], out[8192] = "";
    tmp_file("token", "jwt-explained", tokpath, sizeof(tokpath));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokpath, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/explained", 1);
    FILE *f = fmemopen(out, sizeof(out) - 1, "w");
    assert_non_null(f);
    assert_int_equal(objstore_creds_explain(NULL, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "environment (AWS_ACCESS_KEY_ID): nothing there"));
    assert_non_null(strstr(out, "AssumeRoleWithWebIdentity arn:aws:iam::1:role/explained"));
    assert_non_null(strstr(out, "chosen: web identity (environment); access key ASIA...0001"));
    assert_non_null(strstr(out, "expires "));
    assert_null(strstr(out, "tempsecret"));
    assert_null(strstr(out, "session-token"));
    assert_null(strstr(out, "jwt-"));
    /* a failing chain says where it stopped */
    sts_set(403, false);
    f = fmemopen(out, sizeof(out) - 1, "w");
    assert_int_equal(objstore_creds_explain(NULL, f), -EACCES);
    fclose(f);
    assert_non_null(strstr(out, "configured but failed"));
    sts_set(0, false);
    log_clean();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_default_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
