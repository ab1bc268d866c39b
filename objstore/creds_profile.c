/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_profile.c: the shared config and credentials files (~/.aws/config,
 * ~/.aws/credentials) and what a profile in them can say: static keys, an assumed role
 * (role_arn with source_profile or credential_source), a web identity
 * (role_arn with web_identity_token_file), a credential_process.
 *
 * DESIGN
 * A profile is read from both files and merged, the credentials file winning key by key
 * (as botocore merges them). The chain (creds.c) asks for one part of the profile at a
 * time, so that the environment's web identity can sit between a profile's role and its
 * static keys as in the SDKs (os3_creds_profile_part). A source profile (the credentials
 * an AssumeRole is signed with) resolves as the CLI resolves it: its own role first (so
 * roles chain), then its static keys, web identity, credential_process. A chain longer
 * than OS3_PROFILE_DEPTH_MAX is a loop, refused. A profile whose source_profile is itself
 * and that holds keys signs with those keys (the CLI's rule).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_PROFILE_PATH_MAX 4096
#define OS3_PROFILE_DEPTH_MAX 8

/* What the two files say about one profile. */
struct os3_creds_ini {
    bool section_found;
    bool too_long;
    char access_key[sizeof(((struct objstore_credentials *)0)->access_key)];
    char secret_key[sizeof(((struct objstore_credentials *)0)->secret_key)];
    char session_token[sizeof(((struct objstore_credentials *)0)->session_token)];
    char security_token[sizeof(((struct objstore_credentials *)0)->session_token)];
    char role_arn[2048];
    char source_profile[256];
    char credential_source[64];
    char external_id[1224];
    char duration_seconds[16];
    char role_session_name[128];
    char web_identity_token_file[OS3_PROFILE_PATH_MAX];
    char credential_process[4096];
    char region[64];
    char sts_regional_endpoints[16];
    char sso[8]; /* "1" when the profile names an SSO start URL or session */
};

/* The profile keys read, and where each goes. */
static const struct {
    const char *key;
    size_t off, cap;
} os3_ini_keys[] = {
#define OS3_INI_KEY(k, f)                                                                          \
    {                                                                                              \
        k, offsetof(struct os3_creds_ini, f), sizeof(((struct os3_creds_ini *)0)->f)               \
    }
    OS3_INI_KEY("aws_access_key_id", access_key),
    OS3_INI_KEY("aws_secret_access_key", secret_key),
    OS3_INI_KEY("aws_session_token", session_token),
    OS3_INI_KEY("aws_security_token", security_token), /* the old name */
    OS3_INI_KEY("role_arn", role_arn),
    OS3_INI_KEY("source_profile", source_profile),
    OS3_INI_KEY("credential_source", credential_source),
    OS3_INI_KEY("external_id", external_id),
    OS3_INI_KEY("duration_seconds", duration_seconds),
    OS3_INI_KEY("role_session_name", role_session_name),
    OS3_INI_KEY("web_identity_token_file", web_identity_token_file),
    OS3_INI_KEY("credential_process", credential_process),
    OS3_INI_KEY("region", region),
    OS3_INI_KEY("sts_regional_endpoints", sts_regional_endpoints),
#undef OS3_INI_KEY
};

/* Does the section header text name @profile? Config files say "profile NAME"
 * (and plain "default"); credentials files say just "NAME". */
static bool os3_creds_ini_section_match(const char *section, const char *profile, bool config_style)
{
    if (!config_style)
        return strcmp(section, profile) == 0;
    if (strcmp(section, "default") == 0)
        return strcmp(profile, "default") == 0;
    if (strncmp(section, "profile", 7) != 0 || !isspace((unsigned char)section[7]))
        return false; /* [sso-session x], [services x], ... are not profiles */
    const char *name = section + 7;
    while (isspace((unsigned char)*name))
        name++;
    return strcmp(name, profile) == 0;
}

/* Set key @key of @res to @value when it is one we read. */
static void os3_creds_ini_set(struct os3_creds_ini *res, const char *key, const char *value)
{
    if (strcasecmp(key, "sso_start_url") == 0 || strcasecmp(key, "sso_session") == 0) {
        snprintf(res->sso, sizeof(res->sso), "1");
        return;
    }
    for (size_t i = 0; i < CMN_ARRAY_SIZE(os3_ini_keys); i++) {
        if (strcasecmp(key, os3_ini_keys[i].key) != 0)
            continue;
        size_t n = strlen(value);
        if (n >= os3_ini_keys[i].cap) {
            res->too_long = true;
            return;
        }
        memcpy((char *)res + os3_ini_keys[i].off, value, n + 1);
        return;
    }
}

/*
 * Read @profile's keys from the INI file at @path into @res, over what it holds (the file
 * read last wins key by key). Follows the CLI's parser: '#' and ';' start comment lines,
 * "key = value" or "key: value", key names case-insensitive, and an indented line after a
 * key is a nested setting (e.g. "s3 =\n  addressing_style = path") rather than a key of
 * the profile. A missing file is no error. @return 0, or -EINVAL when a value does not fit
 * (logged).
 */
static int os3_creds_ini_read(const char *path, const char *profile, bool config_style,
                              struct os3_creds_ini *res, bool *found)
{
    *found = false;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            TLOG_W("credentials: cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t linecap = 0;
    bool in_profile = false, key_seen = false;
    while (getline(&line, &linecap, f) >= 0) {
        bool indented = line[0] == ' ' || line[0] == '\t';
        char *s = os3_creds_trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strrchr(s, ']');
            if (!end)
                continue; /* malformed header: the CLI would refuse the file; ignore it */
            *end = '\0';
            in_profile = os3_creds_ini_section_match(os3_creds_trim(s + 1), profile, config_style);
            *found |= in_profile;
            key_seen = false;
            continue;
        }
        if (indented && key_seen)
            continue; /* nested setting of the previous key */
        char *sep = strpbrk(s, "=:");
        if (!sep)
            continue;
        *sep = '\0';
        key_seen = true;
        if (in_profile)
            os3_creds_ini_set(res, os3_creds_trim(s), os3_creds_trim(sep + 1));
    }
    if (line)
        OPENSSL_cleanse(line, linecap);
    free(line);
    fclose(f);
    res->section_found |= *found;
    if (res->too_long) {
        TLOG_E("credentials: a value of profile '%s' in %s is too long", profile, path);
        return -EINVAL;
    }
    return 0;
}

/* Expand a leading "~/" with $HOME (or the password database). @return 0 / -ENAMETOOLONG. */
static int os3_creds_expand_home(const char *path, char *out, size_t cap)
{
    const char *home = NULL;
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        home = os3_creds_env("HOME");
        struct passwd pw, *pwp = NULL;
        char pwbuf[1024];
        if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
            home = pwp->pw_dir;
        if (!home)
            return -ENOENT;
        path++;
    }
    int n = snprintf(out, cap, "%s%s", home ? home : "", path);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

void os3_creds_profile_paths(char *cred_path, char *conf_path, size_t cap)
{
    const char *c = os3_creds_env("AWS_SHARED_CREDENTIALS_FILE");
    const char *k = os3_creds_env("AWS_CONFIG_FILE");
    if (os3_creds_expand_home(c ? c : "~/.aws/credentials", cred_path, cap) < 0)
        cred_path[0] = '\0';
    if (os3_creds_expand_home(k ? k : "~/.aws/config", conf_path, cap) < 0)
        conf_path[0] = '\0';
}

const char *os3_creds_profile_name(const char *profile)
{
    if (profile && profile[0])
        return profile;
    const char *env = os3_creds_env("AWS_PROFILE");
    return env ? env : "default";
}

/* One profile, both files merged. @where: the file that has it (for messages).
 * @return 0 (ini->section_found says whether it exists), -EINVAL, -ENOMEM. */
static int os3_profile_read(const char *name, struct os3_creds_ini **out, char *where, size_t wcap)
{
    char cred_path[OS3_PROFILE_PATH_MAX], conf_path[OS3_PROFILE_PATH_MAX];
    bool in_cred = false, in_conf = false;
    /* two 2 KiB tokens and a command line: keep it off small thread stacks */
    struct os3_creds_ini *ini = calloc(1, sizeof(*ini));
    int rc = 0;

    *out = NULL;
    if (!ini)
        return -ENOMEM;
    os3_creds_profile_paths(cred_path, conf_path, sizeof(cred_path));
    /* the config file first: the credentials file's keys win */
    if (conf_path[0])
        rc = os3_creds_ini_read(conf_path, name, true, ini, &in_conf);
    if (!rc && cred_path[0])
        rc = os3_creds_ini_read(cred_path, name, false, ini, &in_cred);
    snprintf(where, wcap, "%s", in_cred ? cred_path : conf_path);
    if (rc) {
        OPENSSL_cleanse(ini, sizeof(*ini));
        free(ini);
        return rc;
    }
    *out = ini;
    return 0;
}

static void os3_profile_free(struct os3_creds_ini *ini)
{
    if (!ini)
        return;
    OPENSSL_cleanse(ini, sizeof(*ini));
    free(ini);
}

/* The profile's static keys. @return 0, -ENOENT (none), -EINVAL (half a pair, logged). */
static int os3_profile_keys(const struct os3_creds_ini *ini, const char *name, const char *where,
                            struct objstore_credentials *out)
{
    if (!ini->access_key[0] && !ini->secret_key[0])
        return -ENOENT;
    if (!ini->access_key[0] || !ini->secret_key[0]) {
        TLOG_E("credentials: profile '%s' in %s has %s but not %s", name, where,
               ini->access_key[0] ? "aws_access_key_id" : "aws_secret_access_key",
               ini->access_key[0] ? "aws_secret_access_key" : "aws_access_key_id");
        return -EINVAL;
    }
    const char *token = ini->session_token[0] ? ini->session_token : ini->security_token;
    int rc = os3_creds_fill(out, ini->access_key, ini->secret_key, token, 0, where);
    if (!rc)
        os3_creds_why("profile '%s' (%s): static keys", name, where);
    return rc;
}

/* The role settings of @ini for STS. @return 0 or -EINVAL (logged). */
static int os3_profile_role(const struct os3_creds_ini *ini, const char *name,
                            struct os3_sts_role *r)
{
    *r = (struct os3_sts_role){.role_arn = ini->role_arn,
                               .session_name = ini->role_session_name,
                               .external_id = ini->external_id,
                               .region = ini->region,
                               .regional_mode = ini->sts_regional_endpoints};
    if (ini->duration_seconds[0]) {
        char *end;
        long d = strtol(ini->duration_seconds, &end, 10);
        if (*end || d < 900 || d > 43200) {
            TLOG_E("credentials: profile '%s': duration_seconds '%s' is not a number of "
                   "seconds from 900 to 43200",
                   name, ini->duration_seconds);
            return -EINVAL;
        }
        r->duration_s = (int)d;
    }
    return 0;
}

static int os3_profile_resolve(const char *name, int depth, struct objstore_credentials *out);

/* The credentials an AssumeRole of profile @name (@ini) is signed with. */
static int os3_profile_source(const struct os3_creds_ini *ini, const char *name, const char *where,
                              int depth, struct objstore_credentials *src)
{
    int rc;

    if (ini->source_profile[0]) {
        if (strcmp(ini->source_profile, name) == 0) { /* its own keys (the CLI's rule) */
            rc = os3_profile_keys(ini, name, where, src);
            if (rc == -ENOENT)
                TLOG_E("credentials: profile '%s' is its own source_profile but has no keys", name);
            return rc == -ENOENT ? -EINVAL : rc;
        }
        rc = os3_profile_resolve(ini->source_profile, depth + 1, src);
        if (rc == -ENOENT)
            TLOG_E("credentials: profile '%s': source_profile '%s' has no credentials (or "
                   "does not exist)",
                   name, ini->source_profile);
        return rc == -ENOENT ? -EINVAL : rc;
    }
    const char *cs = ini->credential_source;
    if (strcasecmp(cs, "Environment") == 0)
        rc = os3_creds_from_env(src);
    else if (strcasecmp(cs, "Ec2InstanceMetadata") == 0)
        rc = os3_creds_from_imds(NULL, src);
    else if (strcasecmp(cs, "EcsContainer") == 0)
        rc = os3_creds_from_container(src);
    else {
        TLOG_E("credentials: profile '%s': credential_source '%s' is not Environment, "
               "Ec2InstanceMetadata or EcsContainer",
               name, cs);
        return -EINVAL;
    }
    if (rc == -ENOENT)
        TLOG_E("credentials: profile '%s': credential_source %s has no credentials", name, cs);
    if (!rc)
        os3_creds_why("profile '%s': credential_source %s", name, cs);
    return rc == -ENOENT ? -EINVAL : rc;
}

/* Profile @ini's assumed role: role_arn with source_profile or credential_source. */
static int os3_profile_assume(const struct os3_creds_ini *ini, const char *name, const char *where,
                              int depth, struct objstore_credentials *out)
{
    struct objstore_credentials *src;
    struct os3_sts_role r;
    int rc;

    if (!ini->role_arn[0] || (!ini->source_profile[0] && !ini->credential_source[0]))
        return -ENOENT;
    if (ini->source_profile[0] && ini->credential_source[0]) {
        TLOG_E("credentials: profile '%s' has both source_profile and credential_source", name);
        return -EINVAL;
    }
    if (depth >= OS3_PROFILE_DEPTH_MAX) {
        TLOG_E("credentials: profile '%s': the source_profile chain is a loop or longer than "
               "%d profiles",
               name, OS3_PROFILE_DEPTH_MAX);
        return -ELOOP;
    }
    rc = os3_profile_role(ini, name, &r);
    if (rc)
        return rc;
    src = malloc(sizeof(*src));
    if (!src)
        return -ENOMEM;
    rc = os3_profile_source(ini, name, where, depth, src);
    if (!rc)
        rc = os3_sts_assume_role(&r, src, out);
    if (!rc)
        os3_creds_why("profile '%s' (%s): AssumeRole %s", name, where, ini->role_arn);
    OPENSSL_cleanse(src, sizeof(*src));
    free(src);
    return rc;
}

/* Profile @ini's web identity: role_arn with web_identity_token_file. */
static int os3_profile_web_identity(const struct os3_creds_ini *ini, const char *name,
                                    const char *where, struct objstore_credentials *out)
{
    struct os3_sts_role r;

    if (!ini->web_identity_token_file[0])
        return -ENOENT;
    if (!ini->role_arn[0]) {
        TLOG_E("credentials: profile '%s' has web_identity_token_file but no role_arn", name);
        return -EINVAL;
    }
    int rc = os3_profile_role(ini, name, &r);
    if (!rc)
        rc = os3_sts_web_identity(&r, ini->web_identity_token_file, out);
    if (!rc)
        os3_creds_why("profile '%s' (%s): AssumeRoleWithWebIdentity %s, token file %s", name, where,
                      ini->role_arn, ini->web_identity_token_file);
    return rc;
}

/* Profile @ini's credential_process. */
static int os3_profile_process(const struct os3_creds_ini *ini, const char *name, const char *where,
                               struct objstore_credentials *out)
{
    if (!ini->credential_process[0])
        return -ENOENT;
    int rc = os3_creds_from_process(ini->credential_process, out);
    if (!rc)
        os3_creds_why("profile '%s' (%s): credential_process", name, where);
    return rc;
}

int os3_creds_profile_part(const char *name, enum os3_profile_part part,
                           struct objstore_credentials *out, bool *found)
{
    struct os3_creds_ini *ini;
    char where[OS3_PROFILE_PATH_MAX];
    int rc = os3_profile_read(name, &ini, where, sizeof(where));

    *found = false;
    if (rc)
        return rc;
    *found = ini->section_found;
    rc = -ENOENT;
    switch (part) {
    case OS3_PROFILE_ROLE:
        rc = os3_profile_assume(ini, name, where, 0, out);
        break;
    case OS3_PROFILE_WEB_IDENTITY:
        rc = os3_profile_web_identity(ini, name, where, out);
        break;
    case OS3_PROFILE_KEYS:
        rc = os3_profile_keys(ini, name, where, out);
        if (rc == -ENOENT)
            rc = os3_profile_process(ini, name, where, out);
        if (rc == -ENOENT && ini->section_found && !ini->role_arn[0])
            TLOG_W("credentials: profile '%s' has no keys, role or credential_process%s", name,
                   ini->sso[0] ? " (SSO profiles: set credential_process = aws configure "
                                 "export-credentials --profile NAME --format process)"
                               : "");
        break;
    }
    os3_profile_free(ini);
    return rc;
}

/* A source profile, whole: its role, its keys, its web identity, its credential_process. */
static int os3_profile_resolve(const char *name, int depth, struct objstore_credentials *out)
{
    struct os3_creds_ini *ini;
    char where[OS3_PROFILE_PATH_MAX];
    int rc = os3_profile_read(name, &ini, where, sizeof(where));

    if (rc)
        return rc;
    rc = os3_profile_assume(ini, name, where, depth, out);
    if (rc == -ENOENT)
        rc = os3_profile_keys(ini, name, where, out);
    if (rc == -ENOENT)
        rc = os3_profile_web_identity(ini, name, where, out);
    if (rc == -ENOENT)
        rc = os3_profile_process(ini, name, where, out);
    os3_profile_free(ini);
    return rc;
}

int os3_creds_from_profile(const char *profile, struct objstore_credentials *out)
{
    const char *name = os3_creds_profile_name(profile);
    bool found;
    int rc = os3_creds_profile_part(name, OS3_PROFILE_ROLE, out, &found);
    if (rc == -ENOENT)
        rc = os3_creds_profile_part(name, OS3_PROFILE_WEB_IDENTITY, out, &found);
    if (rc == -ENOENT)
        rc = os3_creds_profile_part(name, OS3_PROFILE_KEYS, out, &found);
    return rc;
}

int os3_creds_web_identity_env(struct objstore_credentials *out)
{
    const char *arn = os3_creds_env("AWS_ROLE_ARN");
    const char *file = os3_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!file)
        return -ENOENT;
    if (!arn) {
        TLOG_E("credentials: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        return -EINVAL;
    }
    struct os3_sts_role r = {.role_arn = arn,
                             .session_name = os3_creds_env("AWS_ROLE_SESSION_NAME")};
    int rc = os3_sts_web_identity(&r, file, out);
    if (!rc)
        os3_creds_why("environment: AssumeRoleWithWebIdentity %s, token file %s", arn, file);
    return rc;
}
